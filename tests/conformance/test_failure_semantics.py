"""Conformance: what bad records do to a job, SageMaker's way and Azure ML's (kbt.runner.thresholds).

Each case: input objects, settings, the output objects expected (bytes), the job's outcome, and
the documentation it comes from. Runs against a real S3 server (moto). Docs cited:

- SM_ERRORS = SageMaker Developer Guide, "Use batch transform to run inference", section "Batch
  transform errors": if an input file contains a bad record, the transform job does not create
  an output file for it and the job is marked failed,
  https://docs.aws.amazon.com/sagemaker/latest/dg/batch-transform.html
- SM_TROUBLE = SageMaker Developer Guide, "Troubleshooting" (batch transform): "Exceeding the
  MaxPayloadInMB limit causes an error",
  https://docs.aws.amazon.com/sagemaker/latest/dg/batch-transform-errors.html
- AZ_THRESHOLD = Azure ML SDK v2, ``BatchDeployment`` / ``ModelBatchDeploymentSettings``,
  parameter ``error_threshold``: "if the error count for the entire input goes above this value,
  the batch inference will be aborted ... If set to -1 (the lower bound), all failures during
  batch inference will be ignored",
  https://learn.microsoft.com/python/api/azure-ai-ml/azure.ai.ml.entities.batchdeployment

A manifest is Azure-style when it sets ``errorThreshold`` or ``failFast``; otherwise SageMaker's
semantics apply.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from typing import Any

import pytest
from pydantic import ValidationError

from kbt.api.models import BatchTransformJobSpec
from kbt.api.resolved import ResolvedJob
from kbt.flavors.base import ModelInput, ModelOutput
from kbt.runner.errors import ErrorThresholdExceeded, InputError
from kbt.runner.shard import run_shard
from kbt.runner.thresholds import Threshold, azure_errors


class SumPredictor:
    """Sums each CSV row's fields; a field that is not a number fails that record."""

    device = "cpu"
    rows_independent = True

    def predict(self, batch: ModelInput) -> ModelOutput:
        assert batch.frame is not None
        return batch.frame.astype(float).sum(axis=1).to_numpy()


def job(bucket: str, **spec: Any) -> ResolvedJob:
    parsed = BatchTransformJobSpec.model_validate(
        {
            "transformInput": {
                "contentType": "text/csv",
                "splitType": "Line",
                "dataSource": {"s3DataSource": {"s3Uri": f"s3://{bucket}/in/"}},
            },
            "transformOutput": {"s3OutputPath": f"s3://{bucket}/out/"},
            "transformResources": {"instanceType": "ml.m5.large"},
            "model": {"uri": "unused", "flavor": "sklearn"},
            "retrySettings": {"maxRetries": 0, "timeoutSeconds": 30},
            "s3": {"addressingStyle": "path"},
            **spec,
        }
    )
    assert parsed.model is not None
    return ResolvedJob(name="failures", spec=parsed, model=parsed.model, model_ref="inline")


def run(resolved: ResolvedJob, shards: int = 1, index: int | None = None) -> None:
    for shard in range(shards) if index is None else [index]:
        run_shard(
            resolved, shard, shards=shards, split_bytes=None, predictor=SumPredictor(), progress_interval=60
        )


def put(s3_client: Any, bucket: str, objects: dict[str, str]) -> None:
    for name, text in objects.items():
        s3_client.put_object(Bucket=bucket, Key=f"in/{name}", Body=text.encode())


def out_keys(s3_client: Any, bucket: str) -> list[str]:
    listed = s3_client.list_objects_v2(Bucket=bucket, Prefix="out/").get("Contents", [])
    return sorted(o["Key"] for o in listed if not o["Key"].startswith("out/_kbt/"))


def text(s3_client: Any, bucket: str, key: str) -> str:
    return s3_client.get_object(Bucket=bucket, Key=key)["Body"].read().decode()  # type: ignore[no-any-return]


def errors(s3_client: Any, bucket: str, name: str) -> list[dict[str, Any]]:
    lines = text(s3_client, bucket, f"out/_errors/{name}.errors.jsonl").splitlines()
    return [json.loads(line) for line in lines]


def rows(count: int, bad: Collection[int] = ()) -> str:
    """CSV rows ``i,1``; a bad row's first field is ``bad<i>`` (not a number)."""
    return "".join(f"bad{i},1\n" if i in bad else f"{i},1\n" for i in range(count))


# --- SageMaker: no error settings -----------------------------------------------------------


def test_sagemaker_bad_record_fails_the_job_and_its_object_gets_no_output(
    s3_client: Any, bucket: str
) -> None:
    """SM_ERRORS: the object with a bad record gets no .out; the job fails naming object and record."""
    put(s3_client, bucket, {"a-good.csv": rows(3), "b-bad.csv": rows(4, {2})})
    with pytest.raises(ErrorThresholdExceeded, match=rf"record 2 of s3://{bucket}/in/b-bad.csv failed"):
        run(job(bucket))
    assert out_keys(s3_client, bucket) == ["out/_errors/b-bad.csv.errors.jsonl", "out/a-good.csv.out"]
    assert text(s3_client, bucket, "out/a-good.csv.out") == "1.0\n2.0\n3.0\n"
    assert [e["record"] for e in errors(s3_client, bucket, "b-bad.csv")] == [2]


def test_sagemaker_record_over_max_payload_fails_the_job(s3_client: Any, bucket: str) -> None:
    """SM_TROUBLE: a record larger than maxPayloadInMB is an error, so the job fails (no partial .out)."""
    put(s3_client, bucket, {"big.csv": "1,1\n" + "2" * (1024 * 1024 + 10) + ",1\n3,1\n"})
    with pytest.raises(ErrorThresholdExceeded, match=rf"record 1 of s3://{bucket}/in/big.csv failed"):
        run(job(bucket, maxPayloadInMB=1))
    assert out_keys(s3_client, bucket) == ["out/_errors/big.csv.errors.jsonl"]


# --- Azure: errorThreshold -------------------------------------------------------------------


def test_unlimited_never_fails_even_when_every_record_fails(s3_client: Any, bucket: str) -> None:
    """AZ_THRESHOLD -1: all failures are ignored; fail-fast is off, whatever the error text says."""
    put(s3_client, bucket, {"x.csv": rows(150, set(range(150)))})  # each reason names its value
    run(job(bucket, errorThreshold=-1))
    assert text(s3_client, bucket, "out/x.csv.out") == ""
    assert len(errors(s3_client, bucket, "x.csv")) == 150
    manifest = json.loads(text(s3_client, bucket, "out/_manifest.json"))
    assert manifest["counts"]["failed"] == 150


def test_fail_fast_alone_means_unlimited(s3_client: Any, bucket: str) -> None:
    """failFast without errorThreshold is Azure-style with Azure's default error_threshold -1."""
    put(s3_client, bucket, {"x.csv": rows(3, {1})})
    run(job(bucket, failFast=False))
    assert (
        text(s3_client, bucket, "out/x.csv.out") == "1.0\n3.0\n"
        and len(errors(s3_client, bucket, "x.csv")) == 1
    )


def test_fail_fast_ignores_record_numbers_in_the_reason(s3_client: Any, bucket: str) -> None:
    """With a threshold, 100 records that all fail alike stop the run even when each reason differs
    only in digits (here the bad value itself)."""
    put(s3_client, bucket, {"x.csv": rows(150, set(range(150)))})
    with pytest.raises(InputError, match=r"first 1\d\d records all failed the same way"):
        run(job(bucket, errorThreshold="90%"))
    assert len(errors(s3_client, bucket, "x.csv")) >= 100


def test_fail_fast_true_contradicts_unlimited() -> None:
    with pytest.raises(ValidationError, match="failFast: true contradicts errorThreshold: -1"):
        job("bucket", errorThreshold=-1, failFast=True)


def test_percent_is_judged_over_the_whole_input(s3_client: Any, bucket: str) -> None:
    """AZ_THRESHOLD "entire input": 100 bad in the first 1000 records (10%) is fine at 5% when the
    rest of the input brings the job to 100 of 3000 (3.3%); each shard holds one object."""
    objects = {"a.csv": rows(1000, set(range(0, 1000, 10))), "b.csv": rows(2000)}
    put(s3_client, bucket, objects)
    run(job(bucket, errorThreshold="5%"), shards=2)
    manifest = json.loads(text(s3_client, bucket, "out/_manifest.json"))
    assert manifest["counts"] == {"records": 3000, "succeeded": 2900, "failed": 100, "objects": 2}
    assert len(text(s3_client, bucket, "out/a.csv.out").splitlines()) == 900


def test_percent_over_fails_the_job_and_keeps_errors(s3_client: Any, bucket: str) -> None:
    """AZ_THRESHOLD: over the threshold the job fails; the bad records stay in _errors/."""
    put(s3_client, bucket, {"a.csv": rows(1000, set(range(0, 1000, 10))), "b.csv": rows(2000)})
    resolved = job(bucket, errorThreshold="3%")
    run(resolved, shards=2, index=0)
    with pytest.raises(ErrorThresholdExceeded, match=r"100 of 3000 records bad \(3.3%\).*_errors/"):
        run(resolved, shards=2, index=1)
    assert len(errors(s3_client, bucket, "a.csv")) == 100
    assert "out/_manifest.json" not in out_keys(s3_client, bucket)


def test_count_is_summed_over_shards(s3_client: Any, bucket: str) -> None:
    """AZ_THRESHOLD counts failures over the entire input: one bad record in each of two shards is
    two, more than errorThreshold 1, although neither shard alone is over."""
    put(s3_client, bucket, {"a.csv": rows(5, {1}), "b.csv": rows(5, {3})})
    resolved = job(bucket, errorThreshold=1)
    run(resolved, shards=2, index=0)
    with pytest.raises(ErrorThresholdExceeded, match="2 bad records, more than errorThreshold 1"):
        run(resolved, shards=2, index=1)
    assert len(errors(s3_client, bucket, "a.csv")) == len(errors(s3_client, bucket, "b.csv")) == 1


def test_count_exceeded_in_a_shard_still_writes_errors(s3_client: Any, bucket: str) -> None:
    """AZ_THRESHOLD: the shard stops once over; the object that tipped it keeps its _errors/ file."""
    put(s3_client, bucket, {"x.csv": rows(6, {1, 4})})
    with pytest.raises(ErrorThresholdExceeded, match="2 bad records, more than errorThreshold 1"):
        run(job(bucket, errorThreshold=1, miniBatchSize=2))
    assert [e["record"] for e in errors(s3_client, bucket, "x.csv")] == [1, 4]
    assert "out/x.csv.out" not in out_keys(s3_client, bucket)


def test_which_jobs_are_azure_style() -> None:
    """The fields that choose Azure's failure semantics (kbt.runner.thresholds.azure_errors); an
    Azure-shaped job (a scoring script over unsplit files) without errorThreshold gets AZ_THRESHOLD's
    default, -1."""
    script = {"model": {"uri": "unused", "flavor": "custom", "scoringScript": "score.py"}}
    files = {
        "contentType": "text/csv",
        "splitType": "None",
        "dataSource": {"s3DataSource": {"s3Uri": "s3://bucket/in/"}},
    }
    cases: list[tuple[dict[str, Any], int | str | None]] = [
        ({}, None),  # SageMaker: the first bad record fails the job
        ({"errorThreshold": 3}, 3),
        ({"failFast": False}, -1),
        ({**script, "transformInput": files}, -1),
        ({**script}, None),  # a scoring script over Line-split records is not Azure-shaped
    ]
    for spec, expected in cases:
        resolved = job("bucket", **spec)
        assert azure_errors(resolved) == (expected is not None), spec
        assert Threshold.from_job(resolved).setting == expected, spec
