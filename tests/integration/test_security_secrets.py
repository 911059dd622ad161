"""No credential ever leaks: not into outputs, error files, the manifest, logs or the termination
message (runner), nor into status, events, logs or the objects the operator creates (operator).

The runner gets its S3 credentials from the environment, as a pod gets them from the Secret
named in ``spec.s3.credentialsSecret`` (``envFrom``); a failing record and a failing shard make
it write errors and logs, which are searched for the secret values, raw and base64-encoded.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from pathlib import Path
from typing import Any

import aiohttp
import boto3
import kmock
import pytest

from chaos.bad_inputs import good_csv
from chaos.jobs import job_document, make_job, run_shard_process, write_model
from harness.kmock_cluster import ApiServer, Client, eventually, running_operator, write_kubeconfig

ACCESS_KEY = "AKIAKBTCHAOSTESTKEY1"
SECRET_KEY = "kbt/Chaos+Secret-Value_0123456789abcdefXYZ"


def _forms(value: str) -> list[bytes]:
    return [value.encode(), base64.b64encode(value.encode())]


def _leaks(blob: bytes) -> list[str]:
    return [form.decode() for value in (ACCESS_KEY, SECRET_KEY) for form in _forms(value) if form in blob]


@pytest.mark.timeout(180)
def test_runner_never_writes_credentials_anywhere(
    tmp_path: Path, s3_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    creds = {
        "AWS_ACCESS_KEY_ID": ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    for key, value in creds.items():
        monkeypatch.setenv(key, value)
    client = boto3.client("s3", endpoint_url=s3_server, region_name="us-east-1")
    client.create_bucket(Bucket="secrets-test")
    client.put_object(Bucket="secrets-test", Key="in/data.csv", Body=good_csv(5) + b"bad,row,here\n")
    doc = job_document(
        "secrets",
        "s3://secrets-test/in/",
        "s3://secrets-test/out/",
        write_model(tmp_path / "model"),
        s3={"endpointUrl": s3_server, "addressingStyle": "path"},
        region="us-east-1",
        environment=[{"name": "KBT_DEBUG_HINT", "value": "on"}],
    )
    make_job(tmp_path / "job.json", doc)
    ok = run_shard_process(tmp_path / "job.json", 0, 1, 64 << 20, env={**creds, "KBT_LOG_LEVEL": "debug"})
    assert ok.returncode == 0, ok.termination
    broken = dict(doc, metadata={**doc["metadata"], "name": "secrets-fail"})
    broken["spec"] = {**doc["spec"], "transformInput": {**doc["spec"]["transformInput"], "dataSource": {
        "s3DataSource": {"s3Uri": "s3://no-such-bucket-kbt/in/"}}}}  # fmt: skip
    make_job(tmp_path / "broken.json", broken)
    failed = run_shard_process(
        tmp_path / "broken.json", 0, 1, 64 << 20, env={**creds, "KBT_LOG_LEVEL": "debug"}
    )
    assert failed.returncode != 0 and failed.termination
    written = [o["Key"] for o in client.list_objects_v2(Bucket="secrets-test")["Contents"]]
    assert any("_errors/" in key for key in written) and any("_kbt/logs/" in key for key in written), written
    for key in written:
        body = client.get_object(Bucket="secrets-test", Key=key)["Body"].read()
        assert _leaks(body) == [], f"s3://secrets-test/{key}"
    for run in (ok, failed):
        assert _leaks((run.log + run.termination).encode()) == []
    assert _leaks((tmp_path / "job.json").read_bytes()) == []


@pytest.mark.timeout(120)
async def test_operator_never_copies_credentials_into_status_events_objects_or_logs(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    async with ApiServer() as api, kmock.Server(api) as server:
        url = str(server.url).rstrip("/")
        monkeypatch.setenv("KUBECONFIG", str(write_kubeconfig(tmp_path, url)))
        async with aiohttp.ClientSession(base_url=url) as session, running_operator():
            client = Client(session)
            secret = {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": "s3-creds", "namespace": "team-a"},
                "data": {
                    "AWS_ACCESS_KEY_ID": base64.b64encode(ACCESS_KEY.encode()).decode(),
                    "AWS_SECRET_ACCESS_KEY": base64.b64encode(SECRET_KEY.encode()).decode(),
                },
            }
            await client.create("/api/v1/namespaces/team-a/secrets", secret)
            doc = job_document("leak-check", "s3://inputs/x/", "s3://outputs/x/", Path("/models/m"))
            doc["metadata"] = {"name": "leak-check", "namespace": "team-a"}
            doc["spec"]["model"] = {"uri": "s3://models/m/", "flavor": "sklearn"}
            doc["spec"]["s3"] = {"credentialsSecret": {"name": "s3-creds"}}
            await client.create_btj(doc)
            missing = json.loads(
                json.dumps(doc).replace("leak-check", "leak-missing").replace("s3-creds", "other-creds")
            )
            await client.create_btj(missing)

            def settled() -> bool:
                job = api.read("batch/v1/jobs", "team-a", "btj-leak-check-0")
                status = (
                    api.read("kbt.dev/v1alpha1/batchtransformjobs", "team-a", "leak-missing") or {}
                ).get("status")
                return job is not None and bool(status and status.get("conditions"))

            await eventually(settled, timeout=30)
            await asyncio.sleep(0.5)
        everything: list[Any] = []
        for resource in (
            "kbt.dev/v1alpha1/batchtransformjobs",
            "batch/v1/jobs",
            "v1/configmaps",
            "v1/events",
            "v1/serviceaccounts",
            "rbac.authorization.k8s.io/v1/roles",
            "rbac.authorization.k8s.io/v1/rolebindings",
        ):
            everything += api.list_objects(resource)
        assert any(o.get("kind") == "Job" or "completionMode" in json.dumps(o) for o in everything)
        assert _leaks(json.dumps(everything).encode()) == []
    printed = capfd.readouterr()
    logs = caplog.text + printed.out + printed.err
    assert "leak-check" in logs, "the operator logged nothing about the job: the log check would be vacuous"
    assert _leaks(logs.encode()) == []
