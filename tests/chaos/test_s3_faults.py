"""A job whose S3 traffic goes through the fault proxy: survives 10% faults, fails clearly at 100%.

At a 10% fault rate (500 InternalError, 503 SlowDown, connection resets and slow responses on
every kind of request) each shard must still exit 0 and the outputs must equal a fault-free
run's. One job writes outputs big enough for multipart uploads (each part's output is over
boto3's 8 MiB multipart threshold, and the parts are composed by a server-side multipart copy),
so faults hit CreateMultipartUpload, UploadPart(Copy) and CompleteMultipartUpload too. When every
request (or every multipart request) fails, the shard must give up with the retriable exit code
and say in its termination message that S3 was unavailable.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from chaos.bad_inputs import good_csv
from chaos.jobs import (
    ShardRun,
    job_document,
    make_job,
    run_shard_process,
    s3_output_files,
    write_model,
    write_small_inputs,
)
from chaos.s3_fault_proxy import ERROR_FAULTS, Fault, FaultPlan, Operation, ProxyStats, S3FaultProxy
from chaos.trials import Trial, line_differences, record, trial_count
from kbt.api.exitcodes import ExitCode

SHARDS = 2
SPLIT_BYTES = 8 * 1024
SEEDS = range(trial_count(quick=1, full=5))
MULTIPART_SEEDS = range(trial_count(quick=1, full=5))
WIDE_ROWS = 24_000  # ~290 KB of CSV: two items of at most MULTIPART_SPLIT_BYTES per shard
MULTIPART_SPLIT_BYTES = 100 * 1024
WIDE_SCORE_PY = """\
def init():
    pass


def run(mini_batch):
    scores = mini_batch["f0"] * 2 + mini_batch["f1"] - mini_batch["f2"]
    return [f"{score}:" + "p" * 1800 for score in scores]
"""  # ~1.8 KB per record: each item's output (6,000 records, a quarter of the file) is ~10.8 MB


def _upload_inputs(s3_client: Any, bucket: str, root: Path) -> None:
    write_small_inputs(root)
    for path in sorted(root.rglob("*.csv")):
        s3_client.put_object(
            Bucket=bucket, Key=f"in/{path.relative_to(root).as_posix()}", Body=path.read_bytes()
        )


def _run_job(
    tmp_path: Path,
    bucket: str,
    output: str,
    endpoint: str,
    name: str,
    env: dict[str, str] | None = None,
    shards: int = SHARDS,
    inputs: str = "in",
    split_bytes: int = SPLIT_BYTES,
) -> list[ShardRun]:
    """Every shard (or the first `shards`) of the job, run at once as shard processes."""
    doc = job_document(
        name,
        f"s3://{bucket}/{inputs}/",
        f"s3://{bucket}/{output}/",
        tmp_path / "model",
        s3={"endpointUrl": endpoint, "addressingStyle": "path"},
        region="us-east-1",
    )
    job_path = tmp_path / f"{name}.json"
    make_job(job_path, doc)
    with ThreadPoolExecutor(shards) as pool:
        return list(
            pool.map(
                lambda index: run_shard_process(job_path, index, SHARDS, split_bytes, env), range(shards)
            )
        )


@dataclass
class FaultyRun:
    """A job run twice through the proxy: fault-free, then at a 10% fault rate."""

    runs: list[ShardRun]  # the faulty run's shards
    stats: ProxyStats  # the faulty run's requests and injected faults
    clean_multipart: int  # multipart requests of the fault-free run
    clean: dict[str, bytes]
    got: dict[str, bytes]

    @property
    def ok(self) -> bool:
        return [r.returncode for r in self.runs] == [0] * SHARDS and self.got == self.clean

    def check(self) -> None:
        assert [r.returncode for r in self.runs] == [0] * SHARDS, [
            (r.termination, r.log[-2000:]) for r in self.runs
        ]
        assert self.got == self.clean


def _clean_then_faulty(
    tmp_path: Path, s3_client: Any, bucket: str, fault_proxy: S3FaultProxy, seed: int, **job: Any
) -> FaultyRun:
    clean_runs = _run_job(tmp_path, bucket, "clean", fault_proxy.endpoint_url, "clean", **job)
    assert [r.returncode for r in clean_runs] == [0] * SHARDS, [r.termination for r in clean_runs]
    clean_multipart = fault_proxy.stats.requests[Operation.MULTIPART]
    fault_proxy.plan = FaultPlan(rate=0.1, seed=seed, faults=(*ERROR_FAULTS, Fault.SLOW), slow_seconds=0.05)
    fault_proxy.reset_stats()
    runs = _run_job(tmp_path, bucket, "faulty", fault_proxy.endpoint_url, "faulty", **job)
    stats = fault_proxy.stats
    fault_proxy.plan = FaultPlan()
    clean, got = s3_output_files(s3_client, bucket, "clean/"), s3_output_files(s3_client, bucket, "faulty/")
    return FaultyRun(runs, stats, clean_multipart, clean, got)


def _check_gives_up(suite: str, runs: list[ShardRun], bucket: str) -> None:
    """Every shard exited RETRIABLE with a one-line 'S3 unavailable' reason naming the bucket."""
    ok = all(r.returncode == ExitCode.RETRIABLE and "S3 unavailable" in r.termination for r in runs)
    record(Trial(suite, 0, ok, detail="; ".join(f"exit {r.returncode}: {r.termination}" for r in runs)[:500]))
    for run in runs:
        assert run.returncode == ExitCode.RETRIABLE, (run.returncode, run.termination, run.log[-2000:])
        assert "S3 unavailable" in run.termination and bucket in run.termination, run.termination
        assert len(run.termination.splitlines()) == 1


@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.parametrize("seed", SEEDS)
def test_job_completes_with_identical_output_at_ten_percent_faults(
    tmp_path: Path, s3_client: Any, bucket: str, fault_proxy: S3FaultProxy, seed: int
) -> None:
    write_model(tmp_path / "model")
    _upload_inputs(s3_client, bucket, tmp_path / "inputs")
    faulty = _clean_then_faulty(tmp_path, s3_client, bucket, fault_proxy, seed)
    lost, duplicated = line_differences(faulty.clean, faulty.got)
    record(
        Trial(
            "s3-faults/10%",
            seed,
            faulty.ok,
            lost,
            duplicated,
            f"{faulty.stats.total_injected} faults injected",
        )
    )
    assert faulty.stats.total_injected > 0
    faulty.check()


@pytest.mark.timeout(300)
def test_job_fails_retriably_with_a_clear_reason_when_s3_always_fails(
    tmp_path: Path, s3_client: Any, bucket: str, fault_proxy: S3FaultProxy
) -> None:
    write_model(tmp_path / "model")
    _upload_inputs(s3_client, bucket, tmp_path / "inputs")
    fault_proxy.plan = FaultPlan(rate=1.0, seed=1, faults=ERROR_FAULTS)
    runs = _run_job(
        tmp_path, bucket, "down", fault_proxy.endpoint_url, "down", env={"KBT_S3_ATTEMPTS": "1"}, shards=1
    )
    _check_gives_up("s3-faults/100%", runs, bucket)


def _upload_wide_input(s3_client: Any, bucket: str) -> None:
    s3_client.put_object(Bucket=bucket, Key="wide/data.csv", Body=good_csv(WIDE_ROWS))


@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.parametrize("seed", MULTIPART_SEEDS)
def test_multipart_uploads_complete_with_identical_output_at_ten_percent_faults(
    tmp_path: Path, s3_client: Any, bucket: str, fault_proxy: S3FaultProxy, seed: int
) -> None:
    write_model(tmp_path / "model", WIDE_SCORE_PY)
    _upload_wide_input(s3_client, bucket)
    faulty = _clean_then_faulty(tmp_path, s3_client, bucket, fault_proxy, seed, inputs="wide",
                                split_bytes=MULTIPART_SPLIT_BYTES)  # fmt: skip
    stats = faulty.stats
    lost, duplicated = line_differences(faulty.clean, faulty.got)
    multipart_faults = sum(
        n for (operation, _), n in stats.injected.items() if operation is Operation.MULTIPART
    )
    detail = (
        f"{stats.total_injected} faults injected, {multipart_faults} on "
        f"{stats.requests[Operation.MULTIPART]} multipart requests"
    )
    record(Trial("s3-faults/10% multipart", seed, faulty.ok, lost, duplicated, detail))
    assert faulty.clean_multipart >= 8, f"the clean run made only {faulty.clean_multipart} multipart requests"
    assert len(faulty.clean["data.csv.out"]) > 3 * 8 << 20
    faulty.check()
    # The faulty run went through multipart uploads too (how many varies with which retries hit
    # which part), and faults were injected.
    assert stats.requests[Operation.MULTIPART] >= 8 and stats.total_injected > 0, detail


@pytest.mark.timeout(300)
def test_job_fails_retriably_with_a_clear_reason_when_multipart_uploads_always_fail(
    tmp_path: Path, s3_client: Any, bucket: str, fault_proxy: S3FaultProxy
) -> None:
    write_model(tmp_path / "model", WIDE_SCORE_PY)
    _upload_wide_input(s3_client, bucket)
    fault_proxy.plan = FaultPlan(
        rate=1.0, seed=1, faults=ERROR_FAULTS, operations=frozenset({Operation.MULTIPART})
    )
    runs = _run_job(
        tmp_path,
        bucket,
        "mp-down",
        fault_proxy.endpoint_url,
        "mp-down",
        env={"KBT_S3_ATTEMPTS": "2"},
        shards=1,
        inputs="wide",
        split_bytes=MULTIPART_SPLIT_BYTES,
    )
    assert (
        fault_proxy.stats.injected_for(Fault.RESET) + fault_proxy.stats.injected_for(Fault.INTERNAL_ERROR) > 0
    )
    _check_gives_up("s3-faults/100% multipart", runs, bucket)
