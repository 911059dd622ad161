"""`kubectl btj` against kmock (an in-process Kubernetes API) and moto S3 (archived logs).

kmock serves the BatchTransformJob, pods, the progress ConfigMap and Secrets from its object
store; pod logs are kmock reactions that behave like the kubelet endpoint (timestamps, tailLines,
finite or slowly streamed bodies). kmock ignores label selectors, so the pod listing is a small
reaction that applies the `labelSelector` the plugin sends.
"""

from __future__ import annotations

import asyncio
import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import kmock as km
import pytest
import yaml
from click.testing import Result
from typer.testing import CliRunner

from kbt.api.layout import log_key
from kbt_operator.labels import COMPLETION_INDEX_LABEL, JOB_NAME_LABEL, progress_configmap_name
from kbt_operator.plugin import app
from kbt_operator.plugin.errors import PluginExit

BTJ = "kbt.dev/v1alpha1/batchtransformjobs"
PODS = km.resource("v1/pods")
NS = "team"

JOB: dict[str, Any] = {
    "apiVersion": "kbt.dev/v1alpha1",
    "kind": "BatchTransformJob",
    "metadata": {"name": "heart", "namespace": NS},
    "spec": {
        "modelName": "heart-classifier",
        "transformInput": {"dataSource": {"s3DataSource": {"s3Uri": "s3://data/heart/"}}},
        "transformOutput": {"s3OutputPath": "s3://results/heart/"},
        "transformResources": {"instanceCount": 3, "instanceType": "ml.m5.xlarge"},
    },
}


def job(
    name: str = "heart", namespace: str = NS, status: dict[str, Any] | None = None, **spec: Any
) -> dict[str, Any]:
    doc = copy.deepcopy(JOB)
    doc["metadata"].update(name=name, namespace=namespace)
    doc["spec"].update(spec)
    if status is not None:
        doc["status"] = status
    return doc


RUNNING = {"transformJobStatus": "InProgress", "startTime": "2024-05-01T10:00:00Z", "jobName": "kbt-heart"}


def pod(
    index: int,
    *,
    phase: str = "Running",
    job_name: str = "heart",
    attempt: str = "a",
    waiting: str | None = None,
) -> dict[str, Any]:
    state = (
        {"waiting": {"reason": waiting}} if waiting else {"running": {"startedAt": "2024-05-01T10:00:00Z"}}
    )
    return {
        "metadata": {
            "name": f"kbt-{job_name}-{index}-{attempt}",
            "namespace": NS,
            "creationTimestamp": f"2024-05-01T10:0{ord(attempt) - ord('a')}:00Z",
            "labels": {JOB_NAME_LABEL: job_name, COMPLETION_INDEX_LABEL: str(index)},
        },
        "spec": {"nodeName": f"worker-{index}"},
        "status": {
            "phase": phase,
            "containerStatuses": [{"name": "shard", "state": state, "restartCount": 0}],
        },
    }


def kubelet_log(lines: list[tuple[str, str]]) -> Callable[[km.Request], bytes]:
    """A pod log endpoint: honours timestamps and tailLines like the kubelet."""

    def serve(request: km.Request) -> bytes:
        shown = lines[-int(request.params["tailLines"]) :] if "tailLines" in request.params else lines
        if int(request.params.get("tailLines", -1)) == 0:
            shown = []
        stamped = request.params.get("timestamps", "").lower() == "true"
        return "".join(f"{ts} {text}\n" if stamped else f"{text}\n" for ts, text in shown).encode()

    return serve


def serve_label_selected_pods(kmock: km.KubernetesEmulator) -> None:
    def listing(request: km.Request) -> dict[str, Any]:
        wanted = dict(p.split("=", 1) for p in request.params.get("labelSelector", "").split(",") if p)
        items = [
            obj.raw
            for (resource, namespace, _), obj in kmock.objects.items()
            if resource == PODS
            and namespace == request.namespace
            and not obj.deleted
            and all(obj.raw["metadata"].get("labels", {}).get(k) == v for k, v in wanted.items())
        ]
        return {"apiVersion": "v1", "kind": "PodList", "metadata": {}, "items": items}

    kmock[km.action.LIST, PODS] << listing


@pytest.fixture
def cluster(kmock: km.KubernetesEmulator, tmp_path: Path) -> km.KubernetesEmulator:
    kmock.resources[BTJ] = {
        "namespaced": True,
        "kind": "BatchTransformJob",
        "singular": "batchtransformjob",
        "verbs": [],
        "shortnames": ["btj"],
        "categories": [],
        "subresources": ["status"],
    }
    kmock.resources["v1/configmaps"] = {
        "namespaced": True,
        "kind": "ConfigMap",
        "singular": "configmap",
        "verbs": [],
        "shortnames": [],
        "categories": [],
        "subresources": [],
    }
    serve_label_selected_pods(kmock)
    return kmock


@pytest.fixture
def kubeconfig(cluster: km.KubernetesEmulator, tmp_path: Path) -> Path:
    path = tmp_path / "kubeconfig"
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "current-context": "kind-kbt",
                "clusters": [{"name": "kbt", "cluster": {"server": str(cluster.url).rstrip("/")}}],
                "contexts": [
                    {"name": "kind-kbt", "context": {"cluster": "kbt", "user": "dev", "namespace": NS}},
                    {"name": "other", "context": {"cluster": "kbt", "user": "dev", "namespace": "elsewhere"}},
                ],
                "users": [{"name": "dev", "user": {}}],
            }
        )
    )
    return path


@pytest.fixture
def btj(kubeconfig: Path) -> Callable[..., Any]:
    """Run `kubectl btj ARGS --kubeconfig ...` in a thread (kmock serves from this event loop)."""

    async def invoke(*args: str) -> Result:
        runner = CliRunner()
        return await asyncio.to_thread(runner.invoke, app, [*args, "--kubeconfig", str(kubeconfig)])

    return invoke


def add(kmock: km.KubernetesEmulator, *objects: dict[str, Any]) -> None:
    for obj in objects:
        meta = obj["metadata"]
        resource = BTJ if obj.get("kind") == "BatchTransformJob" else "v1/pods"
        kmock.objects[resource, meta["namespace"], meta["name"]] = obj


def serve_log(kmock: km.KubernetesEmulator, pod_name: str, payload: Any, namespace: str = NS) -> None:
    kmock[f"get /api/v1/namespaces/{namespace}/pods/{pod_name}/log"] << payload


# --- logs ----------------------------------------------------------------------------------------


async def test_logs_merges_shards_in_time_order_with_prefixes(
    cluster: km.KubernetesEmulator, btj: Any
) -> None:
    add(cluster, job(status=RUNNING), pod(0), pod(1), pod(0, job_name="other-job"))
    serve_log(
        cluster,
        "kbt-heart-0-a",
        kubelet_log([("2024-05-01T10:00:01Z", "s0 start"), ("2024-05-01T10:00:04Z", "s0 done")]),
    )
    serve_log(
        cluster,
        "kbt-heart-1-a",
        kubelet_log([("2024-05-01T10:00:02Z", "s1 start"), ("2024-05-01T10:00:03Z", "s1 batch")]),
    )

    result = await btj("logs", "heart")

    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines() == [
        "[shard 0] s0 start",
        "[shard 1] s1 start",
        "[shard 1] s1 batch",
        "[shard 0] s0 done",
    ]
    listed = cluster[km.action.LIST, PODS]
    assert listed[0].params["labelSelector"] == f"{JOB_NAME_LABEL}=heart"


async def test_logs_tail_shard_timestamps_and_since(cluster: km.KubernetesEmulator, btj: Any) -> None:
    add(cluster, job(status=RUNNING), pod(0), pod(1))
    serve_log(cluster, "kbt-heart-0-a", kubelet_log([("2024-05-01T10:00:01Z", "zero")]))
    serve_log(
        cluster,
        "kbt-heart-1-a",
        kubelet_log([("2024-05-01T10:00:01Z", "old"), ("2024-05-01T10:00:05Z", "new")]),
    )

    result = await btj("logs", "heart", "--shard", "1", "--tail", "1", "--timestamps", "--since", "10m")

    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines() == ["[shard 1] 2024-05-01T10:00:05Z new"]
    requests = cluster["get /api/v1/namespaces/team/pods/kbt-heart-1-a/log"]
    assert requests[0].params["tailLines"] == "1" and requests[0].params["sinceSeconds"] == "600"
    assert len(cluster["get /api/v1/namespaces/team/pods/kbt-heart-0-a/log"]) == 0


async def test_logs_shows_only_the_latest_attempt_of_a_retried_shard(
    cluster: km.KubernetesEmulator, btj: Any
) -> None:
    add(cluster, job(status=RUNNING), pod(0, phase="Failed", attempt="a"), pod(0, attempt="b"))
    serve_log(cluster, "kbt-heart-0-a", kubelet_log([("2024-05-01T10:00:01Z", "first attempt")]))
    serve_log(cluster, "kbt-heart-0-b", kubelet_log([("2024-05-01T10:01:01Z", "second attempt")]))

    result = await btj("logs", "heart")

    assert result.stdout.splitlines() == ["[shard 0] second attempt"]


async def test_logs_of_a_job_not_started_yet(cluster: km.KubernetesEmulator, btj: Any) -> None:
    add(cluster, job())
    result = await btj("logs", "heart")
    assert result.exit_code == PluginExit.NOT_READY
    assert "job heart has not started yet (status Pending)" in result.stderr


async def test_logs_when_no_shard_has_started(cluster: km.KubernetesEmulator, btj: Any) -> None:
    add(cluster, job(status=RUNNING), pod(0, phase="Pending", waiting="ContainerCreating"))
    result = await btj("logs", "heart")
    assert result.exit_code == PluginExit.NOT_READY
    assert "no logs yet: shard 0 (ContainerCreating) not started" in result.stderr


async def test_logs_follow_picks_up_shards_as_they_start(cluster: km.KubernetesEmulator, btj: Any) -> None:
    add(cluster, job(status=RUNNING), pod(0), pod(1, phase="Pending", waiting="ContainerCreating"))
    serve_log(
        cluster,
        "kbt-heart-0-a",
        (b"2024-05-01T10:00:01Z s0 first\n", lambda: asyncio.sleep(0.3), b"2024-05-01T10:00:02Z s0 second\n"),
    )
    serve_log(cluster, "kbt-heart-1-a", kubelet_log([("2024-05-01T10:00:03Z", "s1 only")]))

    following = asyncio.ensure_future(btj("logs", "heart", "-f", "--poll-interval", "0.1"))
    await asyncio.sleep(0.6)
    cluster.objects["v1/pods", NS, "kbt-heart-1-a"] = pod(1)  # shard 1 starts
    await asyncio.sleep(0.6)
    assert not following.done(), "follow must wait while the job is InProgress"
    cluster.objects[BTJ, NS, "heart"] = job(status={**RUNNING, "transformJobStatus": "Completed"})
    result = await asyncio.wait_for(following, timeout=10)

    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines() == ["[shard 0] s0 first", "[shard 0] s0 second", "[shard 1] s1 only"]
    assert "shard 1: waiting to start (ContainerCreating)" in result.stderr
    assert cluster["get /api/v1/namespaces/team/pods/kbt-heart-0-a/log"][0].params["follow"] == "True"


def output_in(bucket: str) -> dict[str, str]:
    return {"s3OutputPath": f"s3://{bucket}/heart/"}


async def test_logs_from_the_archive_after_pods_are_gone(
    cluster: km.KubernetesEmulator, btj: Any, s3_client: Any, bucket: str
) -> None:
    s3_client.put_object(
        Bucket=bucket,
        Key="heart/" + log_key(0),
        Body=b"2024-05-01T10:00:01Z s0 a\n2024-05-01T10:00:05Z s0 b\n",
    )
    s3_client.put_object(Bucket=bucket, Key="heart/" + log_key(12), Body=b"2024-05-01T10:00:03Z s12 a\n")
    s3_client.put_object(
        Bucket=bucket, Key="other-job/" + log_key(1), Body=b"2024-05-01T10:00:03Z not ours\n"
    )
    add(
        cluster,
        job(
            status={**RUNNING, "transformJobStatus": "Completed"},
            shardCount=13,
            transformOutput=output_in(bucket),
        ),
    )

    result = await btj("logs", "heart")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines() == ["[shard 0] s0 a", "[shard 12] s12 a", "[shard 0] s0 b"]

    tail = await btj("logs", "heart", "--tail", "1", "--shard", "0", "-f")
    assert tail.stdout.splitlines() == ["[shard 0] s0 b"]


async def test_archive_credentials_and_endpoint_from_the_job(
    cluster: km.KubernetesEmulator,
    btj: Any,
    s3_client: Any,
    bucket: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    s3_client.put_object(
        Bucket=bucket,
        Key="heart/" + log_key(1),
        Body=b'{"event": "done", "timestamp": "2024-05-01T10:00:00Z"}\n',
    )
    endpoint = s3_client.meta.endpoint_url
    for variable in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(variable)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    s3 = {"endpointUrl": endpoint, "credentialsSecret": {"name": "minio-creds"}, "addressingStyle": "path"}
    add(
        cluster,
        job(status={**RUNNING, "transformJobStatus": "Failed"}, s3=s3, transformOutput=output_in(bucket)),
    )
    cluster.objects["v1/secrets", NS, "minio-creds"] = {
        "metadata": {"name": "minio-creds", "namespace": NS},
        "data": {"AWS_ACCESS_KEY_ID": "dGVzdGluZw==", "AWS_SECRET_ACCESS_KEY": "dGVzdGluZw=="},
    }

    result = await btj("logs", "heart")

    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines() == ['[shard 1] {"event": "done", "timestamp": "2024-05-01T10:00:00Z"}']
    assert len(cluster["get /api/v1/namespaces/team/secrets/minio-creds"]) == 1


async def test_logs_of_a_finished_job_with_nothing_archived(
    cluster: km.KubernetesEmulator, btj: Any, bucket: str
) -> None:
    add(
        cluster, job(status={**RUNNING, "transformJobStatus": "Completed"}, transformOutput=output_in(bucket))
    )
    result = await btj("logs", "heart")
    assert result.exit_code == PluginExit.NOT_READY
    assert "nothing is archived under its output path" in result.stderr


async def test_archive_s3_denied(cluster: km.KubernetesEmulator, btj: Any, s3_env: str) -> None:
    add(
        cluster,
        job(
            status={**RUNNING, "transformJobStatus": "Completed"},
            transformOutput={"s3OutputPath": "s3://missing-bucket/x/"},
        ),
    )
    result = await btj("logs", "heart")
    assert result.exit_code == PluginExit.NOT_FOUND
    assert "cannot list s3://missing-bucket/x/_kbt/logs/: NoSuchBucket" in result.stderr


# --- status --------------------------------------------------------------------------------------


def progress_entry(index: int, **fields: Any) -> str:
    return json.dumps({"index": index, "updatedAt": "2024-05-01T10:03:00Z", **fields})


async def test_status_table_from_pods_and_progress(cluster: km.KubernetesEmulator, btj: Any) -> None:
    add(cluster, job(status={**RUNNING, "progressSummary": "1/3 shards, 40%", "model": "heart-classifier"}))
    add(cluster, pod(0, phase="Succeeded"), pod(1, phase="Failed", attempt="a"), pod(1, attempt="b"))
    cluster.objects["v1/configmaps", NS, progress_configmap_name("heart")] = {
        "metadata": {"name": progress_configmap_name("heart"), "namespace": NS},
        "data": {
            "shard-0": progress_entry(
                0,
                state="Completed",
                recordsProcessed=500,
                recordsFailed=2,
                bytesProcessed=10,
                bytesTotal=10,
                recordsPerSecond=99.5,
                device="cpu",
            ),
            "shard-1": progress_entry(
                1,
                state="Predicting",
                recordsProcessed=120,
                bytesProcessed=1,
                bytesTotal=4,
                recordsPerSecond=20.0,
                device="cuda:0",
            ),
        },
    }

    result = await btj("status", "heart")

    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["Name:", "team/heart"]
    assert lines[1].split() == ["Status:", "InProgress", "1/3", "shards,", "40%"]
    table = [line.split() for line in lines[lines.index("") + 1 :]]
    assert table[0] == [
        "SHARD",
        "STATE",
        "PROGRESS",
        "RECORDS",
        "ERRORS",
        "REC/S",
        "DEVICE",
        "NODE",
        "RETRIES",
        "UPDATED",
    ]
    assert table[1] == [
        "0",
        "Completed",
        "100%",
        "500",
        "2",
        "99.5",
        "cpu",
        "worker-0",
        "0",
        "2024-05-01T10:03:00Z",
    ]
    assert table[2] == [
        "1",
        "Predicting",
        "25%",
        "120",
        "0",
        "20.0",
        "cuda:0",
        "worker-1",
        "1",
        "2024-05-01T10:03:00Z",
    ]
    assert table[3] == ["2", "Waiting", "-", "0", "0", "0.0", "-", "-", "0", "-"]

    as_json = json.loads((await btj("status", "heart", "-o", "json")).stdout)
    assert as_json["status"] == "InProgress" and as_json["shardCount"] == 3
    assert [shard["state"] for shard in as_json["shards"]] == ["Completed", "Predicting", "Waiting"]
    assert as_json["shards"][1]["pod"] == "kbt-heart-1-b"


async def test_status_of_a_job_not_started_yet(cluster: km.KubernetesEmulator, btj: Any) -> None:
    add(cluster, job())
    result = await btj("status", "heart")
    assert result.exit_code == 0, result.stderr
    assert "Status:   Pending" in result.stdout
    assert "Not started yet: none of its 3 shard(s) has a pod." in result.stdout


async def test_status_when_progress_configmap_is_forbidden(cluster: km.KubernetesEmulator, btj: Any) -> None:
    add(cluster, job(status=RUNNING), pod(0))
    cluster[
        f"get /api/v1/namespaces/{NS}/configmaps/{progress_configmap_name('heart')}"
    ] << km.KubernetesError(
        status=403, reason="Forbidden", message='configmaps "kbt-progress-heart" is forbidden'
    )
    result = await btj("status", "heart")
    assert result.exit_code == 0
    assert "warning: forbidden: you may not get configmaps (kbt-progress-heart)" in result.stderr
    assert "Running" in result.stdout


# --- stop / retry ----------------------------------------------------------------------------------


async def test_stop_patches_spec_stop(cluster: km.KubernetesEmulator, btj: Any) -> None:
    add(cluster, job(status=RUNNING))
    result = await btj("stop", "heart")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.strip() == "batchtransformjob.kbt.dev/heart stop requested"
    assert cluster.objects[BTJ, NS, "heart"]["spec"]["stop"] is True
    assert cluster["patch"][0].data == {"spec": {"stop": True}}

    again = await btj("stop", "heart")
    assert again.exit_code == 0 and "already stopping" in again.stdout
    assert len(cluster["patch"]) == 1


async def test_stop_of_a_finished_job(cluster: km.KubernetesEmulator, btj: Any) -> None:
    add(cluster, job(status={**RUNNING, "transformJobStatus": "Completed"}))
    result = await btj("stop", "heart")
    assert result.exit_code == PluginExit.INVALID_STATE
    assert "already finished (Completed); nothing to stop" in result.stderr


async def test_retry_increments_retry_failed_shards(cluster: km.KubernetesEmulator, btj: Any) -> None:
    failed = {
        **RUNNING,
        "transformJobStatus": "Failed",
        "shards": {"total": 3, "failed": 2, "failedIndexes": "0,2"},
    }
    add(cluster, job(status=failed, retryFailedShards=1))
    result = await btj("retry", "heart")
    assert result.exit_code == 0, result.stderr
    assert "retry 2 requested: failed shards 0,2 will run again" in result.stdout
    assert cluster.objects[BTJ, NS, "heart"]["spec"]["retryFailedShards"] == 2


async def test_retry_of_a_setup_failure_says_setup_runs_again(
    cluster: km.KubernetesEmulator, btj: Any
) -> None:
    """#16.3: a job that failed in setup never ran a shard; retry re-runs setup, then every shard."""
    add(
        cluster,
        job(status={"transformJobStatus": "Failed", "failureReason": "spec.transformInput...: local paths"}),
    )
    result = await btj("retry", "heart")
    assert result.exit_code == 0, result.stderr
    assert (
        "retry 1 requested: no shard ran (setup failed); setup runs again and then every shard"
        in result.stdout
    )
    assert "failed shards" not in result.stdout
    assert cluster.objects[BTJ, NS, "heart"]["spec"]["retryFailedShards"] == 1


async def test_retry_only_when_failed(cluster: km.KubernetesEmulator, btj: Any) -> None:
    add(cluster, job(status=RUNNING))
    result = await btj("retry", "heart")
    assert result.exit_code == PluginExit.INVALID_STATE
    assert "job heart is InProgress: retry re-runs the failed shards of a Failed job only" in result.stderr
    assert len(cluster["patch"]) == 0


# --- lookup, namespaces, errors ----------------------------------------------------------------------


async def test_no_such_job(cluster: km.KubernetesEmulator, btj: Any) -> None:
    add(cluster, job(name="other"))
    result = await btj("status", "heart")
    assert result.exit_code == PluginExit.NOT_FOUND
    assert result.stderr.strip() == "error: batchtransformjob.kbt.dev \"heart\" not found in namespace 'team'"


async def test_api_not_installed(cluster: km.KubernetesEmulator, btj: Any) -> None:
    cluster[f"get /apis/kbt.dev/v1alpha1/namespaces/{NS}/batchtransformjobs/heart"] << km.KubernetesError(
        status=404, reason="NotFound", message="the server could not find the requested resource"
    )
    result = await btj("logs", "heart")
    assert result.exit_code == PluginExit.NOT_FOUND
    assert "API is not installed in this cluster" in result.stderr


async def test_forbidden(cluster: km.KubernetesEmulator, btj: Any) -> None:
    cluster[km.resource(BTJ)] << km.KubernetesError(
        status=403, reason="Forbidden", message='user "dev" cannot patch resource "batchtransformjobs"'
    )
    result = await btj("stop", "heart")
    assert result.exit_code == PluginExit.FORBIDDEN
    assert "forbidden: you may not get batchtransformjobs.kbt.dev in namespace 'team'" in result.stderr
    assert 'user "dev" cannot patch' in result.stderr


async def test_namespace_flags(cluster: km.KubernetesEmulator, btj: Any) -> None:
    add(
        cluster,
        job(namespace="prod", status=RUNNING),
        job(name="twin", namespace="a"),
        job(name="twin", namespace="b"),
    )

    assert (await btj("status", "heart")).exit_code == PluginExit.NOT_FOUND  # context namespace is "team"
    explicit = await btj("status", "heart", "-n", "prod")
    assert explicit.exit_code == 0 and "prod/heart" in explicit.stdout
    found = await btj("status", "heart", "-A")
    assert found.exit_code == 0 and "prod/heart" in found.stdout
    other_context = await btj("status", "heart", "--context", "other")
    assert "namespace 'elsewhere'" in other_context.stderr

    ambiguous = await btj("stop", "twin", "-A")
    assert ambiguous.exit_code == PluginExit.USAGE
    assert "exists in several namespaces (a, b); pick one with -n" in ambiguous.stderr
    both = await btj("stop", "twin", "-A", "-n", "a")
    assert both.exit_code == PluginExit.USAGE


async def test_unreachable_api_server(btj: Any, kubeconfig: Path) -> None:
    config = yaml.safe_load(kubeconfig.read_text())
    config["clusters"][0]["cluster"]["server"] = "http://127.0.0.1:9"
    kubeconfig.write_text(yaml.safe_dump(config))
    result = await btj("status", "heart")
    assert result.exit_code == PluginExit.UNREACHABLE
    assert "cannot reach the Kubernetes API at http://127.0.0.1:9" in result.stderr
