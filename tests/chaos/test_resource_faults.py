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
from kbt.runner.exitcodes import NON_RETRIABLE, ExitCode

OOM_SCORE_PY = """\
def init():
    pass


def run(mini_batch):
    raise MemoryError("Unable to allocate 24.0 GiB for an array with shape (3221225472,) and data type float64")
"""


@pytest.fixture
def tiny_scratch(tmp_path: Path) -> Iterator[Path]:
    """A 64 KiB tmpfs: the shard's scratch volume, nearly no room."""
    mount = tmp_path / "scratch"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount)], check=False, capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def _job(tmp_path: Path, rows: int, script: str | None = None) -> Path:
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    (inputs / "data.csv").write_bytes(good_csv(rows))
    model = write_model(tmp_path / "model", script) if script else write_model(tmp_path / "model")
    doc = job_document("resources", f"{inputs}/", f"{tmp_path / 'out'}/", model, miniBatchSize=500)
    make_job(tmp_path / "job.json", doc)
    return tmp_path / "job.json"


@pytest.mark.timeout(120)
def test_full_scratch_disk_fails_the_shard_retriably_saying_so(tmp_path: Path, tiny_scratch: Path) -> None:
    job = _job(tmp_path, rows=60_000)  # ~300 KiB of predictions spooled to scratch
    run = run_shard_process(job, 0, 1, 64 << 20, env={"KBT_SCRATCH_DIR": str(tiny_scratch)})
    ok = run.returncode not in (0, *NON_RETRIABLE) and "No space left on device" in run.termination
    record(Trial("disk-full", 0, ok, detail=f"exit {run.returncode}: {run.termination}"[:500]))
    assert run.returncode != 0, "the shard succeeded although its scratch disk was full"
    assert run.returncode not in NON_RETRIABLE, (run.returncode, run.termination)
    assert "No space left on device" in run.termination, run.termination
    assert not (tmp_path / "out" / "data.csv.out").exists() or (tmp_path / "out" / "data.csv.out").stat().st_size > 0


@pytest.mark.xfail(
    strict=True,
    reason="runner/kbt/flavors/custom_flavor.py ScoringScriptPredictor.predict catches every Exception from "
    "run(), MemoryError included, and turns it into BatchRejected: every record is reported as a bad record "
    "and the shard exits 0 ('ok: 300 records, 300 failed' with the default errorThreshold -1) instead of "
    "RETRIABLE (75), which kbt.runner.errors.exit_code_for(MemoryError) intends",
)
@pytest.mark.timeout(120)
def test_model_out_of_memory_fails_the_shard_retriably_saying_so(tmp_path: Path) -> None:
    job = _job(tmp_path, rows=300, script=OOM_SCORE_PY)
    run = run_shard_process(job, 0, 1, 64 << 20)
    ok = run.returncode == ExitCode.RETRIABLE and "memory" in run.termination.lower()
    record(Trial("model-oom", 0, ok, detail=f"exit {run.returncode}: {run.termination}"[:500]))
    assert run.returncode == ExitCode.RETRIABLE, (run.returncode, run.termination)
    assert "memory" in run.termination.lower(), run.termination
