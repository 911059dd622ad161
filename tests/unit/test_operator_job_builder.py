"""The Indexed Job and owned objects built for a BatchTransformJob: golden file and properties.

Regenerate the golden file after an intended change: KBT_UPDATE_GOLDEN=1 pytest <this file>.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from kbt.api.exitcodes import NON_RETRIABLE, ExitCode
from kbt.api.models import BatchTransformJob, Model
from kbt.api.resolved import resolve_job
from kbt_operator.catalog import Catalog
from kbt_operator.job_builder import JobRequest, build_job
from kbt_operator.naming import JOB_NAME_LIMIT, job_name
from kbt_operator.owned import ObjectRef, shard_objects
from kbt_operator.runner_images import RunnerFamily, RunnerImages

GOLDEN = Path(__file__).parent / "golden" / "operator_job.yaml"
META = {"name": "heart", "namespace": "team-a", "uid": "0b6c7f4e-1111-2222-3333-444455556666"}
OWNER = ObjectRef.parse({"metadata": META})
IMAGES = RunnerImages(
    default="kbt/runner:1.0",
    gpu="kbt/runner-cuda:1.0",
    families={family: f"kbt/runner-{family}:1.0" for family in RunnerFamily},
)


def btj(**spec: Any) -> BatchTransformJob:
    base: dict[str, Any] = {
        "modelName": "heart-model",
        "shardCount": 4,
        "transformInput": {"dataSource": {"s3DataSource": {"s3Uri": "s3://data/heart/"}}},
        "transformOutput": {"s3OutputPath": "s3://results/heart/"},
        "transformResources": {"instanceType": "ml.m5.xlarge", "instanceCount": 2},
        "s3": {"endpointUrl": "http://minio.storage:9000", "credentialsSecret": {"name": "s3-creds"}},
        "environment": [
            {"name": "OMP_NUM_THREADS", "value": "4"},
            {"name": "KBT_NAMESPACE", "value": "hijack"},
        ],
        "backoffLimitPerIndex": 3,
        "activeDeadlineSeconds": 7200,
    }
    base.update(spec)
    return BatchTransformJob.model_validate({"metadata": META, "spec": base})


MODEL = Model.model_validate(
    {
        "metadata": {"name": "heart-model", "namespace": "team-a"},
        "spec": {
            "uri": "s3://models/heart/",
            "flavor": "sklearn",
            "environment": [{"name": "MODEL_ENV", "value": "1"}],
        },
    }
)


def build(
    job: BatchTransformJob, *, generation: int = 0, shard_map: tuple[int, ...] | None = None
) -> dict[str, Any]:
    request = JobRequest(
        resolved=resolve_job(job, {"heart-model": MODEL}),
        instance=Catalog.builtin().lookup(job.spec.transformResources.instanceType),
        images=IMAGES,
        generation=generation,
        shard_map=shard_map,
    )
    return build_job(request, OWNER)


def pod(job: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = job["spec"]["template"]["spec"]
    return spec


def env(job: dict[str, Any]) -> dict[str, Any]:
    return {
        item["name"]: item.get("value", item.get("valueFrom")) for item in pod(job)["containers"][0]["env"]
    }


def test_job_matches_golden_file() -> None:
    rendered = yaml.safe_dump(build(btj()), sort_keys=True)
    if os.environ.get("KBT_UPDATE_GOLDEN"):
        GOLDEN.write_text(rendered)
    assert rendered == GOLDEN.read_text(), "Job changed; if intended: KBT_UPDATE_GOLDEN=1 pytest " + __file__


def test_indexed_job_shape_and_failure_policy() -> None:
    job = build(btj())
    spec = job["spec"]
    assert job["metadata"]["name"] == "btj-heart-0"
    assert spec["completionMode"] == "Indexed" and spec["completions"] == 4 and spec["parallelism"] == 2
    assert spec["backoffLimitPerIndex"] == 3 and spec["activeDeadlineSeconds"] == 7200
    assert spec["suspend"] is False and "maxFailedIndexes" not in spec
    assert pod(job)["restartPolicy"] == "Never"
    rules = spec["podFailurePolicy"]["rules"]
    assert rules[0] == {
        "action": "Ignore",
        "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}],
    }
    fail_index = next(rule for rule in rules if rule["action"] == "FailIndex")
    assert set(fail_index["onExitCodes"]["values"]) == {int(code) for code in NON_RETRIABLE}
    ignored_codes = {
        c
        for rule in rules
        if rule["action"] == "Ignore"
        for c in rule.get("onExitCodes", {}).get("values", [])
    }
    assert ignored_codes == {int(ExitCode.STOPPED)}
    assert ExitCode.RETRIABLE not in fail_index["onExitCodes"]["values"]
    owner = job["metadata"]["ownerReferences"][0]
    assert owner["uid"] == OWNER.uid and owner["controller"] is True and owner["kind"] == "BatchTransformJob"


def test_container_command_config_and_progress_wiring() -> None:
    job = build(btj())
    container = pod(job)["containers"][0]
    assert container["command"] == ["kbt", "shard", "--job", "/etc/kbt/job.json"]
    assert container["image"] == "kbt/runner-tabular:1.0"  # MODEL is a scikit-learn model
    assert container["terminationMessagePolicy"] == "FallbackToLogsOnError"
    variables = env(job)
    assert variables["KBT_PROGRESS_CONFIGMAP"] == "kbt-progress-heart"
    assert variables["KBT_NAMESPACE"] == {
        "fieldRef": {"fieldPath": "metadata.namespace"}
    }  # user value ignored
    assert variables["KBT_POD_NAME"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    assert variables["AWS_ENDPOINT_URL_S3"] == "http://minio.storage:9000"
    assert variables["OMP_NUM_THREADS"] == "4" and variables["MODEL_ENV"] == "1"
    assert "KBT_SHARD_MAP" not in variables
    assert container["envFrom"] == [{"secretRef": {"name": "s3-creds"}}]
    volumes = {v["name"]: v for v in pod(job)["volumes"]}
    assert volumes["job-config"]["configMap"]["name"] == "btj-heart-job"
    assert volumes["scratch"]["emptyDir"]["sizeLimit"] == "10Gi"


def test_pod_security_is_restricted() -> None:
    spec = pod(build(btj()))
    assert spec["securityContext"]["runAsNonRoot"] is True and spec["securityContext"]["runAsUser"] == 1000
    assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    context = spec["containers"][0]["securityContext"]
    assert context == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
    }
    mounts = {m["mountPath"]: m for m in spec["containers"][0]["volumeMounts"]}
    assert set(mounts) == {"/etc/kbt", "/scratch", "/tmp"} and mounts["/etc/kbt"]["readOnly"] is True
    assert spec["serviceAccountName"] == "btj-heart-shard" and spec["automountServiceAccountToken"] is True
    assert not any(spec.get(key) for key in ("hostNetwork", "hostPID", "hostIPC"))


def test_gpu_instance_type_places_on_gpu_nodes() -> None:
    job = build(btj(transformResources={"instanceType": "ml.g5.xlarge", "instanceCount": 1}))
    spec = pod(job)
    container = spec["containers"][0]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert (
        container["resources"]["limits"]["cpu"] == "4"
        and container["resources"]["limits"]["memory"] == "16Gi"
    )
    assert spec["nodeSelector"] == {"nvidia.com/gpu.product": "NVIDIA-A10G"}
    assert spec["tolerations"] == [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
    assert container["image"] == "kbt/runner-cuda:1.0"
    cpu = pod(build(btj()))
    assert "nodeSelector" not in cpu and "tolerations" not in cpu
    assert "nvidia.com/gpu" not in cpu["containers"][0]["resources"]["limits"]


@pytest.mark.parametrize(
    ("model", "image"),
    [
        ({"flavor": "sklearn"}, "kbt/runner-tabular:1.0"),
        ({"flavor": "xgboost"}, "kbt/runner-tabular:1.0"),
        ({"flavor": "mlflow"}, "kbt/runner-tabular:1.0"),  # its MLmodel's flavor is not read
        ({"flavor": "pytorch"}, "kbt/runner-torch:1.0"),
        ({"flavor": "transformers", "task": "summarization"}, "kbt/runner-torch:1.0"),
        ({"flavor": "tensorflow"}, "kbt/runner-tf:1.0"),
        ({"flavor": "custom", "scoringScript": "score.py"}, "kbt/runner:1.0"),
        ({"flavor": "mlflow", "image": "kbt/runner-torch:1.0"}, "kbt/runner-torch:1.0"),
    ],
)
def test_cpu_shards_run_the_runner_image_of_their_flavors_family(model: dict[str, str], image: str) -> None:
    job = btj(modelName=None, model={"uri": "s3://m/", **model})
    assert pod(build(job))["containers"][0]["image"] == image


def test_a_family_without_an_image_of_its_own_gets_the_all_in_one_image() -> None:
    job = btj(modelName=None, model={"uri": "s3://m/", "flavor": "tensorflow"})
    request = JobRequest(
        resolved=resolve_job(job, {}),
        instance=Catalog.builtin().lookup("ml.m5.xlarge"),
        images=RunnerImages(default="kbt/runner:1.0", gpu="kbt/runner-cuda:1.0"),
    )
    assert pod(build_job(request, OWNER))["containers"][0]["image"] == "kbt/runner:1.0"


@pytest.mark.parametrize("flavor", ["sklearn", "pytorch", "tensorflow"])
def test_gpu_shards_run_the_gpu_image_whatever_the_flavor(flavor: str) -> None:
    resources = {"instanceType": "ml.g4dn.xlarge", "instanceCount": 1}
    job = btj(modelName=None, model={"uri": "s3://m/", "flavor": flavor}, transformResources=resources)
    assert pod(build(job))["containers"][0]["image"] == "kbt/runner-cuda:1.0"


def test_model_image_wins_over_runner_images() -> None:
    job = btj(modelName=None, model={"uri": "s3://m/", "flavor": "xgboost", "image": "acme/xgb:2"})
    job = job.model_copy(
        update={
            "spec": job.spec.model_copy(
                update={
                    "transformResources": job.spec.transformResources.model_copy(
                        update={"instanceType": "ml.g4dn.xlarge"}
                    )
                }
            )
        }
    )
    assert pod(build(job))["containers"][0]["image"] == "acme/xgb:2"


def test_pod_overrides_merge_over_the_catalog() -> None:
    overrides = {
        "resources": {"limits": {"memory": "20Gi"}, "requests": {"ephemeral-storage": "5Gi"}},
        "nodeSelector": {"nvidia.com/gpu.product": "NVIDIA-A100", "pool": "batch"},
        "tolerations": [{"key": "batch", "operator": "Exists", "effect": "NoSchedule"}],
        "affinity": {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": []}},
        "serviceAccountName": "team-a-runner",
        "scratchSizeLimit": "100Gi",
    }
    job = build(
        btj(transformResources={"instanceType": "ml.g5.xlarge", "instanceCount": 1}, podOverrides=overrides)
    )
    spec = pod(job)
    resources = spec["containers"][0]["resources"]
    assert resources["limits"] == {"cpu": "4", "memory": "20Gi", "nvidia.com/gpu": "1"}
    assert resources["requests"]["ephemeral-storage"] == "5Gi" and resources["requests"]["cpu"] == "3600m"
    assert spec["nodeSelector"] == {"nvidia.com/gpu.product": "NVIDIA-A100", "pool": "batch"}
    assert [t["key"] for t in spec["tolerations"]] == ["nvidia.com/gpu", "batch"]
    assert spec["affinity"] == overrides["affinity"]
    assert spec["serviceAccountName"] == "team-a-runner"
    assert {v["name"]: v for v in spec["volumes"]}["scratch"]["emptyDir"]["sizeLimit"] == "100Gi"


def test_queued_job_is_created_suspended_with_the_kueue_label() -> None:
    job = build(btj(queueName="team-a-queue"))
    assert job["metadata"]["labels"]["kueue.x-k8s.io/queue-name"] == "team-a-queue"
    assert job["spec"]["suspend"] is True
    assert build(btj(suspend=True))["spec"]["suspend"] is True
    assert "kueue.x-k8s.io/queue-name" not in build(btj())["metadata"]["labels"]


def test_retry_job_runs_only_the_mapped_shards() -> None:
    job = build(btj(maxFailedIndexes=5, retryFailedShards=2), generation=2, shard_map=(1, 3))
    assert job["metadata"]["name"] == "btj-heart-2"
    assert job["metadata"]["labels"]["kbt.dev/retry-generation"] == "2"
    assert job["metadata"]["annotations"]["kbt.dev/shard-map"] == "1,3"
    assert job["spec"]["template"]["metadata"]["annotations"]["kbt.dev/shard-map"] == "1,3"
    assert job["spec"]["completions"] == 2 and job["spec"]["parallelism"] == 2
    assert job["spec"]["maxFailedIndexes"] == 2  # never more than completions (API validation)
    assert env(job)["KBT_SHARD_MAP"] == "1,3"


def test_owned_objects_grant_pods_only_their_progress_configmap() -> None:
    job = btj()
    objects = {obj["kind"]: obj for obj in shard_objects(resolve_job(job, {"heart-model": MODEL}), OWNER)}
    assert set(objects) == {"ServiceAccount", "Role", "RoleBinding", "ConfigMap"}
    (rule,) = objects["Role"]["rules"]
    assert rule == {
        "apiGroups": [""],
        "resources": ["configmaps"],
        "resourceNames": ["kbt-progress-heart"],
        "verbs": ["get", "patch"],
    }
    assert objects["RoleBinding"]["subjects"] == [
        {"kind": "ServiceAccount", "name": "btj-heart-shard", "namespace": "team-a"}
    ]
    assert objects["ServiceAccount"]["automountServiceAccountToken"] is False
    configmaps = [
        obj
        for obj in shard_objects(resolve_job(job, {"heart-model": MODEL}), OWNER)
        if obj["kind"] == "ConfigMap"
    ]
    config = yaml.safe_load(configmaps[0]["data"]["job.json"])
    assert config["model"]["uri"] == "s3://models/heart/" and config["model_ref"] == "heart-model"
    assert all(obj["metadata"]["ownerReferences"][0]["uid"] == OWNER.uid for obj in objects.values())


def test_service_account_override_binds_the_role_to_it() -> None:
    job = btj(podOverrides={"serviceAccountName": "team-a-runner"})
    objects = shard_objects(resolve_job(job, {"heart-model": MODEL}), OWNER)
    assert "ServiceAccount" not in {obj["kind"] for obj in objects}
    binding = next(obj for obj in objects if obj["kind"] == "RoleBinding")
    assert binding["subjects"][0]["name"] == "team-a-runner"


@pytest.mark.parametrize("name", ["a" * 253, "my.dotted.job", "x"])
def test_job_names_are_bounded_dns_labels_and_distinct(name: str) -> None:
    names = {job_name(name, generation) for generation in range(3)}
    assert len(names) == 3
    for value in names:
        assert len(value) <= JOB_NAME_LIMIT and "." not in value and value == value.lower()
    assert job_name("a.b", 0) != job_name("a-b", 0)


def test_everything_built_is_valid_kubernetes() -> None:
    import kubernetes_validate  # noqa: PLC0415 (dev dep: only this test)

    job = btj(
        queueName="q", maxFailedIndexes=1, podOverrides={"tolerations": [{"key": "k", "operator": "Exists"}]}
    )
    documents = [
        build(job),
        build(job, generation=1, shard_map=(0, 2)),
        *shard_objects(resolve_job(job, {"heart-model": MODEL}), OWNER),
    ]
    for document in documents:
        kubernetes_validate.validate(document, "1.31.0", strict=True)
