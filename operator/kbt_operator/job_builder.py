"""Build the Indexed Job that runs a BatchTransformJob's shards (a pure function, plain dicts).

One pod per shard runs ``kbt shard --job /etc/kbt/job.json``; Kubernetes sets
``JOB_COMPLETION_INDEX``. A retry Job runs only some shards and maps its completion indexes to
shard indexes with ``KBT_SHARD_MAP`` (see ``kbt.api.shardmap``; every env name the pod reads
is declared in ``kbt.api.podenv``). Placement comes from the instance-type
catalog with the job's ``podOverrides`` on top:

* resources: ``requests``/``limits`` merged key by key (the override wins);
* nodeSelector: merged (the override wins); tolerations: the override's are added;
* affinity, serviceAccountName: replaced; scratchSizeLimit: size of the /scratch emptyDir.

The image is the model's ``image``, else the operator's GPU runner image on GPU instance types,
else the runner image of the flavor's framework family (``runner_images``).

Failure handling: ``backoffLimitPerIndex`` retries per shard; the pod failure policy ignores
disruptions (eviction, preemption) and a runner stopped by SIGTERM, and fails the index at once
on the runner's non-retriable exit codes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from kbt.api import podenv
from kbt.api.exitcodes import NON_RETRIABLE, ExitCode
from kbt.api.models import ResourceOverrides
from kbt.api.resolved import ResolvedJob
from kbt.api.shardmap import SHARD_MAP_ANNOTATION, encode_shard_map
from kbt_operator.catalog import InstanceType
from kbt_operator.labels import progress_configmap_name
from kbt_operator.naming import job_config_name, job_name, shard_identity_name
from kbt_operator.owned import (
    JOB_CONFIG_KEY,
    RETRY_GENERATION_LABEL,
    ObjectRef,
    common_labels,
    owner_reference,
)
from kbt_operator.runner_images import RunnerImages

CONTAINER_NAME = "kbt"
CONFIG_DIR = "/etc/kbt"
SCRATCH_DIR = "/scratch"
TMP_DIR = "/tmp"
TMP_SIZE_LIMIT = "1Gi"
RUNNER_UID = 1000
TERMINATION_GRACE_SECONDS = 60
KUEUE_QUEUE_LABEL = "kueue.x-k8s.io/queue-name"
SHARD_COMPONENT = "shard"


@dataclass(frozen=True)
class JobRequest:
    """Everything the Job depends on; `shard_map` None means every shard (the first run)."""

    resolved: ResolvedJob
    instance: InstanceType
    images: RunnerImages
    image_pull_policy: str = "IfNotPresent"
    generation: int = 0
    shard_map: tuple[int, ...] | None = None


def _merge_resources(base: Mapping[str, Any], override: Mapping[str, Any] | None) -> dict[str, Any]:
    merged: dict[str, Any] = {key: dict(value) for key, value in base.items()}
    for key, value in (override or {}).items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = {**merged[key], **{k: str(v) for k, v in value.items()}}
        else:
            merged[key] = value
    return merged


def _overrides(resources: ResourceOverrides | None) -> dict[str, Any] | None:
    return resources.model_dump(exclude_none=True) if resources else None


def _unique(items: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = []
    for item in items:
        if item not in result:
            result.append(item)
    return result


def _env(request: JobRequest) -> list[dict[str, Any]]:
    """User variables (model's, then job's) followed by the operator's, which win on a clash."""
    resolved = request.resolved
    spec = resolved.spec
    operator_env: list[dict[str, Any]] = [
        {"name": podenv.HOME, "value": SCRATCH_DIR},
        {"name": podenv.TMPDIR, "value": TMP_DIR},
        {"name": podenv.LOG_FORMAT, "value": "json"},
        {"name": podenv.PROGRESS_CONFIGMAP, "value": progress_configmap_name(resolved.name)},
        {"name": podenv.NAMESPACE, "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
        {"name": podenv.POD_NAME, "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
    ]
    if request.shard_map is not None:
        operator_env.append({"name": podenv.SHARD_MAP, "value": encode_shard_map(request.shard_map)})
    if spec.s3.endpointUrl:
        operator_env.append({"name": podenv.S3_ENDPOINT, "value": spec.s3.endpointUrl})
    if spec.region:
        operator_env += [
            {"name": podenv.REGION, "value": spec.region},
            {"name": podenv.DEFAULT_REGION, "value": spec.region},
        ]
    reserved = {item["name"] for item in operator_env}
    user: dict[str, str] = {}
    for var in [*resolved.model.environment, *spec.environment]:
        if var.name not in reserved:
            user[var.name] = var.value
    return [{"name": name, "value": value} for name, value in user.items()] + operator_env


def _container(request: JobRequest) -> dict[str, Any]:
    spec = request.resolved.spec
    container: dict[str, Any] = {
        "name": CONTAINER_NAME,
        "image": request.images.for_model(request.resolved.model, gpu=request.instance.has_gpu),
        "imagePullPolicy": request.image_pull_policy,
        "command": ["kbt", "shard", "--job", f"{CONFIG_DIR}/{JOB_CONFIG_KEY}"],
        "env": _env(request),
        "resources": _merge_resources(
            request.instance.container_resources(), _overrides(spec.podOverrides.resources)
        ),
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "runAsNonRoot": True,
            "capabilities": {"drop": ["ALL"]},
        },
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "volumeMounts": [
            {"name": "job-config", "mountPath": CONFIG_DIR, "readOnly": True},
            {"name": "scratch", "mountPath": SCRATCH_DIR},
            {"name": "tmp", "mountPath": TMP_DIR},
        ],
    }
    if spec.s3.credentialsSecret is not None:
        container["envFrom"] = [{"secretRef": {"name": spec.s3.credentialsSecret.name}}]
    return container


def _pod_spec(request: JobRequest) -> dict[str, Any]:
    resolved = request.resolved
    overrides = resolved.spec.podOverrides
    pod: dict[str, Any] = {
        "restartPolicy": "Never",
        "serviceAccountName": overrides.serviceAccountName or shard_identity_name(resolved.name),
        "automountServiceAccountToken": True,  # shards patch their progress ConfigMap
        "terminationGracePeriodSeconds": TERMINATION_GRACE_SECONDS,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": RUNNER_UID,
            "runAsGroup": RUNNER_UID,
            "fsGroup": RUNNER_UID,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [_container(request)],
        "volumes": [
            {"name": "job-config", "configMap": {"name": job_config_name(resolved.name)}},
            {"name": "scratch", "emptyDir": {"sizeLimit": overrides.scratchSizeLimit}},
            {"name": "tmp", "emptyDir": {"sizeLimit": TMP_SIZE_LIMIT}},
        ],
    }
    node_selector = {**request.instance.nodeSelector, **(overrides.nodeSelector or {})}
    if node_selector:
        pod["nodeSelector"] = node_selector
    tolerations = _unique(
        [
            *request.instance.pod_tolerations(),
            *(t.model_dump(exclude_none=True) for t in overrides.tolerations or []),
        ]
    )
    if tolerations:
        pod["tolerations"] = tolerations
    affinity = overrides.affinity or request.instance.affinity
    if affinity:
        pod["affinity"] = affinity
    return pod


def pod_failure_policy() -> dict[str, Any]:
    return {
        "rules": [
            {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]},
            {
                "action": "Ignore",
                "onExitCodes": {
                    "containerName": CONTAINER_NAME,
                    "operator": "In",
                    "values": [int(ExitCode.STOPPED)],
                },
            },
            {
                "action": "FailIndex",
                "onExitCodes": {
                    "containerName": CONTAINER_NAME,
                    "operator": "In",
                    "values": sorted(int(code) for code in NON_RETRIABLE),
                },
            },
        ]
    }


def completions(request: JobRequest) -> int:
    return len(request.shard_map) if request.shard_map is not None else request.resolved.spec.shards


def build_job(request: JobRequest, owner: ObjectRef) -> dict[str, Any]:
    """The Indexed Job for `request`, owned by the BatchTransformJob `owner`."""
    spec = request.resolved.spec
    name = request.resolved.name
    count = completions(request)
    labels = {**common_labels(name, SHARD_COMPONENT), RETRY_GENERATION_LABEL: str(request.generation)}
    job_labels = dict(labels)
    if spec.queueName:
        job_labels[KUEUE_QUEUE_LABEL] = spec.queueName
    annotations = (
        {} if request.shard_map is None else {SHARD_MAP_ANNOTATION: encode_shard_map(request.shard_map)}
    )
    job_spec: dict[str, Any] = {
        "completionMode": "Indexed",
        "completions": count,
        "parallelism": min(spec.transformResources.instanceCount, count),
        "backoffLimitPerIndex": spec.backoffLimitPerIndex,
        "podFailurePolicy": pod_failure_policy(),
        # Kueue owns `suspend` of queued Jobs: they start suspended and Kueue admits them.
        "suspend": bool(spec.queueName) or spec.suspend,
        "template": {
            "metadata": {"labels": labels, **({"annotations": annotations} if annotations else {})},
            "spec": _pod_spec(request),
        },
    }
    if spec.maxFailedIndexes is not None:
        job_spec["maxFailedIndexes"] = min(spec.maxFailedIndexes, count)
    if spec.activeDeadlineSeconds is not None:
        job_spec["activeDeadlineSeconds"] = spec.activeDeadlineSeconds
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": job_name(name, request.generation),
            "namespace": owner.namespace,
            "labels": job_labels,
            **({"annotations": annotations} if annotations else {}),
            "ownerReferences": [owner_reference(owner)],
        },
        "spec": job_spec,
    }


def job_generation(job: Mapping[str, Any]) -> int:
    """The retry generation recorded on a Job the operator built (0 when missing)."""
    raw = ((job.get("metadata") or {}).get("labels") or {}).get(RETRY_GENERATION_LABEL, "0")
    try:
        return int(raw)
    except ValueError:
        return 0
