"""The real kopf operator against kmock (an in-process Kubernetes API with watch streams).

kmock has no controllers, so `JobController` plays the Indexed Job controller and the shards
(pods, exit codes, termination messages, Job status) and tests play Kueue. kmock also has no
garbage collector: deletion is checked through ownerReferences (the e2e tests see real GC).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import kmock
import pytest
from prometheus_client import REGISTRY

from harness.kmock_cluster import (
    ApiServer,
    Client,
    JobController,
    eventually,
    running_operator,
    write_kubeconfig,
)
from kbt_operator import rbac
from kbt_operator.reconcile import reconcile

NS = "team-a"
BTJS = "kbt.dev/v1alpha1/batchtransformjobs"
JOBS = "batch/v1/jobs"
CREDENTIALS = {
    "apiVersion": "v1",
    "kind": "Secret",
    "metadata": {"name": "s3-creds", "namespace": NS},
    "stringData": {"AWS_ACCESS_KEY_ID": "k", "AWS_SECRET_ACCESS_KEY": "s"},
}
MODEL = {
    "apiVersion": "kbt.dev/v1alpha1",
    "kind": "Model",
    "metadata": {"name": "heart-model", "namespace": NS},
    "spec": {"uri": "s3://models/heart/", "flavor": "sklearn"},
}


def manifest(name: str = "heart", **spec: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "modelName": "heart-model",
        "shardCount": 3,
        "transformInput": {"dataSource": {"s3DataSource": {"s3Uri": "s3://data/heart/"}}},
        "transformOutput": {"s3OutputPath": "s3://results/heart/"},
        "transformResources": {"instanceType": "ml.m5.xlarge", "instanceCount": 3},
        "s3": {"endpointUrl": "http://minio:9000", "credentialsSecret": {"name": "s3-creds"}},
        "backoffLimitPerIndex": 1,
    }
    base.update(spec)
    return {
        "apiVersion": "kbt.dev/v1alpha1",
        "kind": "BatchTransformJob",
        "metadata": {"name": name, "namespace": NS},
        "spec": base,
    }


@dataclass
class Cluster:
    server: ApiServer
    client: Client
    jobs: JobController

    def btj(self, name: str = "heart") -> dict[str, Any]:
        body = self.server.read(BTJS, NS, name)
        assert body is not None, f"BatchTransformJob {name} is gone"
        return body

    def status(self, name: str = "heart") -> dict[str, Any]:
        return dict(self.btj(name).get("status") or {})

    async def state(self, expected: str, name: str = "heart", timeout: float = 10.0) -> dict[str, Any]:
        def reached() -> dict[str, Any]:
            status = self.status(name)
            assert status.get("transformJobStatus") == expected, (
                f"{name}: {status.get('transformJobStatus')}, want {expected}"
            )
            return status

        result: dict[str, Any] = await eventually(reached, timeout)
        return result

    async def job(self, job_name: str) -> dict[str, Any]:
        result: dict[str, Any] = await eventually(lambda: self.server.read(JOBS, NS, job_name))
        return result

    def events(self, name: str = "heart") -> list[tuple[str, str, str]]:
        return [
            (e["type"], e["reason"], e["message"])
            for e in self.server.list_objects("v1/events", NS)
            if e["involvedObject"]["name"] == name
        ]

    def condition(self, kind: str, name: str = "heart") -> dict[str, Any]:
        return next((c for c in self.status(name).get("conditions", []) if c["type"] == kind), {})

    def reasons(self, name: str = "heart") -> list[str]:
        return [reason for _, reason, _ in self.events(name)]

    def operator_requests(self) -> list[Any]:
        """Requests the operator made (kopf's and its API client's; not the test's own)."""
        return [r for r in list(self.server) if not r.headers.get("User-Agent", "").startswith("Python/")]


@pytest.fixture
async def cluster(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Cluster]:
    async with ApiServer() as server, kmock.Server(server):
        monkeypatch.setenv("KUBECONFIG", str(write_kubeconfig(tmp_path, str(server.url))))
        monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
        monkeypatch.setenv("KBT_METRICS_PORT", "0")
        monkeypatch.setenv("KBT_STATUS_INTERVAL", "0")
        monkeypatch.setenv("KBT_SETUP_RETRY_SECONDS", "0.2")
        monkeypatch.setenv("KBT_RUNNER_IMAGE", "kbt/runner:test")
        monkeypatch.setenv("KBT_RUNNER_GPU_IMAGE", "kbt/runner-cuda:test")
        async with aiohttp.ClientSession(base_url=str(server.url)) as session:
            client = Client(session)
            await client.create(f"/api/v1/namespaces/{NS}/secrets", CREDENTIALS)
            await client.create(f"/apis/kbt.dev/v1alpha1/namespaces/{NS}/models", MODEL)
            yield Cluster(server, client, JobController(server, client))


@pytest.fixture
async def operator(cluster: Cluster) -> AsyncIterator[None]:
    async with running_operator():
        yield


async def test_create_run_complete(cluster: Cluster, operator: None) -> None:
    await cluster.client.create_btj(manifest())
    job = await cluster.job("btj-heart-0")
    uid = cluster.btj()["metadata"]["uid"]
    assert job["spec"]["completions"] == 3 and job["spec"]["completionMode"] == "Indexed"
    owned = [
        obj
        for kind in (
            "v1/configmaps",
            "v1/serviceaccounts",
            "rbac.authorization.k8s.io/v1/roles",
            "rbac.authorization.k8s.io/v1/rolebindings",
            JOBS,
        )
        for obj in cluster.server.list_objects(kind, NS)
    ]
    assert len(owned) == 6  # 2 ConfigMaps, ServiceAccount, Role, RoleBinding, Job
    assert all(obj["metadata"]["ownerReferences"][0]["uid"] == uid for obj in owned)
    config = cluster.server.read("v1/configmaps", NS, "btj-heart-job")
    assert config is not None and json.loads(config["data"]["job.json"])["model"]["flavor"] == "sklearn"

    pending = await eventually(lambda: cluster.status().get("jobName") == "btj-heart-0" and cluster.status())
    assert pending["transformJobStatus"] == "Pending" and pending["model"] == "heart-model"
    await cluster.jobs.start(NS, "btj-heart-0")
    await cluster.state("InProgress")
    await cluster.client.report_progress(
        NS, "heart", 0, recordsProcessed=50, bytesProcessed=500, bytesTotal=1000, recordsPerSecond=25.0
    )
    await cluster.client.report_progress(
        NS, "heart", 1, recordsProcessed=10, bytesProcessed=100, bytesTotal=1000, recordsPerSecond=5.0
    )
    await eventually(lambda: cluster.status()["progress"]["recordsProcessed"] == 60)
    status = cluster.status()
    assert status["progress"]["recordsPerSecond"] == 30.0 and status["progressSummary"] == "0/3 shards, 20%"
    for index in range(3):
        await cluster.jobs.succeed(NS, "btj-heart-0", index)
    done = await cluster.state("Completed")
    assert done["shards"]["completedIndexes"] == "0-2" and done["progressSummary"] == "3/3 shards, 100%"
    assert done["endTime"] and done["startTime"] and done["observedGeneration"] == 1
    assert {c["type"]: c["status"] for c in done["conditions"]} == {
        "Ready": "True",
        "Running": "False",
        "Complete": "True",
        "Failed": "False",
        "Stopped": "False",
    }
    await eventually(lambda: "Completed" in cluster.reasons())
    reasons = cluster.reasons()
    assert {"JobCreated", "Pending"} == set(reasons[:2]) and reasons[2:] == ["Started", "Completed"]


async def test_retriable_failures_are_retried_and_reported(cluster: Cluster, operator: None) -> None:
    await cluster.client.create_btj(manifest(backoffLimitPerIndex=2))
    await cluster.job("btj-heart-0")
    await cluster.jobs.start(NS, "btj-heart-0")
    await cluster.jobs.fail(NS, "btj-heart-0", 1, 75, "S3 unavailable after 5 attempts")
    await cluster.jobs.fail(NS, "btj-heart-0", 1, 137, "")
    await eventually(lambda: cluster.reasons().count("ShardAttemptFailed") == 2)
    messages = [m for _, reason, m in cluster.events() if reason == "ShardAttemptFailed"]
    assert any(
        "shard 1 attempt failed" in m and "S3 unavailable after 5 attempts (exit code 75, RETRIABLE)" in m
        for m in messages
    )
    assert cluster.status()["transformJobStatus"] == "InProgress" and "failureReason" not in cluster.status()
    for index in range(3):
        await cluster.jobs.succeed(NS, "btj-heart-0", index)
    assert (await cluster.state("Completed"))["shards"]["failed"] == 0


async def test_non_retriable_failure_gives_the_runners_reason(cluster: Cluster, operator: None) -> None:
    await cluster.client.create_btj(manifest())
    await cluster.job("btj-heart-0")
    await cluster.jobs.start(NS, "btj-heart-0")
    await cluster.jobs.succeed(NS, "btj-heart-0", 0)
    await cluster.jobs.fail(
        NS,
        "btj-heart-0",
        2,
        4,
        "reading s3://data/heart/part-2.csv\nerror threshold exceeded: 12 bad records > 10",
    )
    await cluster.jobs.succeed(NS, "btj-heart-0", 1)
    failed = await cluster.state("Failed")
    assert (
        failed["failureReason"]
        == "shard 2: error threshold exceeded: 12 bad records > 10 (exit code 4, ERROR_THRESHOLD)"
    )
    assert failed["shards"] | {"active": 0} == {
        "total": 3,
        "active": 0,
        "succeeded": 2,
        "failed": 1,
        "completedIndexes": "0-1",
        "failedIndexes": "2",
    }
    assert failed["progressSummary"] == "2/3 shards, 66%, 1 failed"
    await eventually(lambda: "Failed" in cluster.reasons())
    shard_failed = [m for _, reason, m in cluster.events() if reason == "ShardFailed"]
    assert shard_failed == [
        "shard 2 failed: error threshold exceeded: 12 bad records > 10 (exit code 4, ERROR_THRESHOLD)"
    ]


async def test_stop_records_progress_and_ends_stopped(cluster: Cluster, operator: None) -> None:
    await cluster.client.create_btj(manifest())
    await cluster.job("btj-heart-0")
    await cluster.jobs.start(NS, "btj-heart-0")
    await cluster.jobs.succeed(NS, "btj-heart-0", 0)
    await eventually(lambda: cluster.status().get("shards", {}).get("succeeded") == 1)
    await cluster.client.patch_btj_spec(NS, "heart", {"stop": True})
    stopped = await cluster.state("Stopped")
    assert (
        stopped["shards"]["completedIndexes"] == "0"
        and stopped["shards"]["active"] == 0
        and stopped["endTime"]
    )
    assert cluster.server.read(JOBS, NS, "btj-heart-0") is None
    states = [
        v.get("status", {}).get("transformJobStatus") for v in cluster.server.history(BTJS, NS, "heart")
    ]
    assert "Stopping" in states and states.index("Stopping") < states.index("Stopped")
    (delete,) = [r for r in cluster.operator_requests() if r.method == "DELETE" and r.name == "btj-heart-0"]
    assert delete.data["propagationPolicy"] == "Foreground"
    await eventually(lambda: "Stopped" in cluster.reasons())


async def test_retry_failed_shards_runs_only_those(cluster: Cluster, operator: None) -> None:
    await cluster.client.create_btj(
        manifest(shardCount=4, transformResources={"instanceType": "ml.m5.xlarge", "instanceCount": 4})
    )
    await cluster.job("btj-heart-0")
    await cluster.jobs.start(NS, "btj-heart-0")
    for index in (0, 2):
        await cluster.jobs.succeed(NS, "btj-heart-0", index)
    for index in (1, 3):
        await cluster.jobs.fail(NS, "btj-heart-0", index, 5, f"cannot load model (shard {index})")
    await cluster.state("Failed")
    await cluster.client.patch_btj_spec(NS, "heart", {"retryFailedShards": 1})
    retry = await cluster.job("btj-heart-1")
    assert (
        retry["spec"]["completions"] == 2 and retry["metadata"]["annotations"]["kbt.dev/shard-map"] == "1,3"
    )
    container = retry["spec"]["template"]["spec"]["containers"][0]
    assert {"name": "KBT_SHARD_MAP", "value": "1,3"} in container["env"]
    await eventually(lambda: cluster.server.read(JOBS, NS, "btj-heart-0") is None)
    await cluster.jobs.start(NS, "btj-heart-1")
    running = await cluster.state("InProgress")
    assert running["retryGeneration"] == 1 and running["shards"]["completedIndexes"] == "0,2"
    assert "failureReason" not in running and "endTime" not in running
    for index in (0, 1):
        await cluster.jobs.succeed(NS, "btj-heart-1", index)
    done = await cluster.state("Completed")
    assert done["shards"]["completedIndexes"] == "0-3" and done["jobName"] == "btj-heart-1"
    assert "Retrying" in cluster.reasons()


async def test_deleted_job_is_forgotten_and_everything_it_made_is_owned(
    cluster: Cluster, operator: None
) -> None:
    await cluster.client.create_btj(manifest())
    await cluster.job("btj-heart-0")
    await cluster.state("Pending")
    uid = cluster.btj()["metadata"]["uid"]
    assert "finalizers" not in cluster.btj()["metadata"]  # deletion never waits for the operator
    await cluster.client.delete_btj(NS, "heart")
    await asyncio.sleep(0.5)
    creates = [r for r in cluster.operator_requests() if r.method == "POST" and r.resource.plural != "events"]
    assert len(creates) == 6
    for request in creates:
        assert (
            request.data["metadata"]["ownerReferences"][0] | {"name": "heart", "uid": uid}
            == request.data["metadata"]["ownerReferences"][0]
        )


async def test_restart_adopts_and_keeps_tracking(cluster: Cluster) -> None:
    async with running_operator():
        await cluster.client.create_btj(manifest())
        await cluster.job("btj-heart-0")
        await cluster.jobs.start(NS, "btj-heart-0")
        await cluster.state("InProgress")
    await cluster.jobs.succeed(NS, "btj-heart-0", 0)  # happens while no operator runs
    async with running_operator():
        await cluster.jobs.succeed(NS, "btj-heart-0", 1)
        await cluster.jobs.succeed(NS, "btj-heart-0", 2)
        await cluster.state("Completed")
    jobs = cluster.server.list_objects(JOBS, NS)
    assert [job["metadata"]["name"] for job in jobs] == ["btj-heart-0"]
    job_creates = [
        r for r in cluster.operator_requests() if r.method == "POST" and r.resource.plural == "jobs"
    ]
    assert len(job_creates) == 1  # the restarted operator found the Job, created nothing


async def test_restart_in_the_middle_of_creation_adopts_on_conflict(cluster: Cluster) -> None:
    await cluster.client.create_btj(manifest())
    uid = cluster.btj()["metadata"]["uid"]
    # A previous operator created the ConfigMap and the Job, then died before writing status.
    stale = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "data": {},
        "metadata": {
            "name": "kbt-progress-heart",
            "namespace": NS,
            "labels": {
                "app.kubernetes.io/managed-by": "kbt-operator",
                "app.kubernetes.io/component": "progress",
            },
            "ownerReferences": [
                {
                    "apiVersion": "kbt.dev/v1alpha1",
                    "kind": "BatchTransformJob",
                    "name": "heart",
                    "uid": uid,
                    "controller": True,
                }
            ],
        },
    }
    await cluster.client.create(f"/api/v1/namespaces/{NS}/configmaps", stale)
    async with running_operator():
        await cluster.job("btj-heart-0")
        await eventually(lambda: cluster.condition("Ready").get("reason") == "JobCreated")
        assert cluster.status()["transformJobStatus"] == "Pending"


async def test_foreign_object_with_our_name_is_a_conflict(cluster: Cluster, operator: None) -> None:
    foreign = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "data": {},
        "metadata": {"name": "btj-heart-job", "namespace": NS},
    }
    await cluster.client.create(f"/api/v1/namespaces/{NS}/configmaps", foreign)
    await cluster.client.create_btj(manifest())
    await eventually(lambda: cluster.condition("Ready").get("reason") == "NameConflict")
    assert (
        "ConfigMap team-a/btj-heart-job already exists and is not owned"
        in cluster.condition("Ready")["message"]
    )
    assert cluster.server.read(JOBS, NS, "btj-heart-0") is None


async def test_missing_model_and_secret_are_reported_and_retried(cluster: Cluster, operator: None) -> None:
    await cluster.client.create_btj(manifest(modelName="late-model"))
    ready = await eventually(
        lambda: cluster.condition("Ready").get("reason") == "ModelNotFound" and cluster.condition("Ready")
    )
    assert ready["status"] == "False" and ready["message"] == "Model late-model not found in namespace team-a"
    assert cluster.status()["transformJobStatus"] == "Pending"
    await eventually(
        lambda: (
            ("Warning", "ModelNotFound", "Model late-model not found in namespace team-a") in cluster.events()
        )
    )
    await cluster.client.create(
        f"/apis/kbt.dev/v1alpha1/namespaces/{NS}/models",
        MODEL | {"metadata": {"name": "late-model", "namespace": NS}},
    )
    await cluster.job("btj-heart-0")

    await cluster.client.create_btj(manifest("nosecret", s3={"credentialsSecret": {"name": "missing"}}))
    await eventually(lambda: cluster.condition("Ready", "nosecret").get("reason") == "SecretNotFound")
    assert "Secret missing not found in namespace team-a" in cluster.condition("Ready", "nosecret")["message"]
    assert cluster.server.read(JOBS, NS, "btj-nosecret-0") is None


async def test_unknown_instance_type_fails_without_a_job(cluster: Cluster, operator: None) -> None:
    await cluster.client.create_btj(
        manifest(transformResources={"instanceType": "ml.z9.huge", "instanceCount": 1})
    )
    failed = await cluster.state("Failed")
    assert failed["failureReason"].startswith(
        "spec.transformResources.instanceType: unknown instanceType 'ml.z9.huge'; known types: "
    )
    assert "ml.g5.*" in failed["failureReason"].split("; known types: ")[1].split(", ")
    await cluster.client.create_btj(
        manifest("typo", transformResources={"instanceType": "ml.g5.xlarg", "instanceCount": 1})
    )
    typo = await cluster.state("Failed", "typo")
    assert "unknown instanceType 'ml.g5.xlarg' (did you mean 'ml.g5.xlarge'" in typo["failureReason"]
    assert cluster.server.list_objects(JOBS, NS) == []
    await eventually(lambda: "UnknownInstanceType" in cluster.reasons())


async def test_gpu_job_lands_on_gpu_nodes(cluster: Cluster, operator: None) -> None:
    await cluster.client.create_btj(
        manifest(transformResources={"instanceType": "ml.g4dn.xlarge", "instanceCount": 1})
    )
    pod = (await cluster.job("btj-heart-0"))["spec"]["template"]["spec"]
    assert pod["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert pod["containers"][0]["image"] == "kbt/runner-cuda:test"
    assert pod["nodeSelector"] == {"nvidia.com/gpu.product": "Tesla-T4"}
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in pod["tolerations"]


async def test_queued_job_is_left_to_kueue(cluster: Cluster, operator: None) -> None:
    await cluster.client.create_btj(manifest(queueName="team-a-queue"))
    job = await cluster.job("btj-heart-0")
    assert (
        job["spec"]["suspend"] is True
        and job["metadata"]["labels"]["kueue.x-k8s.io/queue-name"] == "team-a-queue"
    )
    await eventually(lambda: cluster.condition("Running").get("reason") == "Queued")
    assert cluster.status()["transformJobStatus"] == "Pending"
    await cluster.client.patch(
        f"/apis/batch/v1/namespaces/{NS}/jobs/btj-heart-0", {"spec": {"suspend": False}}
    )  # Kueue admits
    await cluster.jobs.start(NS, "btj-heart-0")
    await cluster.state("InProgress")
    await cluster.client.patch_btj_spec(NS, "heart", {"suspend": True})
    await eventually(lambda: "Ignored" in cluster.reasons())
    assert not [r for r in cluster.operator_requests() if r.method == "PATCH" and r.resource.plural == "jobs"]


async def test_suspend_of_an_unqueued_job_toggles_the_job(cluster: Cluster, operator: None) -> None:
    await cluster.client.create_btj(manifest())
    await cluster.job("btj-heart-0")
    await cluster.client.patch_btj_spec(NS, "heart", {"suspend": True})
    await eventually(lambda: cluster.jobs.job(NS, "btj-heart-0")["spec"]["suspend"] is True)
    await eventually(lambda: cluster.condition("Running").get("reason") == "Suspended")
    await cluster.client.patch_btj_spec(NS, "heart", {"suspend": False})
    await eventually(lambda: cluster.jobs.job(NS, "btj-heart-0")["spec"]["suspend"] is False)


async def test_every_operator_request_is_granted_by_rbac_py(cluster: Cluster, operator: None) -> None:
    await cluster.client.create_btj(manifest())
    await cluster.job("btj-heart-0")
    await cluster.jobs.start(NS, "btj-heart-0")
    await cluster.jobs.fail(NS, "btj-heart-0", 0, 5, "no model")
    await cluster.jobs.succeed(NS, "btj-heart-0", 1)
    await cluster.jobs.succeed(NS, "btj-heart-0", 2)
    await cluster.state("Failed")
    await cluster.client.patch_btj_spec(NS, "heart", {"retryFailedShards": 1})
    await cluster.job("btj-heart-1")
    await cluster.client.patch_btj_spec(NS, "heart", {"stop": True})
    await cluster.state("Stopped")
    verbs = {
        "LIST": "list",
        "WATCH": "watch",
        "FETCH": "get",
        "CREATE": "create",
        "UPDATE": "patch",
        "DELETE": "delete",
    }
    used = set()
    for request in cluster.operator_requests():
        if request.resource is None or request.resource.plural is None:
            continue  # discovery (/api, /apis/group/version): allowed to every authenticated user
        resource = request.resource.plural + (f"/{request.subresource}" if request.subresource else "")
        used.add((request.resource.group, resource, verbs[request.action.value]))
    denied = {grant for grant in used if not rbac.allows(*grant)}
    assert denied == set()
    assert (
        ("", "secrets", "get") in used
        and ("batch", "jobs", "delete") in used
        and ("", "pods", "list") in used
    )


async def test_stored_objects_carry_the_crd_defaults_and_an_input_filter_alone_runs(
    cluster: Cluster, operator: None
) -> None:
    """#16.1: the API server defaults objects from the CRD; the harness does too (crd_defaults).

    With defaults on both spellings of joinSource, a manifest with only inputFilter was stored
    with joinSource and JoinSource, and the operator failed the job (alias conflict).
    """
    await cluster.client.create_btj(manifest("filtered", dataProcessing={"inputFilter": "$[1:]"}))
    stored = cluster.btj("filtered")["spec"]
    assert stored["batchStrategy"] == "MultiRecord" and stored["maxPayloadInMB"] == 6
    assert stored["dataProcessing"] == {"inputFilter": "$[1:]"}
    await cluster.job("btj-filtered-0")
    pending = await eventually(
        lambda: cluster.status("filtered").get("jobName") and cluster.status("filtered")
    )
    assert pending["transformJobStatus"] == "Pending" and not pending.get("failureReason")


async def test_local_paths_are_refused_before_any_job_and_retry_reruns_setup(
    cluster: Cluster, operator: None
) -> None:
    """#16.2/#16.3: local paths mean nothing in a pod; refused with a condition and an event."""
    local_input = {"dataSource": {"s3DataSource": {"s3Uri": "examples/heart/data/"}}}
    await cluster.client.create_btj(manifest(transformInput=local_input))
    failed = await cluster.state("Failed")
    hint = "local paths work with `kbt run` only; use s3://"
    assert (
        failed["failureReason"]
        == f"spec.transformInput.dataSource.s3DataSource.s3Uri: examples/heart/data/: {hint}"
    )
    assert cluster.condition("Ready")["reason"] == "LocalPath"
    await eventually(lambda: any(r == "LocalPath" and hint in m for _, r, m in cluster.events()))
    assert cluster.server.list_objects(JOBS, NS) == []

    inline = {"uri": "file:///home/me/model.joblib", "flavor": "sklearn"}
    await cluster.client.create_btj(manifest("inline", modelName=None, model=inline))
    assert (await cluster.state("Failed", "inline"))[
        "failureReason"
    ] == f"spec.model.uri: file:///home/me/model.joblib: {hint}"
    local_model = MODEL | {
        "metadata": {"name": "local-model", "namespace": NS},
        "spec": {"uri": "./model", "flavor": "sklearn"},
    }
    await cluster.client.create(f"/apis/kbt.dev/v1alpha1/namespaces/{NS}/models", local_model)
    await cluster.client.create_btj(manifest("viamodel", modelName="local-model"))
    assert (await cluster.state("Failed", "viamodel"))[
        "failureReason"
    ] == f"Model local-model spec.uri: ./model: {hint}"
    assert cluster.server.list_objects(JOBS, NS) == []

    s3_input = {"dataSource": {"s3DataSource": {"s3Uri": "s3://data/heart/"}}}
    await cluster.client.patch_btj_spec(NS, "heart", {"transformInput": s3_input, "retryFailedShards": 1})
    job = await cluster.job("btj-heart-1")
    assert job["spec"]["completions"] == 3  # setup ran again, then every shard
    assert await eventually(
        lambda: cluster.condition("Ready").get("reason") == "JobCreated" and cluster.status()
    )


async def test_job_counts_after_a_restart_include_jobs_that_finished_before(cluster: Cluster) -> None:
    """#16.7: a restarted operator counts every job it observes, not only those it writes."""
    async with running_operator():
        await cluster.client.create_btj(manifest())
        await cluster.job("btj-heart-0")
        await cluster.jobs.start(NS, "btj-heart-0")
        for index in range(3):
            await cluster.jobs.succeed(NS, "btj-heart-0", index)
        await cluster.state("Completed")
        await cluster.client.create_btj(
            manifest("bad", transformResources={"instanceType": "ml.z9.huge", "instanceCount": 1})
        )
        await cluster.state("Failed", "bad")
        await cluster.client.create_btj(manifest("waiting", modelName="late-model"))
        await eventually(lambda: cluster.condition("Ready", "waiting").get("reason") == "ModelNotFound")
    async with running_operator():

        def counted() -> dict[str, float | None]:
            counts = {
                s: REGISTRY.get_sample_value("kbt_batchtransformjobs", {"status": s})
                for s in ("Completed", "Failed", "Pending")
            }
            assert counts == {"Completed": 1.0, "Failed": 1.0, "Pending": 1.0}, counts
            return counts

        await eventually(counted)


async def test_deleting_a_running_job_deletes_its_job_in_the_background(
    cluster: Cluster, operator: None
) -> None:
    """#16.6: namespace deletion removes the BatchTransformJob first; its pods keep the Job's
    job-tracking finalizer while the Job lives, so the operator deletes the Job right away."""
    await cluster.client.create_btj(manifest())
    await cluster.job("btj-heart-0")
    await cluster.jobs.start(NS, "btj-heart-0")
    await cluster.state("InProgress")
    await cluster.client.delete_btj(NS, "heart")  # what the namespace controller does
    await eventually(lambda: cluster.server.read(JOBS, NS, "btj-heart-0") is None)
    (delete,) = [r for r in cluster.operator_requests() if r.method == "DELETE" and r.name == "btj-heart-0"]
    assert delete.data["propagationPolicy"] == "Background"


async def test_a_reconcile_that_has_not_seen_the_job_yet_adopts_it(cluster: Cluster) -> None:
    """#16.4: a slow start (or a restart while the Job POST was in flight) reconciles with an
    index that lacks the Job; the POST then gets 409 and the Job is adopted, never doubled."""
    async with running_operator() as memo:
        await cluster.client.create_btj(manifest())
        await cluster.job("btj-heart-0")
        await eventually(lambda: cluster.condition("Ready").get("reason") == "JobCreated")
        context = memo["kbt"]
        posted: list[Any] = []

        async def post(event: Any) -> None:
            posted.append(event)

        context.syncer.forget((NS, "heart"))  # a restarted operator remembers nothing ...
        unwritten = {**cluster.btj(), "status": {}}  # ... and the status never got the Job's name
        await reconcile(context, unwritten, [], post)  # nor has the Job's watch event arrived
    job_posts = [r for r in cluster.operator_requests() if r.method == "POST" and r.resource.plural == "jobs"]
    assert len(job_posts) == 2 and [
        job["metadata"]["name"] for job in cluster.server.list_objects(JOBS, NS)
    ] == ["btj-heart-0"]
    assert cluster.condition("Ready")["reason"] == "JobCreated" and posted == []


async def test_jobs_take_turns_first_come_first_served(
    cluster: Cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 14: a burst of jobs is set up in arrival order, each one's calls before the next's."""
    monkeypatch.setenv("KBT_RECONCILE_CONCURRENCY", "1")
    names = [f"burst-{index}" for index in range(5)]
    async with running_operator():
        await eventually(
            lambda: any(
                r.action == kmock.action.WATCH and r.resource.plural == "batchtransformjobs"
                for r in cluster.operator_requests()
            )
        )  # a burst that arrives while the operator watches (on a restart, oldest go first)
        for name in names:
            await cluster.client.create_btj(manifest(name))
            # Apart enough that kopf's per-object workers reach their turn in creation order
            # on a loaded machine (created in the same second, jobs go in arrival order).
            await asyncio.sleep(0.1)
        for name in names:
            await cluster.job(f"btj-{name}-0")
    creates = [
        r
        for r in cluster.operator_requests()
        if r.method == "POST" and r.resource is not None and r.resource.plural != "events"
    ]
    owners = [r.data["metadata"]["ownerReferences"][0]["name"] for r in creates]
    assert owners == [name for name in names for _ in range(6)]  # 6 objects per job, one job at a time
    assert [r.resource.plural for r in creates[5::6]] == ["jobs"] * 5  # each job's Job comes last


async def test_setup_reads_no_model_and_checks_a_shared_secret_once(cluster: Cluster, operator: None) -> None:
    """Issue 14: the Model comes from the watch, a found Secret is remembered, no read-backs."""
    for name in ("one", "two"):
        await cluster.client.create_btj(manifest(name))
        await eventually(lambda name=name: cluster.status(name).get("jobName") == f"btj-{name}-0")
    await asyncio.sleep(0.3)  # trailing writes, if any
    calls = [
        (r.action.value, r.resource.plural, r.subresource)
        for r in cluster.operator_requests()
        if r.resource is not None and r.resource.plural and r.action.value not in ("LIST", "WATCH")
    ]
    assert ("FETCH", "models", None) not in calls
    assert calls.count(("FETCH", "secrets", None)) == 1
    assert not [call for call in calls if call[0] == "FETCH"][1:]  # nothing read back
    assert calls.count(("UPDATE", "batchtransformjobs", "status")) == 2  # one status write per job
