"""Resource exhaustion inside a shard: a full scratch disk and a model that runs out of memory.

Either must end the shard with a one-line reason that says what ran out, and an exit code the
Job's pod failure policy retries (a new pod gets a fresh scratch volume; memory pressure may be
gone), never a silent success or a non-retriable "bad input" verdict.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from chaos.bad_inputs import good_csv
from chaos.jobs import job_document, make_job, run_shard_process, write_model
from chaos.trials import Trial, record
from kbt.api.exitcodes import NON_RETRIABLE, ExitCode

OOM_SCORE_PY = """\
def init():
    pass


def run(mini_batch):
    raise MemoryError("Unable to allocate 24.0 GiB for an array with shape (3221225472,) \
and data type float64")
"""


WIDE_SCORE_PY = """\
def init():
    pass


def run(mini_batch):
    return [f"{value}:" + "p" * 1200 for value in mini_batch["f0"]]
"""


@pytest.fixture
def tiny_scratch(tmp_path: Path) -> Iterator[Path]:
    """A 64 KiB tmpfs: the shard's scratch volume, nearly no room."""
    mount = tmp_path / "scratch"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount)],
        check=False,
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def _job(tmp_path: Path, rows: int, script: str | None = None) -> Path:
    inputs = tmp_path / "inputs"
    inputs.mkdir(parents=True)
    (inputs / "data.csv").write_bytes(good_csv(rows))
    model = write_model(tmp_path / "model", script) if script else write_model(tmp_path / "model")
    doc = job_document("resources", f"{inputs}/", f"{tmp_path / 'out'}/", model, miniBatchSize=500)
    make_job(tmp_path / "job.json", doc)
    return tmp_path / "job.json"


@pytest.mark.timeout(120)
def test_full_scratch_disk_fails_the_shard_retriably_saying_so(tmp_path: Path, tiny_scratch: Path) -> None:
    # ~2.4 MB of predictions: past what an item keeps in memory, so they spool to scratch
    job = _job(tmp_path, rows=2_000, script=WIDE_SCORE_PY)
    run = run_shard_process(job, 0, 1, 64 << 20, env={"KBT_SCRATCH_DIR": str(tiny_scratch)})
    ok = run.returncode not in (0, *NON_RETRIABLE) and "No space left on device" in run.termination
    record(Trial("disk-full", 0, ok, detail=f"exit {run.returncode}: {run.termination}"[:500]))
    assert run.returncode != 0, "the shard succeeded although its scratch disk was full"
    assert run.returncode not in NON_RETRIABLE, (run.returncode, run.termination)
    assert "No space left on device" in run.termination, run.termination
    assert (
        not (tmp_path / "out" / "data.csv.out").exists()
        or (tmp_path / "out" / "data.csv.out").stat().st_size > 0
    )


@pytest.mark.timeout(120)
def test_model_out_of_memory_fails_the_shard_retriably_saying_so(tmp_path: Path) -> None:
    job = _job(tmp_path, rows=300, script=OOM_SCORE_PY)
    run = run_shard_process(job, 0, 1, 64 << 20)
    ok = run.returncode == ExitCode.RETRIABLE and "memory" in run.termination.lower()
    record(Trial("model-oom", 0, ok, detail=f"exit {run.returncode}: {run.termination}"[:500]))
    assert run.returncode == ExitCode.RETRIABLE, (run.returncode, run.termination)
    assert "memory" in run.termination.lower(), run.termination
    assert "data.csv record 0" in run.termination, run.termination


CUDA_OOM_ABOVE_64_PY = """\
import torch


def init():
    pass


def run(mini_batch):
    if len(mini_batch) > 64:
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
    return (mini_batch["f0"] * 2 + mini_batch["f1"] - mini_batch["f2"]).tolist()
"""


@pytest.mark.timeout(120)
def test_accelerator_out_of_memory_is_retried_on_smaller_batches(tmp_path: Path) -> None:
    clean_job = _job(tmp_path / "clean", rows=300)
    clean = run_shard_process(clean_job, 0, 1, 64 << 20)
    job = _job(tmp_path / "oom", rows=300, script=CUDA_OOM_ABOVE_64_PY)
    run = run_shard_process(job, 0, 1, 64 << 20)
    assert clean.returncode == 0, clean.termination
    expected = (tmp_path / "clean" / "out" / "data.csv.out").read_bytes()
    got_path = tmp_path / "oom" / "out" / "data.csv.out"
    ok = run.returncode == 0 and got_path.exists() and got_path.read_bytes() == expected
    record(Trial("model-oom/halving", 0, ok, detail=f"exit {run.returncode}: {run.termination}"[:500]))
    assert run.returncode == 0, (run.returncode, run.termination, run.log[-2000:])
    assert got_path.read_bytes() == expected
    assert "out of device memory: retrying in halves" in run.log
    assert not (tmp_path / "oom" / "out" / "_errors").exists()


@pytest.mark.timeout(120)
def test_accelerator_out_of_memory_on_a_single_record_fails_the_shard_retriably(tmp_path: Path) -> None:
    script = CUDA_OOM_ABOVE_64_PY.replace(
        "if len(mini_batch) > 64:", "if len(mini_batch) > 64 or (mini_batch['f0'] == 123).any():"
    )
    job = _job(tmp_path, rows=300, script=script)
    run = run_shard_process(job, 0, 1, 64 << 20)
    ok = run.returncode == ExitCode.RETRIABLE and "data.csv record 123" in run.termination
    record(Trial("model-oom/single-record", 0, ok, detail=f"exit {run.returncode}: {run.termination}"[:500]))
    assert run.returncode == ExitCode.RETRIABLE, (run.returncode, run.termination, run.log[-2000:])
    assert "out of device memory on a single record (data.csv record 123)" in run.termination, run.termination
