"""Shared by the e2e tests: the cluster and S3 they use, job manifests, waits and cleanup.

Every setting comes from the environment (docs/e2e.md lists them). `API` is None when no
cluster answers through KUBECONFIG; each test module then skips itself.
"""

from __future__ import annotations

import asyncio
import os
import shlex
import shutil
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any, TypeVar

import boto3
import numpy as np
import pandas as pd
import pytest
from kubernetes import client, config

from kbt_operator.runner_images import project_image


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
NO_CLUSTER = "no Kubernetes cluster reachable through KUBECONFIG"
ENV = os.environ.get
RUNNER_IMAGE = ENV("KBT_E2E_RUNNER_IMAGE") or project_image("kbt/runner")  # the tag `make images` gives
S3_ENDPOINT = ENV("KBT_E2E_S3_ENDPOINT", "http://localhost:9000")
S3_CLUSTER_ENDPOINT = ENV("KBT_E2E_S3_CLUSTER_ENDPOINT", S3_ENDPOINT)
ACCESS_KEY = ENV("KBT_E2E_S3_ACCESS_KEY", "kbt-dev")
SECRET_KEY = ENV("KBT_E2E_S3_SECRET_KEY", "kbt-dev-secret")
BUCKET = ENV("KBT_E2E_BUCKET", "data")
INSTANCE_TYPE = ENV("KBT_E2E_INSTANCE_TYPE", "ml.m5.large")
TIMEOUT = float(ENV("KBT_E2E_TIMEOUT", "300"))
# Shards request this share of their instance type's CPU and memory, so several fit a 2-CPU node.
CPU_REQUEST_PERCENT = ENV("KBT_E2E_CPU_REQUEST_PERCENT", "10")
MEMORY_REQUEST_PERCENT = ENV("KBT_E2E_MEMORY_REQUEST_PERCENT", "5")
GROUP, VERSION = "kbt.dev", "v1alpha1"
CORE = client.CoreV1Api(API)
BATCH = client.BatchV1Api(API)
CUSTOM = client.CustomObjectsApi(API)
FEATURES = ["f0", "f1", "f2", "f3"]
T = TypeVar("T")


def operator_env(namespace: str) -> dict[str, str]:
    """The environment an operator watching `namespace` runs with in these tests."""
    return {
        "KBT_NAMESPACES": namespace,
        "KBT_RUNNER_IMAGE": RUNNER_IMAGE,
        "KBT_METRICS_PORT": "0",
        "KBT_HEALTH_PORT": "0",
        "KBT_SETUP_RETRY_SECONDS": "1",
        "KBT_CPU_REQUEST_PERCENT": CPU_REQUEST_PERCENT,
        "KBT_MEMORY_REQUEST_PERCENT": MEMORY_REQUEST_PERCENT,
    }


@asynccontextmanager
async def operator_in_process(namespace: str, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[None]:
    """The operator, run in this process as `python -m kbt_operator` would, watching `namespace`."""
    from harness.kmock_cluster import running_operator  # noqa: PLC0415 (needs kmock: in-process mode only)

    for key, value in operator_env(namespace).items():
        monkeypatch.setenv(key, value)
    async with running_operator(namespaces=(namespace,)):
        yield


def require_crds() -> None:
    try:
        client.ApiextensionsV1Api(API).read_custom_resource_definition("batchtransformjobs.kbt.dev")
    except client.ApiException as exc:
        pytest.fail(f"the kbt CRDs are not installed ({exc.status}): kubectl apply -f crds/")


def _ignore_missing(call: Callable[..., object], *args: Any, **kwargs: Any) -> None:
    try:
        call(*args, **kwargs)
    except client.ApiException as exc:
        if exc.status != 404:
            raise


async def _wait_gone(name: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            await asyncio.to_thread(CORE.read_namespace, name)
        except client.ApiException as exc:
            if exc.status == 404:
                return
            raise
        await asyncio.sleep(1)
    raise AssertionError(f"namespace {name} still exists {timeout:.0f}s after its deletion")


async def delete_namespace(name: str, timeout: float = 60) -> None:
    """Delete a namespace the way a user does (issue 16 item 6): only the namespace, with the
    operator running; it must be gone within `timeout` seconds, whatever kbt jobs it held."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        async with operator_in_process(name, monkeypatch):
            await asyncio.to_thread(_ignore_missing, CORE.delete_namespace, name)
            await _wait_gone(name, timeout)


@contextmanager
def fresh_namespace(prefix: str = "kbt-e2e") -> Iterator[str]:
    require_crds()
    name = f"{prefix}-{uuid.uuid4().hex[:6]}"
    CORE.create_namespace({"metadata": {"name": name}})
    try:
        yield name
    finally:
        asyncio.run(delete_namespace(name))


def s3_client() -> Any:
    return boto3.client(
        "s3",
        endpoint_url=S3_ENDPOINT,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
        region_name="us-east-1",
    )


def input_frames(files: int, rows: int) -> list[Any]:
    """Deterministic CSV inputs: `files` frames of `rows` rows with FEATURES columns."""
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(files * rows, len(FEATURES))), columns=FEATURES)
    return [frame[part::files] for part in range(files)]


def put_inputs(s3: Any, namespace: str, files: int, rows: int) -> str:
    """Input files under s3://BUCKET/<namespace>/input/ and the credentials Secret; returns the prefix."""
    for part, frame in enumerate(input_frames(files, rows)):
        s3.put_object(
            Bucket=BUCKET, Key=f"{namespace}/input/part-{part}.csv", Body=frame.to_csv(index=False).encode()
        )
    CORE.create_namespaced_secret(
        namespace,
        {
            "metadata": {"name": "s3-creds"},
            "stringData": {"AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY},
        },
    )
    return f"s3://{BUCKET}/{namespace}"


def create_model(namespace: str, name: str, spec: dict[str, Any]) -> None:
    CUSTOM.create_namespaced_custom_object(
        GROUP,
        VERSION,
        namespace,
        "models",
        {"apiVersion": f"{GROUP}/{VERSION}", "kind": "Model", "metadata": {"name": name}, "spec": spec},
    )


def btj(name: str, prefix: str, **spec: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "modelName": "lr",
        "shardCount": 2,
        "transformInput": {
            "dataSource": {"s3DataSource": {"s3Uri": f"{prefix}/input/"}},
            "contentType": "text/csv",
        },
        "transformOutput": {"s3OutputPath": f"{prefix}/output/{name}/"},
        "transformResources": {"instanceType": INSTANCE_TYPE, "instanceCount": 2},
        "s3": {
            "endpointUrl": S3_CLUSTER_ENDPOINT,
            "credentialsSecret": {"name": "s3-creds"},
            "addressingStyle": "path",
        },
        "backoffLimitPerIndex": 1,
    }
    base.update(spec)
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "BatchTransformJob",
        "metadata": {"name": name},
        "spec": base,
    }


def create(namespace: str, manifest: dict[str, Any]) -> None:
    CUSTOM.create_namespaced_custom_object(GROUP, VERSION, namespace, "batchtransformjobs", manifest)


def patch_spec(namespace: str, name: str, spec: dict[str, Any]) -> None:
    CUSTOM.patch_namespaced_custom_object(
        GROUP, VERSION, namespace, "batchtransformjobs", name, {"spec": spec}
    )


def status(namespace: str, name: str) -> dict[str, Any]:
    body = CUSTOM.get_namespaced_custom_object(GROUP, VERSION, namespace, "batchtransformjobs", name)
    return dict(body.get("status") or {})


async def wait_for(check: Callable[[], T | None], timeout: float = TIMEOUT, what: str = "") -> T:
    """Poll `check` (in a thread) every second until it returns something truthy."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = await asyncio.to_thread(check)
        if result:
            return result
        await asyncio.sleep(1)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


async def wait_state(namespace: str, name: str, state: str, timeout: float = TIMEOUT) -> dict[str, Any]:
    def reached() -> dict[str, Any] | None:
        current = status(namespace, name)
        return current if current.get("transformJobStatus") == state else None

    return await wait_for(reached, timeout, f"{name} to be {state} (now {status(namespace, name)})")


def condition(namespace: str, name: str, kind: str) -> dict[str, Any]:
    return next((c for c in status(namespace, name).get("conditions", []) if c["type"] == kind), {})


def jobs_of(namespace: str, name: str) -> list[Any]:
    return list(BATCH.list_namespaced_job(namespace, label_selector=f"kbt.dev/job-name={name}").items)


def shard_pods(namespace: str, name: str, phase: str | None = None) -> list[Any]:
    pods = CORE.list_namespaced_pod(namespace, label_selector=f"kbt.dev/job-name={name}").items
    return [pod for pod in pods if phase is None or pod.status.phase == phase]


def outputs(s3: Any, prefix: str) -> dict[str, bytes]:
    """Every output object under s3://BUCKET/`prefix` but the run's logs and summary, by relative key."""
    found: dict[str, bytes] = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix):
        for obj in page.get("Contents", []):
            relative = obj["Key"].removeprefix(prefix)
            if not relative.startswith("_kbt/") and relative != "_manifest.json":
                found[relative] = s3.get_object(Bucket=BUCKET, Key=obj["Key"])["Body"].read()
    return found


def local_outputs(folder: Path) -> dict[str, bytes]:
    """The same selection as `outputs`, from a `kbt run` output folder."""
    return {
        path.relative_to(folder).as_posix(): path.read_bytes()
        for path in sorted(folder.rglob("*"))
        if path.is_file() and not path.relative_to(folder).as_posix().startswith(("_kbt/", "_manifest.json"))
    }


def control_plane_exec() -> list[str] | None:
    """A command prefix that runs a command on the control-plane node, when one is known:
    KBT_E2E_CONTROL_PLANE_EXEC, or `docker exec <cluster>-control-plane` for a kind context."""
    configured = ENV("KBT_E2E_CONTROL_PLANE_EXEC", "").strip()
    if configured:
        return shlex.split(configured)
    try:
        _, context = config.list_kube_config_contexts(config_file=ENV("KUBECONFIG"))
    except Exception:  # no kubeconfig contexts: nothing to derive
        return None
    name = str(context.get("name", ""))
    if name.startswith("kind-") and shutil.which("docker"):
        return ["docker", "exec", f"{name.removeprefix('kind-')}-control-plane"]
    return None
