"""Runner storage and shards against a real S3 server (moto), including injected S3 faults."""

from __future__ import annotations

import json
from typing import Any

import pytest

from chaos.s3_fault_proxy import ERROR_FAULTS, FaultPlan, S3FaultProxy
from kbt.api.exitcodes import ExitCode
from kbt.api.models import BatchTransformJobSpec
from kbt.api.resolved import ResolvedJob
from kbt.flavors.base import ModelInput, ModelOutput
from kbt.runner.errors import exit_code_for
from kbt.runner.shard import run_shard
from kbt.storage import ObjectNotFound, S3Settings, StorageUnavailable, open_location
from kbt.storage.s3 import MIN_COPY_PART


class SumPredictor:
    device = "cpu"
    rows_independent = True

    def predict(self, batch: ModelInput) -> ModelOutput:
        assert batch.frame is not None
        return batch.frame.astype(float).sum(axis=1).to_numpy()


def s3_job(input_uri: str, output_uri: str, **extra: Any) -> ResolvedJob:
    spec = BatchTransformJobSpec.model_validate(
        {
            "transformInput": {
                "contentType": "text/csv",
                "splitType": "Line",
                "dataSource": {"s3DataSource": {"s3Uri": input_uri, **extra.pop("source", {})}},
            },
            "transformOutput": {"s3OutputPath": output_uri, **extra.pop("output", {})},
            "transformResources": {"instanceType": "ml.m5.large"},
            "model": {"uri": "unused", "flavor": "sklearn"},
            "s3": {"addressingStyle": "path"},
            **extra,
        }
    )
    assert spec.model is not None
    return ResolvedJob(name="s3-test", spec=spec, model=spec.model, model_ref="unused")


def body(client: Any, bucket: str, key: str) -> bytes:
    return client.get_object(Bucket=bucket, Key=key)["Body"].read()  # type: ignore[no-any-return]


def test_store_operations(s3_client: Any, bucket: str, tmp_path: Any) -> None:
    store, prefix = open_location(f"s3://{bucket}/data/", S3Settings(addressing_style="path"))
    assert prefix == "data/"
    store.put("data/b.txt", b"0123456789")
    store.put("data/a.txt", b"hello")
    store.put("data/sub/", b"")  # folder marker: never listed
    assert [(o.key, o.size) for o in store.list_objects("data/")] == [("data/a.txt", 5), ("data/b.txt", 10)]
    assert store.read("data/b.txt", 3, 7) == b"3456"
    assert store.read("data/b.txt", 8) == b"89"
    with store.open("data/b.txt", 2) as reader:
        assert reader.read(3) == b"234" and reader.read() == b"56789"
    with pytest.raises(ObjectNotFound, match=f"s3://{bucket}/data/none does not exist"):
        store.read("data/none")
    assert store.exists("data/a.txt") and not store.exists("data/none")
    store.compose("data/ab", ["data/a.txt", "data/b.txt"], tmp_path)
    assert body(s3_client, bucket, "data/ab") == b"hello0123456789"
    big = bytes(range(256)) * (MIN_COPY_PART // 256 + 1)
    store.put("data/big1", big)
    store.put("data/big2", big[::-1])
    store.compose("data/bigs", ["data/big1", "data/big2", "data/a.txt"], tmp_path)  # server-side copy
    assert body(s3_client, bucket, "data/bigs") == big + big[::-1] + b"hello"
    store.delete("data/a.txt")
    store.delete("data/a.txt")
    assert not store.exists("data/a.txt")


def test_shard_reads_manifest_file_and_writes_s3(s3_client: Any, bucket: str) -> None:
    s3_client.put_object(Bucket=bucket, Key="in/x.csv", Body=b"a,b\n1,2\n3,4\n")
    s3_client.put_object(Bucket=bucket, Key="in/sub/y.csv", Body=b"a,b\n5,5\n")
    s3_client.put_object(Bucket=bucket, Key="in/ignored.csv", Body=b"a,b\n9,9\n")
    manifest = [{"prefix": f"s3://{bucket}/in/"}, "sub/y.csv", "x.csv"]
    s3_client.put_object(Bucket=bucket, Key="manifest.json", Body=json.dumps(manifest).encode())
    job = s3_job(f"s3://{bucket}/manifest.json", f"s3://{bucket}/out", source={"s3DataType": "ManifestFile"})
    run_shard(job, 0, predictor=SumPredictor(), progress_interval=60)
    assert body(s3_client, bucket, "out/x.csv.out") == b"3.0\n7.0\n"
    assert body(s3_client, bucket, "out/sub/y.csv.out") == b"10.0\n"
    summary = json.loads(body(s3_client, bucket, "out/_manifest.json"))
    assert [i["object"] for i in summary["inputs"]] == [
        f"s3://{bucket}/in/sub/y.csv",
        f"s3://{bucket}/in/x.csv",
    ]
    assert summary["outputs"] == [f"s3://{bucket}/out/sub/y.csv.out", f"s3://{bucket}/out/x.csv.out"]
    progress = json.loads(body(s3_client, bucket, "out/_kbt/progress/shard-00000.json"))
    assert progress["state"] == "completed" and progress["recordsProcessed"] == 3
    assert b"shard done" in body(s3_client, bucket, "out/_kbt/logs/shard-00000.log")


def test_missing_manifest_entry_is_an_input_error(s3_client: Any, bucket: str) -> None:
    manifest = [{"prefix": f"s3://{bucket}/in/"}, "gone.csv"]
    s3_client.put_object(Bucket=bucket, Key="m.json", Body=json.dumps(manifest).encode())
    job = s3_job(f"s3://{bucket}/m.json", f"s3://{bucket}/out", source={"s3DataType": "ManifestFile"})
    with pytest.raises(Exception, match=r"entry 'gone.csv': s3://.*/in/gone.csv does not exist") as caught:
        run_shard(job, 0, predictor=SumPredictor(), progress_interval=60)
    assert exit_code_for(caught.value) == ExitCode.INPUT_ERROR


def test_s3_faults_are_retried_and_output_is_intact(
    s3_server: str, s3_client: Any, bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = "".join(f"{i},{i}\n" for i in range(1000))
    for name in ("p.csv", "q.csv"):
        s3_client.put_object(Bucket=bucket, Key=f"in/{name}", Body=("a,b\n" + rows).encode())
    with S3FaultProxy(s3_server, FaultPlan(rate=0.15, seed=3, faults=ERROR_FAULTS)) as proxy:
        monkeypatch.setenv("AWS_ENDPOINT_URL_S3", proxy.endpoint_url)
        job = s3_job(f"s3://{bucket}/in/", f"s3://{bucket}/out/", miniBatchSize=300)
        run_shard(job, 0, split_bytes=5000, predictor=SumPredictor(), progress_interval=60)
    expected = "".join(f"{float(2 * i)}\n" for i in range(1000)).encode()
    assert body(s3_client, bucket, "out/p.csv.out") == expected
    assert body(s3_client, bucket, "out/q.csv.out") == expected


def test_unreachable_s3_is_retriable(monkeypatch: pytest.MonkeyPatch) -> None:
    from conftest import free_port  # noqa: PLC0415 (conftest: importable under pytest only)

    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "x")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "x")
    monkeypatch.setenv("KBT_S3_ATTEMPTS", "2")
    job = s3_job("s3://nowhere/in/", "s3://nowhere/out/")
    with pytest.raises(StorageUnavailable, match="S3 unavailable") as caught:
        run_shard(job, 0, predictor=SumPredictor(), progress_interval=60)
    assert exit_code_for(caught.value) == ExitCode.RETRIABLE


def test_missing_output_bucket_names_the_bucket(s3_client: Any, bucket: str) -> None:
    s3_client.put_object(Bucket=bucket, Key="in/x.csv", Body=b"a,b\n1,2\n")
    job = s3_job(f"s3://{bucket}/in/", "s3://kbt-no-such-bucket/out")
    with pytest.raises(
        Exception, match=r"s3://kbt-no-such-bucket/out/.*: bucket 'kbt-no-such-bucket' does not exist"
    ):
        run_shard(job, 0, predictor=SumPredictor(), progress_interval=60)
