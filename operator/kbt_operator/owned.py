"""Builders of the small objects each BatchTransformJob owns (pure functions, plain dicts).

Per job: a ConfigMap with the ResolvedJob JSON (mounted at /etc/kbt), a progress ConfigMap the
shards patch, and a ServiceAccount + Role + RoleBinding that let the shard pods get and patch
that one progress ConfigMap and nothing else. Everything carries a controller ownerReference to
the BatchTransformJob (named by `ObjectRef`), so deleting the job garbage-collects it all (no
finalizer needed).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from kbt.api.models import API_GROUP, API_VERSION
from kbt.api.resolved import ResolvedJob
from kbt_operator.labels import JOB_NAME_LABEL, MANAGED_BY_LABEL, MANAGED_BY_VALUE, progress_configmap_name
from kbt_operator.naming import job_config_name, label_value, shard_identity_name

COMPONENT_LABEL = "app.kubernetes.io/component"
PART_OF_LABEL = "app.kubernetes.io/part-of"
RETRY_GENERATION_LABEL = f"{API_GROUP}/retry-generation"
PROGRESS_COMPONENT = "progress"
JOB_CONFIG_KEY = "job.json"
BTJ_KIND = "BatchTransformJob"
BTJ_API_VERSION = f"{API_GROUP}/{API_VERSION}"

Manifest = dict[str, Any]


@dataclass(frozen=True)
class ObjectRef:
    """The identity of a BatchTransformJob, as an event's involvedObject names it."""

    name: str
    namespace: str
    uid: str | None = None
    api_version: str | None = None
    kind: str | None = None

    @classmethod
    def parse(cls, body: Mapping[str, Any]) -> ObjectRef:
        meta = body.get("metadata") or {}
        uid = meta.get("uid")
        return cls(
            name=str(meta["name"]),
            namespace=str(meta["namespace"]),
            uid=None if uid is None else str(uid),
            api_version=body.get("apiVersion"),
            kind=body.get("kind"),
        )


def owner_reference(owner: ObjectRef) -> dict[str, Any]:
    """The controller ownerReference pointing at a BatchTransformJob."""
    return {
        "apiVersion": BTJ_API_VERSION,
        "kind": BTJ_KIND,
        "name": owner.name,
        "uid": owner.uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


def owner_name(obj: Mapping[str, Any]) -> str | None:
    """The name of the BatchTransformJob controlling `obj`, if any."""
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or []:
        if ref.get("kind") == BTJ_KIND and str(ref.get("apiVersion", "")).startswith(f"{API_GROUP}/"):
            return str(ref["name"])
    return None


def is_owned_by(obj: Mapping[str, Any], uid: str | None) -> bool:
    return any(ref.get("uid") == uid for ref in (obj.get("metadata") or {}).get("ownerReferences") or [])


def common_labels(btj_name: str, component: str) -> dict[str, str]:
    return {
        MANAGED_BY_LABEL: MANAGED_BY_VALUE,
        PART_OF_LABEL: "kbt",
        COMPONENT_LABEL: component,
        JOB_NAME_LABEL: label_value(btj_name),
    }


def _metadata(name: str, owner: ObjectRef, component: str) -> dict[str, Any]:
    return {
        "name": name,
        "namespace": owner.namespace,
        "labels": common_labels(owner.name, component),
        "ownerReferences": [owner_reference(owner)],
    }


def job_config_map(resolved: ResolvedJob, owner: ObjectRef) -> Manifest:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _metadata(job_config_name(owner.name), owner, "job-config"),
        "data": {JOB_CONFIG_KEY: resolved.model_dump_json(indent=2, exclude_none=True)},
    }


def progress_config_map(owner: ObjectRef) -> Manifest:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _metadata(progress_configmap_name(owner.name), owner, PROGRESS_COMPONENT),
        "data": {},
    }


def service_account(owner: ObjectRef) -> Manifest:
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": _metadata(shard_identity_name(owner.name), owner, "shard-identity"),
        "automountServiceAccountToken": False,  # shard pods opt in; nothing else gets a token
    }


def progress_role(owner: ObjectRef) -> Manifest:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": _metadata(shard_identity_name(owner.name), owner, "shard-identity"),
        "rules": [
            {
                "apiGroups": [""],
                "resources": ["configmaps"],
                "resourceNames": [progress_configmap_name(owner.name)],
                "verbs": ["get", "patch"],
            }
        ],
    }


def progress_role_binding(owner: ObjectRef, service_account_name: str) -> Manifest:
    name = shard_identity_name(owner.name)
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": _metadata(name, owner, "shard-identity"),
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
        "subjects": [{"kind": "ServiceAccount", "name": service_account_name, "namespace": owner.namespace}],
    }


def shard_objects(resolved: ResolvedJob, owner: ObjectRef) -> list[Manifest]:
    """Everything a job needs before its Indexed Job, in creation order.

    With ``podOverrides.serviceAccountName`` the pods run as that account: no ServiceAccount is
    created and the progress Role is bound to the given one.
    """
    override = resolved.spec.podOverrides.serviceAccountName
    account = override or shard_identity_name(owner.name)
    objects = [] if override else [service_account(owner)]
    return [
        *objects,
        progress_role(owner),
        progress_role_binding(owner, account),
        job_config_map(resolved, owner),
        progress_config_map(owner),
    ]
