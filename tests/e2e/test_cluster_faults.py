"""Faults on a real cluster: each one hits a job mid-run, and its outputs must still equal, byte
for byte, what `kbt run` writes for the same job on this machine (nothing lost, nothing twice).

A shard pod deleted; the operator SIGKILLed and restarted (still one Job per resource); the
apiserver down for 30 s; S3 unreachable for 60 s; a node drained. Each test has its own
namespace, deleted the way a user should (jobs first), and fits a 2-CPU single-node cluster;
a fault the cluster cannot show is skipped with the reason. Settings: docs/e2e.md.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from cluster_support import (
    API,
    BUCKET,
    CORE,
    NO_CLUSTER,
    S3_CLUSTER_ENDPOINT,
    btj,
    control_plane_exec,
    create,
    create_model,
    fresh_namespace,
    input_frames,
    jobs_of,
    local_outputs,
    operator_env,
    operator_in_process,
    outputs,
    put_inputs,
    s3_client,
    shard_pods,
    status,
    wait_for,
    wait_state,
)
from kubernetes import client

pytestmark = pytest.mark.e2e
if API is None:
    pytest.skip(NO_CLUSTER, allow_module_level=True)

FILES, ROWS, MINI_BATCH = 4, 100, 10
SECONDS_PER_BATCH = 1.0  # 40 mini-batches: each shard runs ~20 s, long enough to be hit mid-run
TOTAL = FILES * ROWS
SCORE_PY = f'''"""Scores f0 > 0, slowly, so that faults land mid-run."""
import time

import pandas as pd


def init():
    pass


def run(mini_batch):
    time.sleep({SECONDS_PER_BATCH})
    return pd.DataFrame({{"positive": (mini_batch["f0"] > 0).astype(int)}})
'''
FAULT_SPEC: dict[str, Any] = {"modelName": "slow", "miniBatchSize": MINI_BATCH, "backoffLimitPerIndex": 6}


@pytest.fixture(scope="module")
def expected(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """What `kbt run` writes for the fault job on this machine, from the same inputs and script."""
    work = tmp_path_factory.mktemp("kbt-run")
    (work / "input").mkdir()
    for part, frame in enumerate(input_frames(FILES, ROWS)):
        (work / "input" / f"part-{part}.csv").write_text(frame.to_csv(index=False))
    (work / "model").mkdir()
    (work / "model" / "score.py").write_text(SCORE_PY)
    job = btj("local", "unused", **FAULT_SPEC)
    job["spec"].pop("s3")
    job["spec"]["transformInput"]["dataSource"]["s3DataSource"]["s3Uri"] = str(work / "input") + "/"
    job["spec"]["transformOutput"]["s3OutputPath"] = str(work / "output") + "/"
    model = {
        "apiVersion": job["apiVersion"],
        "kind": "Model",
        "metadata": {"name": "slow"},
        "spec": {"uri": str(work / "model") + "/", "flavor": "custom", "scoringScript": "score.py"},
    }
    (work / "job.yaml").write_text(yaml.safe_dump_all([job, model]))
    kbt = Path(sys.executable).with_name("kbt")
    subprocess.run([str(kbt), "run", str(work / "job.yaml")], check=True, timeout=600)
    written = local_outputs(work / "output")
    assert {f"part-{part}.csv.out" for part in range(FILES)} <= set(written), written.keys()
    return written


@pytest.fixture
def namespace() -> Iterator[str]:
    with fresh_namespace("kbt-fault") as name:
        yield name


@pytest.fixture
def s3() -> Any:
    return s3_client()


@pytest.fixture
def prefix(namespace: str, s3: Any) -> str:
    """The inputs, the slow scoring script as Model `slow`, and the credentials Secret."""
    data = put_inputs(s3, namespace, FILES, ROWS)
    s3.put_object(Bucket=BUCKET, Key=f"{namespace}/slow-model/score.py", Body=SCORE_PY.encode())
    create_model(
        namespace, "slow", {"uri": f"{data}/slow-model/", "flavor": "custom", "scoringScript": "score.py"}
    )
    return data


@pytest.fixture
async def operator(namespace: str, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[None]:
    async with operator_in_process(namespace, monkeypatch):
        yield


def mid_run(namespace: str, name: str) -> dict[str, Any] | None:
    """The job's status once some records, but not all, are done."""
    current = status(namespace, name)
    done = current.get("progress", {}).get("recordsProcessed", 0)
    return current if 0 < done < TOTAL and current.get("transformJobStatus") == "InProgress" else None


async def finishes_exactly(
    namespace: str, name: str, prefix: str, s3: Any, expected: dict[str, bytes]
) -> None:
    """The job completes with one Job, and its outputs are those `kbt run` wrote."""
    await wait_state(namespace, name, "Completed")
    assert len(jobs_of(namespace, name)) == 1
    written = outputs(s3, f"{prefix.removeprefix(f's3://{BUCKET}/')}/output/{name}/")
    assert written.keys() == expected.keys()
    for key, body in expected.items():
        assert written[key] == body, f"{key} differs from kbt run's output"


async def test_deleted_shard_pod_is_replaced(
    namespace: str, prefix: str, s3: Any, operator: None, expected: dict[str, bytes]
) -> None:
    create(namespace, btj("podkill", prefix, **FAULT_SPEC))
    await wait_for(lambda: mid_run(namespace, "podkill"), what="podkill mid-run")
    (victim, *_) = shard_pods(namespace, "podkill", "Running")
    CORE.delete_namespaced_pod(victim.metadata.name, namespace)
    await wait_for(
        lambda: [
            p
            for p in shard_pods(namespace, "podkill")
            if p.metadata.name != victim.metadata.name
            and p.metadata.annotations.get("batch.kubernetes.io/job-completion-index")
            == victim.metadata.annotations.get("batch.kubernetes.io/job-completion-index")
        ],
        what="a replacement for the deleted shard pod",
    )
    await finishes_exactly(namespace, "podkill", prefix, s3, expected)


class OperatorProcess:
    """`python -m kbt_operator` watching one namespace, killable with SIGKILL."""

    def __init__(self, namespace: str, log: Path) -> None:
        self.env = {**os.environ, **operator_env(namespace)}
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "kbt_operator"], env=self.env, stdout=log, stderr=log
            )

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)


async def test_operator_killed_and_restarted_mid_job(
    namespace: str, prefix: str, s3: Any, tmp_path: Path, expected: dict[str, bytes]
) -> None:
    operator = OperatorProcess(namespace, tmp_path / "operator.log")
    operator.start()
    try:
        create(namespace, btj("opkill", prefix, **FAULT_SPEC))
        await wait_for(
            lambda: mid_run(namespace, "opkill"), what=f"opkill mid-run (operator log: {operator.log})"
        )
        (job,) = jobs_of(namespace, "opkill")
        operator.kill()
        await asyncio.sleep(5)
        operator.start()
        await finishes_exactly(namespace, "opkill", prefix, s3, expected)
        assert [j.metadata.name for j in jobs_of(namespace, "opkill")] == [job.metadata.name]
        assert status(namespace, "opkill")["progress"]["recordsProcessed"] == TOTAL
    finally:
        operator.kill()


def _apiserver_up() -> bool:
    try:
        client.VersionApi(API).get_code(_request_timeout=3)
        return True
    except Exception:  # refused, reset, timed out: down
        return False


async def test_apiserver_down_for_30s_mid_job(
    namespace: str, prefix: str, s3: Any, operator: None, expected: dict[str, bytes]
) -> None:
    on_node = control_plane_exec()
    if on_node is None:
        pytest.skip(
            "stopping the apiserver needs a shell on the control-plane node: set KBT_E2E_CONTROL_PLANE_EXEC "
            "(e.g. 'docker exec kind-control-plane'); kind contexts get it automatically"
        )
    manifest, parked = (
        "/etc/kubernetes/manifests/kube-apiserver.yaml",
        "/etc/kubernetes/kube-apiserver.yaml.kbt-e2e",
    )
    if subprocess.run([*on_node, "test", "-f", manifest], check=False, timeout=30).returncode != 0:
        pytest.skip(
            f"no static-pod apiserver at {manifest} on the control-plane node (managed control plane?)"
        )
    create(namespace, btj("apidown", prefix, **FAULT_SPEC))
    await wait_for(lambda: mid_run(namespace, "apidown"), what="apidown mid-run")
    subprocess.run([*on_node, "mv", manifest, parked], check=True, timeout=30)
    try:
        await wait_for(lambda: not _apiserver_up(), 120, "the apiserver to stop")
        await asyncio.sleep(30)
    finally:
        subprocess.run([*on_node, "mv", parked, manifest], check=True, timeout=30)
    await wait_for(_apiserver_up, 240, "the apiserver to come back")
    await finishes_exactly(namespace, "apidown", prefix, s3, expected)


def _s3_service() -> tuple[str, str, int]:
    """The in-cluster Service (namespace, name, port) behind KBT_E2E_S3_CLUSTER_ENDPOINT."""
    url = urlsplit(S3_CLUSTER_ENDPOINT)
    parts = (url.hostname or "").split(".")
    if len(parts) < 3 or parts[2] != "svc":
        pytest.skip(
            f"the S3 outage cuts an in-cluster S3 Service off its pods; KBT_E2E_S3_CLUSTER_ENDPOINT="
            f"{S3_CLUSTER_ENDPOINT} is not http://<service>.<namespace>.svc..."
        )
    return parts[1], parts[0], url.port or 80


async def test_s3_unreachable_for_60s_mid_job(
    namespace: str, prefix: str, s3: Any, operator: None, expected: dict[str, bytes]
) -> None:
    """The shards reach S3 through a selector-less Service `s3-gate` whose Endpoints are the S3
    pods; removing the Endpoints for 60 s makes S3 unreachable for the shards only."""
    service_namespace, service, port = _s3_service()
    backends = CORE.read_namespaced_endpoints(service, service_namespace)
    CORE.create_namespaced_service(
        namespace,
        {
            "metadata": {"name": "s3-gate"},
            "spec": {"ports": [{"name": "s3", "port": port, "targetPort": port}]},
        },
    )

    def open_gate() -> None:
        subsets = [
            {
                "addresses": [{"ip": a.ip} for a in subset.addresses or []],
                "ports": [{"name": "s3", "port": p.port} for p in subset.ports],
            }
            for subset in backends.subsets or []
        ]
        CORE.create_namespaced_endpoints(namespace, {"metadata": {"name": "s3-gate"}, "subsets": subsets})

    open_gate()
    gate = f"http://s3-gate.{namespace}.svc.cluster.local:{port}"
    spec = {**FAULT_SPEC, "s3": {**btj("x", prefix)["spec"]["s3"], "endpointUrl": gate}}
    create(namespace, btj("s3down", prefix, **spec))
    await wait_for(lambda: mid_run(namespace, "s3down"), what="s3down mid-run")
    CORE.delete_namespaced_endpoints("s3-gate", namespace)
    cut = time.monotonic()
    try:
        await asyncio.sleep(60)
        assert status(namespace, "s3down")["transformJobStatus"] != "Completed", "S3 was not cut off"
    finally:
        open_gate()
    assert time.monotonic() - cut >= 60
    await finishes_exactly(namespace, "s3down", prefix, s3, expected)


def _schedulable_nodes() -> list[Any]:
    nodes = []
    for node in CORE.list_node().items:
        ready = any(c.type == "Ready" and c.status == "True" for c in node.status.conditions or [])
        tainted = any(t.effect in ("NoSchedule", "NoExecute") for t in node.spec.taints or [])
        if ready and not node.spec.unschedulable and not tainted:
            nodes.append(node)
    return nodes


async def test_drained_node_reschedules_its_shards(
    namespace: str, prefix: str, s3: Any, operator: None, expected: dict[str, bytes]
) -> None:
    """Cordon the node of a running shard and evict the shard: the Job controller runs it again
    elsewhere (an eviction is a disruption, not a failure: docs/e2e.md#node-failures)."""
    if len(_schedulable_nodes()) < 2:
        pytest.skip(
            "fewer than 2 untainted Ready nodes: a node's loss cannot be shown without losing the cluster"
        )
    create(namespace, btj("drain", prefix, **FAULT_SPEC))
    await wait_for(lambda: mid_run(namespace, "drain"), what="drain mid-run")
    (victim, *_) = shard_pods(namespace, "drain", "Running")
    node = victim.spec.node_name
    CORE.patch_node(node, {"spec": {"unschedulable": True}})
    try:
        for pod in shard_pods(namespace, "drain", "Running"):
            if pod.spec.node_name == node:
                CORE.create_namespaced_pod_eviction(
                    pod.metadata.name,
                    namespace,
                    {
                        "apiVersion": "policy/v1",
                        "kind": "Eviction",
                        "metadata": {"name": pod.metadata.name, "namespace": namespace},
                    },
                )
        await finishes_exactly(namespace, "drain", prefix, s3, expected)
        later = [
            p
            for p in shard_pods(namespace, "drain")
            if p.metadata.creation_timestamp > victim.metadata.creation_timestamp
        ]
        assert later and all(p.spec.node_name != node for p in later)
    finally:
        CORE.patch_node(node, {"spec": {"unschedulable": False}})
