"""Conformance: compressionType as SageMaker documents it, and re-running a job, against a real
S3 server (moto). Each case states the behaviour (input, settings, expected bytes) and its source:

- COMPRESSION = SageMaker API Reference, "TransformInput", field ``CompressionType``
  (https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_TransformInput.html): "If your
  transform data is compressed, specify the compression type. Amazon SageMaker automatically
  decompresses the data for the transform job accordingly. The default value is None." Valid
  values: ``None``, ``Gzip``. So ``None`` reads an object as it is, whatever its key, and
  ``Gzip`` gunzips every object.
- RERUN = kbt's docs/operations.md, "Re-running a job" (SageMaker has no resume: every new
  transform job scores all of its input). A re-run into the same output path skips only what
  is unchanged: input objects by ETag, the model by its objects' ETags, the spec by its fields.
"""

from __future__ import annotations

import gzip
from typing import Any

import pytest

from harness.rerun import rerun
from kbt.api.models import BatchTransformJobSpec
from kbt.api.resolved import ResolvedJob
from kbt.runner.errors import InputError


def s3_job(bucket: str, **extra: Any) -> ResolvedJob:
    spec = BatchTransformJobSpec.model_validate(
        {
            "transformInput": {
                "contentType": "text/csv",
                "splitType": "Line",
                "dataSource": {"s3DataSource": {"s3Uri": f"s3://{bucket}/in/", **extra.pop("source", {})}},
                **extra.pop("transformInput", {}),
            },
            "transformOutput": {"s3OutputPath": f"s3://{bucket}/out/"},
            "transformResources": {"instanceType": "ml.m5.large"},
            "model": {"uri": f"s3://{bucket}/model/", "flavor": "sklearn"},
            "s3": {"addressingStyle": "path"},
            "errorThreshold": -1,
            **extra,
        }
    )
    assert spec.model is not None
    return ResolvedJob(name="resume-s3", spec=spec, model=spec.model, model_ref="m")


def output(client: Any, bucket: str, key: str) -> list[str]:
    return client.get_object(Bucket=bucket, Key=key)["Body"].read().decode().splitlines()  # type: ignore[no-any-return]


@pytest.fixture
def filled(s3_client: Any, bucket: str) -> str:
    s3_client.put_object(Bucket=bucket, Key="model/model.skops", Body=b"weights-1")
    s3_client.put_object(Bucket=bucket, Key="in/a.csv", Body=b"1,2\n")
    s3_client.put_object(Bucket=bucket, Key="in/b.csv", Body=b"10,20\n")
    return bucket


CASES = [  # (COMPRESSION) key, object bytes, compressionType, expected <key>.out
    ("plain.csv", b"1,2\n", "None", b"3.0\n"),
    ("named.csv.gz", b"1,2\n", "None", b"3.0\n"),  # None: not compressed, whatever the key
    ("packed.csv.gz", gzip.compress(b"1,2\n3,4\n", mtime=0), "Gzip", b"3.0\n7.0\n"),
    ("packed.csv", gzip.compress(b"5,5\n", mtime=0), "Gzip", b"10.0\n"),  # Gzip: whatever the key
]


@pytest.mark.parametrize(("key", "data", "compression", "expected"), CASES)
def test_compression_type_follows_the_spec(
    s3_client: Any, bucket: str, key: str, data: bytes, compression: str, expected: bytes
) -> None:
    s3_client.put_object(Bucket=bucket, Key="model/model.skops", Body=b"weights")
    s3_client.put_object(Bucket=bucket, Key=f"in/{key}", Body=data)
    rerun(s3_job(bucket, transformInput={"compressionType": compression}))
    assert s3_client.get_object(Bucket=bucket, Key=f"out/{key}.out")["Body"].read() == expected


def test_changed_etag_is_rescored_unchanged_objects_are_skipped(s3_client: Any, filled: str) -> None:
    """RERUN: nothing changed => nothing scored; one ETag changed => that object only."""
    job = s3_job(filled)
    assert rerun(job) == ([], 2)
    assert rerun(job) == ([], 0)
    s3_client.put_object(Bucket=filled, Key="in/a.csv", Body=b"2,2\n")  # same size, new ETag
    changes, rows = rerun(job)
    assert changes == [f"input s3://{filled}/in/a.csv changed"]
    assert rows == 1
    assert output(s3_client, filled, "out/a.csv.out") == ["4.0"]
    assert output(s3_client, filled, "out/b.csv.out") == ["30.0"]


def test_model_retrained_at_the_same_uri_redoes_everything(s3_client: Any, filled: str) -> None:
    """RERUN: a model object with a new ETag at the same URI => every input is scored again."""
    job = s3_job(filled)
    rerun(job)
    s3_client.put_object(Bucket=filled, Key="model/model.skops", Body=b"weights-2")
    changes, rows = rerun(job)
    assert changes[0] == f"the model at s3://{filled}/model/ changed (new version or files)"
    assert rows == 2


def test_manifest_inputs_carry_their_etags(s3_client: Any, filled: str) -> None:
    """RERUN: ManifestFile entries are versioned by ETag like S3Prefix listings."""
    s3_client.put_object(
        Bucket=filled, Key="list.manifest", Body=f'[{{"prefix": "s3://{filled}/in/"}}, "a.csv"]'.encode()
    )
    job = s3_job(filled, source={"s3Uri": f"s3://{filled}/list.manifest", "s3DataType": "ManifestFile"})
    rerun(job)
    s3_client.put_object(Bucket=filled, Key="in/a.csv", Body=b"3,3\n")
    assert rerun(job) == ([f"input s3://{filled}/in/a.csv changed"], 1)


def test_gzip_object_that_is_not_gzip_is_an_error_naming_it(s3_client: Any, filled: str) -> None:
    """COMPRESSION: Gzip declares the data compressed; plain bytes cannot be decompressed."""
    with pytest.raises(InputError, match=f"s3://{filled}/in/a.csv: transformInput.compressionType is Gzip"):
        rerun(s3_job(filled, transformInput={"compressionType": "Gzip"}))
