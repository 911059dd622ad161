"""The Helm chart, rendered by Helm's own engine (helm-python-sdk), for default and other values.

Every rendered manifest must pass kubernetes-validate (strict), pods must meet the restricted Pod
Security Standard, and the chart's RBAC must grant exactly what kbt_operator.rbac lists.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import helm_python as helm
import kubernetes_validate
import pytest
import yaml

from kbt_operator import rbac
from kbt_operator.catalog import Catalog
from kbt_operator.config import OperatorConfig
from kbt_operator.runner_images import RunnerFamily

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "kbt"
KUBE_VERSION = "1.30.0"
NAMESPACED = {
    "rbac": {"scope": "namespaced", "watchNamespaces": ["team-a", "team-b"]},
    "metrics": {"serviceMonitor": {"enabled": True, "labels": {"release": "prom"}}},
    "images": {"operator": {"repository": "registry.example/kbt-operator", "tag": "1.2.3"}},
    "s3": {"endpointUrl": "http://minio.storage:9000", "credentialsSecret": "kbt-s3"},
}
KIND_VALUES = yaml.safe_load((CHART / "ci" / "kind-values.yaml").read_text())
VALUE_SETS = {
    "default": {},
    "namespaced": NAMESPACED,
    "kind": KIND_VALUES,
    "no-metrics": {"metrics": {"enabled": False}},
}


@cache
def _chart() -> helm.Chart:
    return helm.Chart.load(CHART)


def render(values: dict[str, Any]) -> list[dict[str, Any]]:
    manifests = _chart().render(values, name="kbt", namespace="kbt-system", is_install=True)
    documents: list[dict[str, Any]] = []
    for path, text in manifests.items():
        if path.endswith(".txt"):
            continue
        documents.extend(doc for doc in yaml.safe_load_all(text) if doc)
    return documents


def of_kind(documents: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [doc for doc in documents if doc["kind"] == kind]


def grants(rules: list[dict[str, Any]]) -> set[tuple[str, str, str]]:
    return {
        (group, resource, verb)
        for rule in rules
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }


def expected(*rule_sets: tuple[rbac.Rule, ...]) -> set[tuple[str, str, str]]:
    return grants([rule.as_policy_rule() for rules in rule_sets for rule in rules])


def test_chart_crds_are_identical_to_crds_dir() -> None:
    source = sorted(path.name for path in (REPO / "crds").glob("*.yaml"))
    assert sorted(path.name for path in (CHART / "crds").glob("*.yaml")) == source
    for name in source:
        assert (CHART / "crds" / name).read_text() == (REPO / "crds" / name).read_text(), (
            f"run `make chart-sync`: {name}"
        )
    assert sorted(crd["name"] for crd in _chart().crds) == [f"crds/{name}" for name in source]


def test_chart_rbac_rules_file_is_generated_from_rbac_py() -> None:
    assert (CHART / "files" / "operator-rules.yaml").read_text() == rbac.render_rules_yaml(), (
        "run `make chart-sync`"
    )


def test_helm_lint_strict() -> None:
    for values in VALUE_SETS.values():
        report = helm.lint(CHART, values, strict=True, kube_version=f"v{KUBE_VERSION}")
        assert report["errors"] == []
        assert [m for m in report["messages"] if m["severity"] >= 2] == []


@pytest.mark.parametrize("values_name", sorted(VALUE_SETS))
def test_rendered_manifests_are_valid_kubernetes(values_name: str) -> None:
    documents = render(VALUE_SETS[values_name])
    kinds = sorted(doc["kind"] for doc in documents)
    assert {"Deployment", "ServiceAccount", "ConfigMap"} <= set(kinds)
    assert {"ClusterRole", "Role"} & set(kinds)
    for doc in documents:
        if doc["apiVersion"] == "monitoring.coreos.com/v1":  # a CRD kind: not in the upstream schemas
            assert doc["spec"]["endpoints"] == [{"port": "metrics", "interval": "30s", "path": "/metrics"}]
            continue
        kubernetes_validate.validate(doc, KUBE_VERSION, strict=True)


@pytest.mark.parametrize("values_name", sorted(VALUE_SETS))
def test_pods_meet_the_restricted_pod_security_standard(values_name: str) -> None:
    (deployment,) = of_kind(render(VALUE_SETS[values_name]), "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] != 0
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert not pod.get("hostNetwork") and not pod.get("hostPID") and not pod.get("hostIPC")
    assert all("hostPath" not in volume for volume in pod["volumes"])
    for container in pod["containers"] + pod.get("initContainers", []):
        context = container["securityContext"]
        assert context["runAsNonRoot"] is True
        assert context["allowPrivilegeEscalation"] is False
        assert context["capabilities"] == {"drop": ["ALL"]}
        assert context["seccompProfile"] == {"type": "RuntimeDefault"}
        assert context["readOnlyRootFilesystem"] is True
        assert not context.get("privileged")
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert container["readinessProbe"]["httpGet"]["port"] == "probes"
        assert container["resources"]["requests"] and container["resources"]["limits"]["memory"]


def test_cluster_wide_rbac_is_exactly_rbac_py() -> None:
    documents = render({})
    (cluster_role,) = of_kind(documents, "ClusterRole")
    assert of_kind(documents, "Role") == []
    assert grants(cluster_role["rules"]) == expected(
        rbac.NAMESPACED_RULES, rbac.CLUSTER_RULES, rbac.CLUSTER_WIDE_ONLY_RULES
    )
    (binding,) = of_kind(documents, "ClusterRoleBinding")
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "kbt", "namespace": "kbt-system"}]
    assert binding["roleRef"]["name"] == cluster_role["metadata"]["name"]


def test_namespaced_rbac_is_exactly_rbac_py_per_namespace() -> None:
    documents = render(NAMESPACED)
    cluster_roles = of_kind(documents, "ClusterRole")
    assert grants([rule for role in cluster_roles for rule in role["rules"]]) == expected(rbac.CLUSTER_RULES)
    assert len(cluster_roles) == (1 if rbac.CLUSTER_RULES else 0)
    roles = of_kind(documents, "Role")
    assert sorted(role["metadata"]["namespace"] for role in roles) == ["team-a", "team-b"]
    for role in roles:
        assert grants(role["rules"]) == expected(rbac.NAMESPACED_RULES)
    bindings = of_kind(documents, "RoleBinding")
    assert sorted(b["metadata"]["namespace"] for b in bindings) == ["team-a", "team-b"]
    assert all(b["subjects"][0]["namespace"] == "kbt-system" for b in bindings)
    every_rule = [rule for role in [*roles, *cluster_roles] for rule in role["rules"]]
    assert all("*" not in rule["verbs"] + rule["resources"] + rule["apiGroups"] for rule in every_rule)


def _operator_container(documents: list[dict[str, Any]]) -> dict[str, Any]:
    (deployment,) = of_kind(documents, "Deployment")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return dict(container)


def _env(container: dict[str, Any]) -> dict[str, Any]:
    return {item["name"]: item.get("value") for item in container["env"]}


def test_deployment_wiring() -> None:
    documents = render(NAMESPACED)
    (deployment,) = of_kind(documents, "Deployment")
    assert deployment["spec"]["replicas"] == 1 and deployment["spec"]["strategy"] == {"type": "Recreate"}
    pod = deployment["spec"]["template"]["spec"]
    container = _operator_container(documents)
    assert container["image"] == "registry.example/kbt-operator:1.2.3"
    assert container["command"] == _chart().values["operator"]["command"]
    env = _env(container)
    assert env["KBT_NAMESPACES"] == "team-a,team-b"
    assert _env(_operator_container(render({})))["KBT_NAMESPACES"] == ""
    assert (
        env["KBT_RUNNER_IMAGE"] == "kbt/runner:0.1.0"
        and env["KBT_RUNNER_GPU_IMAGE"] == "kbt/runner-cuda:0.1.0"
    )
    assert (
        env["KBT_DEFAULT_S3_ENDPOINT"] == "http://minio.storage:9000"
        and env["KBT_DEFAULT_S3_SECRET"] == "kbt-s3"
    )
    assert env["KBT_HEALTH_PORT"] == "8080" and env["KBT_METRICS_PORT"] == "9090"
    assert _env(_operator_container(render({"metrics": {"enabled": False}})))["KBT_METRICS_PORT"] == "0"
    mount = next(m for m in container["volumeMounts"] if m["name"] == "instance-types")
    assert env["KBT_INSTANCE_TYPES"] == mount["mountPath"] + "/instance-types.yaml"
    volume = next(v for v in pod["volumes"] if v["name"] == "instance-types")
    names = [c["metadata"]["name"] for c in of_kind(documents, "ConfigMap")]
    assert volume["configMap"]["name"] in names


def test_runner_images_per_framework_family_reach_the_operator() -> None:
    images = OperatorConfig.from_env(_env(_operator_container(render({})))).runner_images
    assert images.default == "kbt/runner:0.1.0" and images.gpu == "kbt/runner-cuda:0.1.0"
    assert dict(images.families) == {
        RunnerFamily.TABULAR: "kbt/runner-tabular:0.1.0",
        RunnerFamily.TORCH: "kbt/runner-torch:0.1.0",
        RunnerFamily.TF: "kbt/runner-tf:0.1.0",
    }
    values = {
        "images": {
            "runner": {"repository": "registry.example/kbt-runner", "tag": "2"},
            "runnerTorch": {"repository": "registry.example/kbt-runner-torch", "tag": "2"},
            "runnerTabular": {"repository": ""},
            "runnerTf": {"repository": ""},
        }
    }
    env = _env(_operator_container(render(values)))
    assert "KBT_RUNNER_TABULAR_IMAGE" not in env and "KBT_RUNNER_TF_IMAGE" not in env
    images = OperatorConfig.from_env(env).runner_images
    assert images.families[RunnerFamily.TORCH] == "registry.example/kbt-runner-torch:2"
    assert images.families[RunnerFamily.TABULAR] == images.families[RunnerFamily.TF] == images.default
    assert images.default == "registry.example/kbt-runner:2"


def _rendered_catalog(values: dict[str, Any], tmp_path: Path) -> Catalog:
    """The catalog the operator loads from the rendered ConfigMap and environment."""
    documents = render(values)
    (configmap,) = [
        c for c in of_kind(documents, "ConfigMap") if c["metadata"]["name"].endswith("-instance-types")
    ]
    path = tmp_path / "instance-types.yaml"
    path.write_text(configmap["data"]["instance-types.yaml"])
    env = _env(_operator_container(documents)) | {"KBT_INSTANCE_TYPES": str(path)}
    return OperatorConfig.from_env(env).load_catalog()


@pytest.mark.parametrize("values_name", sorted(VALUE_SETS))
def test_instance_type_catalog_loads_in_the_operator(values_name: str, tmp_path: Path) -> None:
    values = VALUE_SETS[values_name]
    catalog = _rendered_catalog(values, tmp_path)
    assert set(Catalog.builtin().types) <= set(catalog.types)
    for name, entry in values.get("instanceTypes", {}).items():
        assert catalog.lookup(name).container_resources() == entry["resources"]


def test_instance_type_requests_are_a_share_of_the_nominal_size(tmp_path: Path) -> None:
    default = _rendered_catalog({}, tmp_path).lookup("ml.m5.large").resources
    assert default.requests == {"cpu": "1800m", "memory": "7372Mi"} and default.limits == {
        "cpu": "2",
        "memory": "8Gi",
    }
    kind = _rendered_catalog(KIND_VALUES, tmp_path)
    for name in ("ml.m5.large", "ml.m5.xlarge", "ml.m4.xlarge"):  # the e2e and example jobs' types
        small = kind.lookup(name).resources
        assert small.limits == Catalog.builtin().lookup(name).resources.limits
        assert int(small.requests["cpu"].removesuffix("m")) <= 500  # several shards fit a 2-CPU node
    custom = _rendered_catalog({"instanceTypeRequests": {"cpuPercent": 50, "memoryPercent": 25}}, tmp_path)
    assert custom.lookup("ml.c5.xlarge").resources.requests == {"cpu": "2000m", "memory": "2048Mi"}


def test_kind_gpu_type_lands_on_the_gpu_worker() -> None:
    catalog = Catalog.from_document(KIND_VALUES["instanceTypes"], "kind-values")
    kind_config = yaml.safe_load((REPO / "kind-config.yaml").read_text())
    assert [n["role"] for n in kind_config["nodes"]] == ["control-plane", "worker", "worker"]
    (gpu_node,) = [
        n for n in kind_config["nodes"] if n.get("labels", {}).get("nvidia.com/gpu.present") == "true"
    ]
    taint = yaml.safe_load(gpu_node["kubeadmConfigPatches"][0])["nodeRegistration"]["taints"][0]
    assert taint == {"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}

    gpu = catalog.lookup("ml.g5.xlarge")
    assert gpu.has_gpu and gpu.nodeSelector.items() <= gpu_node["labels"].items()
    assert any(t["key"] == taint["key"] and t["effect"] == taint["effect"] for t in gpu.pod_tolerations())
    cpu = catalog.lookup("ml.m5.xlarge")
    assert not cpu.has_gpu and cpu.pod_tolerations() == []  # so the taint keeps CPU shards off the GPU node


def test_metrics_service_and_service_monitor() -> None:
    documents = render(NAMESPACED)
    (service,) = of_kind(documents, "Service")
    (deployment,) = of_kind(documents, "Deployment")
    assert service["spec"]["selector"].items() <= deployment["spec"]["template"]["metadata"]["labels"].items()
    assert service["spec"]["ports"] == [
        {"name": "metrics", "port": 9090, "targetPort": "metrics", "protocol": "TCP"}
    ]
    (monitor,) = of_kind(documents, "ServiceMonitor")
    assert monitor["metadata"]["labels"]["release"] == "prom"
    assert monitor["spec"]["selector"]["matchLabels"] == service["spec"]["selector"]
    assert of_kind(render({}), "ServiceMonitor") == []
    assert of_kind(render({"metrics": {"enabled": False}}), "Service") == []


def test_invalid_rbac_scope_fails_with_a_clear_message() -> None:
    with pytest.raises(helm.HelmError, match=r"rbac\.scope must be cluster or namespaced"):
        render({"rbac": {"scope": "everything"}})


def test_minio_manifest_is_valid_and_restricted() -> None:
    documents = [doc for doc in yaml.safe_load_all((REPO / "deploy" / "minio.yaml").read_text()) if doc]
    for doc in documents:
        kubernetes_validate.validate(doc, KUBE_VERSION, strict=True)
    secrets = {
        (d["metadata"]["namespace"], d["metadata"]["name"]) for d in documents if d["kind"] == "Secret"
    }
    assert {("kbt-system", "kbt-s3"), ("default", "kbt-s3")} <= secrets  # what ci/kind-values.yaml names
    assert KIND_VALUES["s3"]["credentialsSecret"] == "kbt-s3"
    for workload in (d for d in documents if d["kind"] in {"Deployment", "Job"}):
        pod = workload["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        for container in pod["containers"]:
            assert container["securityContext"]["allowPrivilegeEscalation"] is False
            assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
