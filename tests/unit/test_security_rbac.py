"""Least privilege: the chart's RBAC and the per-job Role the operator creates.

The operator may touch only what it manages, never holds wildcards or privilege-escalating verbs,
can never list or watch Secrets (it checks that a credentials Secret exists, one name at a time),
and in namespaced mode holds nothing namespaced outside its watched namespaces. A job's shard
pods may patch only their own progress ConfigMap and read no Secret at all: credentials reach
them through ``envFrom`` of a Secret named in the job, resolved by the kubelet in the job's own
namespace.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import helm_python as helm
import pytest
import yaml

from chaos.operator_objects import operator_objects

CHART = Path(__file__).resolve().parents[2] / "charts" / "kbt"
ESCALATING_VERBS = {"*", "escalate", "bind", "impersonate"}
SENSITIVE = {
    "secrets",
    "pods/exec",
    "pods/attach",
    "pods/portforward",
    "nodes",
    "nodes/proxy",
    "serviceaccounts/token",
}
# What the operator manages, by API group; anything else is more than it needs.
MANAGED = {
    "kbt.dev": {"batchtransformjobs", "batchtransformjobs/status", "models"},
    "batch": {"jobs"},
    "": {"pods", "configmaps", "serviceaccounts", "secrets", "events", "namespaces"},
    "events.k8s.io": {"events"},
    "rbac.authorization.k8s.io": {"roles", "rolebindings"},
    "apiextensions.k8s.io": {"customresourcedefinitions"},
}
NAMESPACED_VALUES = {"rbac": {"scope": "namespaced", "watchNamespaces": ["team-a", "team-b"]}}


@cache
def _render(scope: str) -> tuple[dict[str, Any], ...]:
    values = NAMESPACED_VALUES if scope == "namespaced" else {}
    manifests = helm.Chart.load(CHART).render(values, name="kbt", namespace="kbt-system", is_install=True)
    return tuple(
        doc
        for path, text in manifests.items()
        if not path.endswith(".txt")
        for doc in yaml.safe_load_all(text)
        if doc
    )


def _grants(roles: list[dict[str, Any]]) -> set[tuple[str, str, str]]:
    return {
        (group, resource, verb)
        for role in roles
        for rule in role.get("rules") or []
        for group in rule.get("apiGroups", [])
        for resource in rule.get("resources", [])
        for verb in rule.get("verbs", [])
    }


def _of_kind(documents: tuple[dict[str, Any], ...], *kinds: str) -> list[dict[str, Any]]:
    return [doc for doc in documents if doc["kind"] in kinds]


@pytest.mark.parametrize("scope", ["cluster", "namespaced"])
def test_operator_rbac_has_no_wildcards_and_no_escalation(scope: str) -> None:
    roles = _of_kind(_render(scope), "ClusterRole", "Role")
    assert roles
    for role in roles:
        for rule in role["rules"]:
            assert "nonResourceURLs" not in rule, rule
            assert "*" not in rule["apiGroups"] + rule["resources"], rule
            assert not ESCALATING_VERBS & set(rule["verbs"]), rule
    for group, resource, verb in _grants(roles):
        assert resource in MANAGED.get(group, set()), (
            f"{verb} {group}/{resource} is not something kbt manages"
        )
        assert resource not in SENSITIVE - {"secrets"}, f"{verb} {resource}"


@pytest.mark.parametrize("scope", ["cluster", "namespaced"])
def test_operator_can_only_get_secrets_by_name(scope: str) -> None:
    secret_verbs = {
        verb
        for group, resource, verb in _grants(_of_kind(_render(scope), "ClusterRole", "Role"))
        if resource == "secrets"
    }
    assert secret_verbs <= {"get"}, (
        f"the operator may {sorted(secret_verbs)} Secrets; it only checks one by name"
    )


@pytest.mark.parametrize("scope", ["cluster", "namespaced"])
def test_operator_cannot_change_what_it_only_reads(scope: str) -> None:
    writes = {"create", "update", "patch", "delete", "deletecollection"}
    grants = _grants(_of_kind(_render(scope), "ClusterRole", "Role"))
    for group, resource, verb in grants:
        if resource in {"pods", "secrets", "models", "customresourcedefinitions", "namespaces"}:
            assert verb not in writes, f"{verb} {group}/{resource}"
        if resource in {"roles", "rolebindings", "serviceaccounts"}:
            assert verb in {"create", "get"}, (
                f"{verb} {group}/{resource}: per-job identities are only created"
            )


def test_namespaced_mode_grants_nothing_namespaced_cluster_wide() -> None:
    documents = _render("namespaced")
    cluster_grants = _grants(_of_kind(documents, "ClusterRole"))
    namespaced_resources = {
        r for g, resources in MANAGED.items() if g != "apiextensions.k8s.io" for r in resources
    }
    assert not {resource for _, resource, _ in cluster_grants} & namespaced_resources, cluster_grants
    roles = _of_kind(documents, "Role")
    assert sorted(role["metadata"]["namespace"] for role in roles) == ["team-a", "team-b"]
    bindings = _of_kind(documents, "RoleBinding")
    for binding in bindings:
        assert binding["roleRef"]["kind"] == "Role", (
            "a RoleBinding to a ClusterRole would grant its cluster-wide rules"
        )
        assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "kbt", "namespace": "kbt-system"}]


def _built(spec_patch: dict[str, Any]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    *objects, job = operator_objects(
        {
            "apiVersion": "kbt.dev/v1alpha1",
            "kind": "BatchTransformJob",
            "metadata": {"name": "score", "namespace": "team-a", "uid": "uid-1"},
            "spec": {
                "model": {"uri": "s3://models/m/", "flavor": "sklearn"},
                "transformInput": {"dataSource": {"s3DataSource": {"s3Uri": "s3://inputs/x/"}}},
                "transformOutput": {"s3OutputPath": "s3://outputs/x/"},
                "transformResources": {"instanceCount": 2, "instanceType": "ml.m5.xlarge"},
                "s3": {"credentialsSecret": {"name": "team-a-s3"}},
                **spec_patch,
            },
        }
    )
    return objects, job


@pytest.mark.parametrize("patch", [{}, {"podOverrides": {"serviceAccountName": "team-runner"}}])
def test_per_job_role_grants_only_its_own_progress_configmap(patch: dict[str, Any]) -> None:
    objects, job = _built(patch)
    (role,) = [o for o in objects if o["kind"] == "Role"]
    (binding,) = [o for o in objects if o["kind"] == "RoleBinding"]
    assert role["metadata"]["namespace"] == "team-a"
    assert _grants([role]) == {("", "configmaps", "get"), ("", "configmaps", "patch")}
    assert role["rules"][0]["resourceNames"] == ["kbt-progress-score"]
    assert binding["metadata"]["namespace"] == "team-a"
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": role["metadata"]["name"],
    }
    pod = job["spec"]["template"]["spec"]
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": pod["serviceAccountName"], "namespace": "team-a"}
    ]
    assert not [o for o in objects if o["kind"] in {"ClusterRole", "ClusterRoleBinding"}]


def test_shard_pods_get_credentials_only_from_the_named_secret_in_their_namespace() -> None:
    objects, job = _built({"environment": [{"name": "LOG_LEVEL", "value": "debug"}]})
    assert job["metadata"]["namespace"] == "team-a"
    (container,) = job["spec"]["template"]["spec"]["containers"]
    assert container["envFrom"] == [{"secretRef": {"name": "team-a-s3"}}]  # no namespace: the pod's own
    secret_refs = [e for e in container["env"] if "secretKeyRef" in e.get("valueFrom", {})]
    assert secret_refs == []
    volumes = job["spec"]["template"]["spec"]["volumes"]
    assert not [v for v in volumes if "secret" in v or "projected" in v], volumes
    (config_map,) = [o for o in objects if o["kind"] == "ConfigMap" and "job.json" in o.get("data", {})]
    assert "team-a-s3" in config_map["data"]["job.json"]  # the Secret's name, never its content
