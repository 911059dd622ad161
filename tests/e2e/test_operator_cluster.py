"""The operator on a real Kubernetes cluster (KUBECONFIG): real Jobs, pods, runner, S3, GC.

Skipped as a whole when no cluster answers. Setup for kind: `make kind-up images kind-load minio`
(CRDs: `kubectl apply -f crds/`), then `make e2e`. Environment:

=========================  ====================================================  =====================
KBT_E2E_RUNNER_IMAGE       runner image the shard pods run                       kbt/runner:dev
KBT_E2E_S3_ENDPOINT        S3 endpoint for this test process (uploads, checks)   http://localhost:9000
KBT_E2E_S3_CLUSTER_ENDPOINT  S3 endpoint for the shard pods                      KBT_E2E_S3_ENDPOINT
KBT_E2E_S3_ACCESS_KEY      S3 access key (also put in the jobs' Secret)          kbt-dev
KBT_E2E_S3_SECRET_KEY      S3 secret key                                         kbt-dev-secret
KBT_E2E_BUCKET             existing bucket for inputs, model and outputs         data
KBT_E2E_INSTANCE_TYPE      instance type that fits the cluster's nodes           ml.m5.large
KBT_E2E_TIMEOUT            seconds a job may take to finish                      300
=========================  ====================================================  =====================

The operator runs in this process (as `python -m kbt_operator` would), watching only the
test's own namespace, which is created and deleted per module. With kind and `make minio`,
port-forward MinIO first: ``kubectl -n kbt-system port-forward svc/minio 9000:9000`` and set
KBT_E2E_S3_CLUSTER_ENDPOINT=http://minio.kbt-system.svc.cluster.local:9000.
"""

from __future__ import annotations

import asyncio
import io
import os
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, config

from kbt_operator.testing import running_operator

pytestmark = pytest.mark.e2e


def _cluster_client() -> client.ApiClient | None:
    try:
        configuration = client.Configuration()
        config.load_kube_config(config_file=os.environ.get("KUBECONFIG"), client_configuration=configuration)
        api = client.ApiClient(configuration)
        client.VersionApi(api).get_code(_request_timeout=5)
        return api
    except Exception:  # any failure to reach a cluster means: no cluster here
        return None


API = _cluster_client()
if API is None:
    pytest.skip("no Kubernetes cluster reachable through KUBECONFIG", allow_module_level=True)

ENV = os.environ.get
RUNNER_IMAGE = ENV("KBT_E2E_RUNNER_IMAGE", "kbt/runner:dev")
S3_ENDPOINT = ENV("KBT_E2E_S3_ENDPOINT", "http://localhost:9000")
S3_CLUSTER_ENDPOINT = ENV("KBT_E2E_S3_CLUSTER_ENDPOINT", S3_ENDPOINT)
ACCESS_KEY = ENV("KBT_E2E_S3_ACCESS_KEY", "kbt-dev")
SECRET_KEY = ENV("KBT_E2E_S3_SECRET_KEY", "kbt-dev-secret")
BUCKET = ENV("KBT_E2E_BUCKET", "data")
INSTANCE_TYPE = ENV("KBT_E2E_INSTANCE_TYPE", "ml.m5.large")
TIMEOUT = float(ENV("KBT_E2E_TIMEOUT", "300"))
GROUP, VERSION = "kbt.dev", "v1alpha1"
CORE = client.CoreV1Api(API)
BATCH = client.BatchV1Api(API)
CUSTOM = client.CustomObjectsApi(API)
FEATURES = ["f0", "f1", "f2", "f3"]


@pytest.fixture(scope="module")
def namespace() -> Iterator[str]:
    try:
        client.ApiextensionsV1Api(API).read_custom_resource_definition("batchtransformjobs.kbt.dev")
    except client.ApiException as exc:
        pytest.fail(f"the kbt CRDs are not installed ({exc.status}): kubectl apply -f crds/")
    name = f"kbt-e2e-{uuid.uuid4().hex[:6]}"
    CORE.create_namespace({"metadata": {"name": name}})
    try:
        yield name
    finally:
        CORE.delete_namespace(name)


@pytest.fixture(scope="module")
def s3() -> Any:
    import boto3

    return boto3.client("s3", endpoint_url=S3_ENDPOINT, aws_access_key_id=ACCESS_KEY,
                        aws_secret_access_key=SECRET_KEY, region_name="us-east-1")


@pytest.fixture(scope="module")
def data(namespace: str, s3: Any) -> str:
    """A model and 2 input files under s3://BUCKET/<namespace>/; the credentials Secret."""
    import joblib
    import numpy as np
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(200, 4)), columns=FEATURES)
    model = LogisticRegression().fit(frame, (frame["f0"] > 0).astype(int))
    buffer = io.BytesIO()
    joblib.dump(model, buffer)
    s3.put_object(Bucket=BUCKET, Key=f"{namespace}/model/model.joblib", Body=buffer.getvalue())
    for part in range(2):
        s3.put_object(Bucket=BUCKET, Key=f"{namespace}/input/part-{part}.csv", Body=frame[part::2].to_csv(index=False).encode())
    CORE.create_namespaced_secret(namespace, {"metadata": {"name": "s3-creds"}, "stringData": {
        "AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY}})
    CUSTOM.create_namespaced_custom_object(GROUP, VERSION, namespace, "models", {
        "apiVersion": f"{GROUP}/{VERSION}", "kind": "Model", "metadata": {"name": "lr"},
        "spec": {"uri": f"s3://{BUCKET}/{namespace}/model/", "flavor": "sklearn"}})
    return f"s3://{BUCKET}/{namespace}"


@pytest.fixture
async def operator(namespace: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[None]:
    monkeypatch.setenv("KBT_RUNNER_IMAGE", RUNNER_IMAGE)
    monkeypatch.setenv("KBT_METRICS_PORT", "0")
    monkeypatch.setenv("KBT_SETUP_RETRY_SECONDS", "1")
    async with running_operator(namespaces=(namespace,)):
        yield


def btj(name: str, prefix: str, **spec: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "modelName": "lr",
        "shardCount": 2,
        "transformInput": {"dataSource": {"s3DataSource": {"s3Uri": f"{prefix}/input/"}}, "contentType": "text/csv"},
        "transformOutput": {"s3OutputPath": f"{prefix}/output/{name}/"},
        "transformResources": {"instanceType": INSTANCE_TYPE, "instanceCount": 2},
        "s3": {"endpointUrl": S3_CLUSTER_ENDPOINT, "credentialsSecret": {"name": "s3-creds"}, "addressingStyle": "path"},
        "backoffLimitPerIndex": 1,
    }
    base.update(spec)
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": "BatchTransformJob", "metadata": {"name": name}, "spec": base}


def create(namespace: str, manifest: dict[str, Any]) -> None:
    CUSTOM.create_namespaced_custom_object(GROUP, VERSION, namespace, "batchtransformjobs", manifest)


def patch_spec(namespace: str, name: str, spec: dict[str, Any]) -> None:
    CUSTOM.patch_namespaced_custom_object(GROUP, VERSION, namespace, "batchtransformjobs", name, {"spec": spec})


def status(namespace: str, name: str) -> dict[str, Any]:
    body = CUSTOM.get_namespaced_custom_object(GROUP, VERSION, namespace, "batchtransformjobs", name)
    return dict(body.get("status") or {})


async def wait_for(check: Any, timeout: float = TIMEOUT, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = await asyncio.to_thread(check)
        if result:
            return result
        await asyncio.sleep(1)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


async def wait_state(namespace: str, name: str, state: str) -> dict[str, Any]:
    def reached() -> dict[str, Any] | None:
        current = status(namespace, name)
        return current if current.get("transformJobStatus") == state else None

    result: dict[str, Any] = await wait_for(reached, what=f"{name} to be {state} (now {status(namespace, name)})")
    return result


def condition(namespace: str, name: str, kind: str) -> dict[str, Any]:
    return next((c for c in status(namespace, name).get("conditions", []) if c["type"] == kind), {})


def jobs_of(namespace: str, name: str) -> list[Any]:
    return list(BATCH.list_namespaced_job(namespace, label_selector=f"kbt.dev/job-name={name}").items)


async def test_job_runs_to_completion_with_restricted_pods(namespace: str, data: str, s3: Any, operator: None) -> None:
    create(namespace, btj("complete", data))
    done = await wait_state(namespace, "complete", "Completed")
    assert done["shards"]["completedIndexes"] == "0-1" and done["progressSummary"] == "2/2 shards, 100%"
    assert done["progress"]["recordsProcessed"] == 200
    listed = s3.list_objects_v2(Bucket=BUCKET, Prefix=f"{namespace}/output/complete/")
    outputs = {obj["Key"].rsplit("/", 1)[-1] for obj in listed.get("Contents", [])}
    assert {"part-0.csv.out", "part-1.csv.out"} <= outputs, outputs  # SageMaker: <input>.out
    (pod, *_) = CORE.list_namespaced_pod(namespace, label_selector="kbt.dev/job-name=complete").items
    assert pod.spec.security_context.run_as_non_root and pod.spec.containers[0].security_context.read_only_root_filesystem
    reasons = [e.reason for e in CORE.list_namespaced_event(namespace).items if e.involved_object.name == "complete"]
    assert "Started" in reasons and "Completed" in reasons


async def test_non_retriable_failure_and_retry_of_failed_shards(namespace: str, data: str, s3: Any, operator: None) -> None:
    CUSTOM.create_namespaced_custom_object(GROUP, VERSION, namespace, "models", {
        "apiVersion": f"{GROUP}/{VERSION}", "kind": "Model", "metadata": {"name": "late"},
        "spec": {"uri": f"{data}/late-model/", "flavor": "sklearn"}})
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
    create(namespace, btj("stop", data, shardCount=2, transformResources={"instanceType": INSTANCE_TYPE, "instanceCount": 1}))
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
        return not (jobs_of(namespace, "gc") or CORE.list_namespaced_config_map(namespace, label_selector=selector).items
                    or CORE.list_namespaced_service_account(namespace, label_selector=selector).items)

    assert await wait_for(gone, timeout=120, what="garbage collection")


async def test_setup_problems_become_conditions(namespace: str, data: str, operator: None) -> None:
    create(namespace, btj("nomodel", data, modelName="absent"))
    create(namespace, btj("nosecret", data, s3={"credentialsSecret": {"name": "absent"}}))
    create(namespace, btj("badtype", data, transformResources={"instanceType": "ml.z9.huge", "instanceCount": 1}))
    await wait_for(lambda: condition(namespace, "nomodel", "Ready").get("reason") == "ModelNotFound", 60, "ModelNotFound")
    await wait_for(lambda: condition(namespace, "nosecret", "Ready").get("reason") == "SecretNotFound", 60, "SecretNotFound")
    failed = await wait_state(namespace, "badtype", "Failed")
    assert "unknown instanceType 'ml.z9.huge'" in failed["failureReason"]
    assert not jobs_of(namespace, "nomodel") and not jobs_of(namespace, "badtype")


async def test_gpu_placement_and_restart_adoption(namespace: str, data: str) -> None:
    async with running_operator(namespaces=(namespace,)):
        create(namespace, btj("gpu", data, transformResources={"instanceType": "ml.g5.xlarge", "instanceCount": 1}))
        (job,) = await wait_for(lambda: jobs_of(namespace, "gpu"), 60, "the GPU Job")
    pod = job.spec.template.spec
    assert pod.node_selector.get("nvidia.com/gpu.product") == "NVIDIA-A10G" or "nvidia.com/gpu.present" in pod.node_selector
    assert any(t.key == "nvidia.com/gpu" for t in pod.tolerations)
    async with running_operator(namespaces=(namespace,)):
        await asyncio.sleep(5)
        assert [j.metadata.name for j in jobs_of(namespace, "gpu")] == [job.metadata.name]
