"""The operator on a real Kubernetes cluster (KUBECONFIG): real Jobs, pods, runner, S3, GC.

Skipped as a whole when no cluster answers. How to point it at a cluster (kind or any other),
and every KBT_E2E_* setting: docs/e2e.md. The operator runs in this process (as `python -m
kbt_operator` would), watching only the test's own namespace, created and deleted per module.
"""

from __future__ import annotations

import asyncio
import io
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pandas as pd
import pytest
from cluster_support import (
    API,
    BUCKET,
    CORE,
    CUSTOM,
    GROUP,
    INSTANCE_TYPE,
    NO_CLUSTER,
    VERSION,
    btj,
    condition,
    create,
    create_model,
    delete_namespace,
    fresh_namespace,
    input_frames,
    jobs_of,
    operator_in_process,
    patch_spec,
    put_inputs,
    s3_client,
    wait_for,
    wait_state,
)

pytestmark = pytest.mark.e2e
if API is None:
    pytest.skip(NO_CLUSTER, allow_module_level=True)


@pytest.fixture(scope="module")
def namespace() -> Iterator[str]:
    with fresh_namespace() as name:
        yield name


@pytest.fixture(scope="module")
def s3() -> Any:
    return s3_client()


@pytest.fixture(scope="module")
def data(namespace: str, s3: Any) -> str:
    """A model and 2 input files under s3://BUCKET/<namespace>/; the credentials Secret."""
    import joblib  # noqa: PLC0415 (heavy: only model building)
    from sklearn.linear_model import LogisticRegression  # noqa: PLC0415 (heavy: only model building)

    frame = pd.concat(input_frames(2, 100))
    model = LogisticRegression().fit(frame, (frame["f0"] > 0).astype(int))
    buffer = io.BytesIO()
    joblib.dump(model, buffer)
    s3.put_object(Bucket=BUCKET, Key=f"{namespace}/model/model.joblib", Body=buffer.getvalue())
    prefix = put_inputs(s3, namespace, files=2, rows=100)
    create_model(namespace, "lr", {"uri": f"{prefix}/model/", "flavor": "sklearn"})
    return prefix


@pytest.fixture
async def operator(namespace: str, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[None]:
    async with operator_in_process(namespace, monkeypatch):
        yield


async def test_job_runs_to_completion_with_restricted_pods(
    namespace: str, data: str, s3: Any, operator: None
) -> None:
    create(namespace, btj("complete", data))
    done = await wait_state(namespace, "complete", "Completed")
    assert done["shards"]["completedIndexes"] == "0-1" and done["progressSummary"] == "2/2 shards, 100%"
    assert done["progress"]["recordsProcessed"] == 200
    listed = s3.list_objects_v2(Bucket=BUCKET, Prefix=f"{namespace}/output/complete/")
    outputs = {obj["Key"].rsplit("/", 1)[-1] for obj in listed.get("Contents", [])}
    assert {"part-0.csv.out", "part-1.csv.out"} <= outputs, outputs  # SageMaker: <input>.out
    (pod, *_) = CORE.list_namespaced_pod(namespace, label_selector="kbt.dev/job-name=complete").items
    assert (
        pod.spec.security_context.run_as_non_root
        and pod.spec.containers[0].security_context.read_only_root_filesystem
    )
    reasons = [
        e.reason for e in CORE.list_namespaced_event(namespace).items if e.involved_object.name == "complete"
    ]
    assert "Started" in reasons and "Completed" in reasons


async def test_non_retriable_failure_and_retry_of_failed_shards(
    namespace: str, data: str, s3: Any, operator: None
) -> None:
    create_model(namespace, "late", {"uri": f"{data}/late-model/", "flavor": "sklearn"})
    create(namespace, btj("retry", data, modelName="late"))
    failed = await wait_state(namespace, "retry", "Failed")
    assert failed["failureReason"].startswith("shard 0: ") and "MODEL_LOAD_ERROR" in failed["failureReason"]
    source = s3.get_object(Bucket=BUCKET, Key=f"{namespace}/model/model.joblib")["Body"].read()
    s3.put_object(Bucket=BUCKET, Key=f"{namespace}/late-model/model.joblib", Body=source)
    patch_spec(namespace, "retry", {"retryFailedShards": 1})
    done = await wait_state(namespace, "retry", "Completed")
    assert done["retryGeneration"] == 1 and done["jobName"].endswith("-1")
    assert [job.metadata.name for job in jobs_of(namespace, "retry")] == [done["jobName"]]


async def test_stop_ends_stopped_and_removes_the_job(namespace: str, data: str, operator: None) -> None:
    create(
        namespace,
        btj(
            "stop", data, shardCount=2, transformResources={"instanceType": INSTANCE_TYPE, "instanceCount": 1}
        ),
    )
    await wait_for(lambda: jobs_of(namespace, "stop"), what="the Job")
    patch_spec(namespace, "stop", {"stop": True})
    stopped = await wait_state(namespace, "stop", "Stopped")
    assert stopped["shards"]["active"] == 0
    assert await wait_for(lambda: not jobs_of(namespace, "stop"), what="the Job to be deleted")


async def test_delete_garbage_collects_everything(namespace: str, data: str, operator: None) -> None:
    create(namespace, btj("gc", data))
    await wait_for(lambda: jobs_of(namespace, "gc"), what="the Job")
    CUSTOM.delete_namespaced_custom_object(GROUP, VERSION, namespace, "batchtransformjobs", "gc")

    def gone() -> bool:
        selector = "kbt.dev/job-name=gc"
        return not (
            jobs_of(namespace, "gc")
            or CORE.list_namespaced_config_map(namespace, label_selector=selector).items
            or CORE.list_namespaced_service_account(namespace, label_selector=selector).items
        )

    assert await wait_for(gone, timeout=120, what="garbage collection")


async def test_setup_problems_become_conditions(namespace: str, data: str, operator: None) -> None:
    create(namespace, btj("nomodel", data, modelName="absent"))
    create(namespace, btj("nosecret", data, s3={"credentialsSecret": {"name": "absent"}}))
    create(
        namespace, btj("badtype", data, transformResources={"instanceType": "ml.z9.huge", "instanceCount": 1})
    )
    await wait_for(
        lambda: condition(namespace, "nomodel", "Ready").get("reason") == "ModelNotFound", 60, "ModelNotFound"
    )
    await wait_for(
        lambda: condition(namespace, "nosecret", "Ready").get("reason") == "SecretNotFound",
        60,
        "SecretNotFound",
    )
    create(
        namespace,
        btj("localpath", data, transformInput={"dataSource": {"s3DataSource": {"s3Uri": "data/input/"}}}),
    )
    failed = await wait_state(namespace, "badtype", "Failed")
    assert "unknown instanceType 'ml.z9.huge'" in failed["failureReason"]
    local = await wait_state(namespace, "localpath", "Failed")
    assert local["failureReason"].endswith("data/input/: local paths work with `kbt run` only; use s3://")
    assert condition(namespace, "localpath", "Ready").get("reason") == "LocalPath"
    assert (
        not jobs_of(namespace, "nomodel")
        and not jobs_of(namespace, "badtype")
        and not jobs_of(namespace, "localpath")
    )


async def test_gpu_placement_and_restart_adoption(
    namespace: str, data: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with operator_in_process(namespace, monkeypatch):
        create(
            namespace,
            btj("gpu", data, transformResources={"instanceType": "ml.g5.xlarge", "instanceCount": 1}),
        )
        (job,) = await wait_for(lambda: jobs_of(namespace, "gpu"), 60, "the GPU Job")
    pod = job.spec.template.spec
    assert (
        pod.node_selector.get("nvidia.com/gpu.product") == "NVIDIA-A10G"
        or "nvidia.com/gpu.present" in pod.node_selector
    )
    assert any(t.key == "nvidia.com/gpu" for t in pod.tolerations)
    async with operator_in_process(namespace, monkeypatch):
        await asyncio.sleep(5)
        assert [j.metadata.name for j in jobs_of(namespace, "gpu")] == [job.metadata.name]


async def test_deleting_a_namespace_with_running_and_unschedulable_jobs_finishes(data: str, s3: Any) -> None:
    """#16.6: only the namespace is deleted, as a user would; it is gone within 60 s."""
    name = f"kbt-nsdel-{uuid.uuid4().hex[:6]}"
    CORE.create_namespace({"metadata": {"name": name}})
    prefix = put_inputs(s3, name, files=2, rows=100)
    create_model(name, "lr", {"uri": f"{data}/model/", "flavor": "sklearn"})
    with pytest.MonkeyPatch.context() as monkeypatch:
        async with operator_in_process(name, monkeypatch):
            create(name, btj("running", prefix, backoffLimitPerIndex=3))
            unschedulable = {"instanceType": "ml.p5.48xlarge", "instanceCount": 1}
            create(name, btj("unschedulable", prefix, transformResources=unschedulable))
            await wait_for(
                lambda: jobs_of(name, "running") and jobs_of(name, "unschedulable"), 60, "both Jobs"
            )
    await delete_namespace(name, timeout=60)
