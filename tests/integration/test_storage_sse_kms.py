"""transformOutput.kmsKeyId against a real (moto) S3 server: every object a job writes is SSE-KMS.

moto records the encryption headers of each write, so ``head_object`` shows what the runner
asked for: puts, managed (multipart) uploads and server-side multipart composition alike.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kbt.api.models import BatchTransformJobSpec
from kbt.api.resolved import ResolvedJob
from kbt.flavors.base import ModelInput, ModelOutput
from kbt.flavors.errors import RecordsRejected
from kbt.runner.shard import run_shard
from kbt.storage import S3Settings, open_location
from kbt.storage.s3 import MIN_COPY_PART

KEY_ID = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"


class SumRejectingNegatives:
    """Sums each row; a row whose first value is negative is a bad record (goes to _errors/)."""

    device = "cpu"
    rows_independent = True

    def predict(self, batch: ModelInput) -> ModelOutput:
        assert batch.frame is not None
        frame = batch.frame.astype(float)
        bad = {position: "negative a" for position, value in enumerate(frame.iloc[:, 0]) if value < 0}
        if bad:
            raise RecordsRejected(bad)
        return frame.sum(axis=1).to_numpy()


def kms_job(bucket: str, output: dict[str, Any]) -> ResolvedJob:
    spec = BatchTransformJobSpec.model_validate(
        {
            "transformInput": {
                "contentType": "text/csv",
                "splitType": "Line",
                "dataSource": {"s3DataSource": {"s3Uri": f"s3://{bucket}/in/"}},
            },
            "transformOutput": {"s3OutputPath": f"s3://{bucket}/out/", "kmsKeyId": KEY_ID, **output},
            "transformResources": {"instanceType": "ml.m5.large"},
            "model": {"uri": "unused", "flavor": "sklearn"},
            "s3": {"addressingStyle": "path"},
            "errorThreshold": -1,
        }
    )
    assert spec.model is not None
    return ResolvedJob(name="kms-test", spec=spec, model=spec.model, model_ref="unused")


def encryption(client: Any, bucket: str, key: str) -> tuple[str | None, str | None]:
    head = client.head_object(Bucket=bucket, Key=key)
    return head.get("ServerSideEncryption"), head.get("SSEKMSKeyId")


def written_keys(client: Any, bucket: str, prefix: str) -> list[str]:
    listed = client.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])
    return sorted(item["Key"] for item in listed)


def assert_all_encrypted(client: Any, bucket: str, keys: list[str]) -> None:
    found = {key: encryption(client, bucket, key) for key in keys}
    assert found == dict.fromkeys(keys, ("aws:kms", KEY_ID))


def put_inputs(client: Any, bucket: str) -> None:
    client.put_object(Bucket=bucket, Key="in/x.csv", Body=b"1,2\n-3,4\n5,6\n")
    client.put_object(Bucket=bucket, Key="in/y.csv", Body=b"7,8\n")


def test_every_object_of_a_per_input_job_is_encrypted(s3_client: Any, bucket: str) -> None:
    put_inputs(s3_client, bucket)
    run_shard(kms_job(bucket, {}), 0, predictor=SumRejectingNegatives(), progress_interval=60)

    keys = written_keys(s3_client, bucket, "out/")
    expected = {"out/x.csv.out", "out/y.csv.out", "out/_manifest.json", "out/_kbt/logs/shard-00000.log"}
    assert expected <= set(keys)
    assert any(key.startswith("out/_errors/") for key in keys)
    assert any(key.startswith("out/_kbt/") and "logs" not in key for key in keys)  # plan, markers
    assert_all_encrypted(s3_client, bucket, keys)
    assert s3_client.get_object(Bucket=bucket, Key="out/x.csv.out")["Body"].read() == b"3.0\n11.0\n"


def test_the_append_row_file_is_encrypted(s3_client: Any, bucket: str) -> None:
    put_inputs(s3_client, bucket)
    job = kms_job(bucket, {"outputAction": "appendRow", "appendRowFileName": "all.csv"})
    run_shard(job, 0, predictor=SumRejectingNegatives(), progress_interval=60)

    assert encryption(s3_client, bucket, "out/all.csv") == ("aws:kms", KEY_ID)
    keys = written_keys(s3_client, bucket, "out/")
    assert_all_encrypted(s3_client, bucket, keys)


def test_multipart_uploads_and_compositions_are_encrypted(
    s3_client: Any, bucket: str, tmp_path: Path
) -> None:
    store, _ = open_location(f"s3://{bucket}/", S3Settings(addressing_style="path", kms_key_id=KEY_ID))
    big = tmp_path / "big.bin"
    big.write_bytes(bytes(range(256)) * (3 * MIN_COPY_PART // 256))  # over boto3's multipart threshold
    store.put_file("big.bin", big)
    store.put("tail", b"tail")
    store.compose("composed", ["big.bin", "tail"], tmp_path)  # server-side multipart copy
    assert_all_encrypted(s3_client, bucket, ["big.bin", "tail", "composed"])
    assert s3_client.head_object(Bucket=bucket, Key="composed")["ContentLength"] == big.stat().st_size + 4

    plain, _ = open_location(f"s3://{bucket}/", S3Settings(addressing_style="path"))
    plain.put("plain", b"x")
    assert encryption(s3_client, bucket, "plain")[1] is None
