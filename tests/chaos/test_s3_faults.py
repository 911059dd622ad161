"""A job whose S3 traffic goes through the fault proxy: survives 10% faults, fails clearly at 100%.

At a 10% fault rate (500 InternalError, 503 SlowDown, connection resets and slow responses on
every kind of request) each shard must still exit 0 and the outputs must equal a fault-free
run's. When every request fails, the shard must give up with the retriable exit code and say in
its termination message that S3 was unavailable.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from chaos.jobs import (
    ShardRun,
    job_document,
    make_job,
    run_shard_process,
    s3_output_files,
    write_model,
    write_small_inputs,
)
from chaos.s3_fault_proxy import ERROR_FAULTS, Fault, FaultPlan, S3FaultProxy
from chaos.trials import Trial, line_differences, record, trial_count
from kbt.runner.exitcodes import ExitCode

SHARDS = 2
SPLIT_BYTES = 8 * 1024
SEEDS = range(trial_count(quick=1, full=5))


def _upload_inputs(s3_client: Any, bucket: str, root: Path) -> None:
    write_small_inputs(root)
    for path in sorted(root.rglob("*.csv")):
        s3_client.put_object(Bucket=bucket, Key=f"in/{path.relative_to(root).as_posix()}", Body=path.read_bytes())


def _run_job(
    tmp_path: Path, bucket: str, output: str, endpoint: str, name: str, env: dict[str, str] | None = None, shards: int = SHARDS
) -> list[ShardRun]:
    """Every shard (or the first `shards`) of the job, run at once as shard processes."""
    doc = job_document(name, f"s3://{bucket}/in/", f"s3://{bucket}/{output}/", tmp_path / "model",
                       s3={"endpointUrl": endpoint, "addressingStyle": "path"}, region="us-east-1")  # fmt: skip
    job_path = tmp_path / f"{name}.json"
    make_job(job_path, doc)
    with ThreadPoolExecutor(shards) as pool:
        return list(pool.map(lambda index: run_shard_process(job_path, index, SHARDS, SPLIT_BYTES, env), range(shards)))


@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.parametrize("seed", SEEDS)
def test_job_completes_with_identical_output_at_ten_percent_faults(
    tmp_path: Path, s3_client: Any, bucket: str, fault_proxy: S3FaultProxy, seed: int
) -> None:
    write_model(tmp_path / "model")
    _upload_inputs(s3_client, bucket, tmp_path / "inputs")
    clean_runs = _run_job(tmp_path, bucket, "clean", fault_proxy.endpoint_url, "clean")
    assert [r.returncode for r in clean_runs] == [0] * SHARDS, [r.termination for r in clean_runs]
    fault_proxy.plan = FaultPlan(rate=0.1, seed=seed, faults=(*ERROR_FAULTS, Fault.SLOW), slow_seconds=0.05)
    fault_proxy.reset_stats()
    runs = _run_job(tmp_path, bucket, "faulty", fault_proxy.endpoint_url, "faulty")
    injected = fault_proxy.stats.total_injected
    fault_proxy.plan = FaultPlan()
    clean = s3_output_files(s3_client, bucket, "clean/")
    got = s3_output_files(s3_client, bucket, "faulty/")
    lost, duplicated = line_differences(clean, got)
    ok = [r.returncode for r in runs] == [0] * SHARDS and got == clean
    record(Trial("s3-faults/10%", seed, ok, lost, duplicated, f"{injected} faults injected"))
    assert injected > 0
    assert [r.returncode for r in runs] == [0] * SHARDS, [(r.termination, r.log[-2000:]) for r in runs]
    assert got == clean


@pytest.mark.timeout(300)
def test_job_fails_retriably_with_a_clear_reason_when_s3_always_fails(
    tmp_path: Path, s3_client: Any, bucket: str, fault_proxy: S3FaultProxy
) -> None:
    write_model(tmp_path / "model")
    _upload_inputs(s3_client, bucket, tmp_path / "inputs")
    fault_proxy.plan = FaultPlan(rate=1.0, seed=1, faults=ERROR_FAULTS)
    runs = _run_job(tmp_path, bucket, "down", fault_proxy.endpoint_url, "down", env={"KBT_S3_ATTEMPTS": "1"}, shards=1)
    ok = all(r.returncode == ExitCode.RETRIABLE and "S3 unavailable" in r.termination for r in runs)
    record(Trial("s3-faults/100%", 0, ok, detail="; ".join(f"exit {r.returncode}: {r.termination}" for r in runs)[:500]))
    for run in runs:
        assert run.returncode == ExitCode.RETRIABLE, (run.returncode, run.termination, run.log[-2000:])
        assert "S3 unavailable" in run.termination and bucket in run.termination, run.termination
        assert len(run.termination.splitlines()) == 1
