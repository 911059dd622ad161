"""``kbt run`` forks the workers of a framework model (PyTorch here) before it plans the job:
they import the framework and load the model meanwhile, and start their shard once the plan is
stored (kbt.runner.forking.Gate). Real ``kbt run`` processes, as a user starts them."""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path

import pytest
from test_lazy_imports import kbt_run_sum, png

from kbt.api.exitcodes import ExitCode

IMAGES = {"contentType": "image/png", "splitType": "None"}
GRAY = {"imagePreprocessing": {"colorMode": "L", "layout": "flat"}}


def _when(log: str, event: str) -> datetime:
    (line,) = [line for line in log.splitlines() if f"] {event}" in line]
    return datetime.fromisoformat(line.split(" ", 1)[0])


def test_workers_load_the_model_before_their_shard_starts(tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    for value in range(1, 5):
        (tmp_path / "in" / f"img-{value}.png").write_bytes(png(value))
    run = kbt_run_sum(tmp_path, IMAGES, instances=2, **GRAY)
    assert run.returncode == 0, run.printed
    assert [(run.out / f"img-{v}.png.out").read_text() for v in range(1, 5)] == [
        "[4.0]\n",
        "[8.0]\n",
        "[12.0]\n",
        "[16.0]\n",
    ]
    workers = [event for event in run.events if "pid" in event]
    assert len(workers) == 2 and all(event["ppid"] == run.pid for event in workers)
    for shard in (0, 1):
        log = (run.out / "_kbt" / "logs" / f"shard-{shard:05d}.log").read_text()
        # one load per worker, logged where the shard loads (its own timestamp: before the start)
        assert _when(log, "loaded PyTorch model") < _when(log, "shard starting")


def test_a_plan_that_fails_stops_the_workers_forked_for_it(tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()  # no input: planning fails once the workers are forked
    cpus = os.cpu_count() or 1
    run = kbt_run_sum(tmp_path, IMAGES, instances=cpus, **GRAY)
    assert run.returncode == int(ExitCode.INPUT_ERROR), run.printed
    assert "no input objects found" in run.printed
    workers = [event["pid"] for event in run.events if "pid" in event]
    assert len(workers) == cpus  # each had loaded the model, then saw the gate shut
    for pid in workers:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    assert not (run.out / "_kbt" / "logs").exists()  # no shard started


def test_a_model_that_fails_to_load_early_fails_its_shard_as_usual(tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "img.png").write_bytes(png(1))
    run = kbt_run_sum(tmp_path, IMAGES, **GRAY, modelClass="sum_net:Missing")
    assert run.returncode == int(ExitCode.MODEL_LOAD_ERROR), run.printed
    log = (run.out / "_kbt" / "logs" / "shard-00000.log").read_text()
    assert "Missing" in log and log.count("shard failed") == 1


def test_a_worker_that_dies_while_loading_fails_the_run_with_its_shard(tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "img.png").write_bytes(png(1))
    killer = tmp_path / "model" / "dies.py"
    killer.parent.mkdir()
    killer.write_text("import os, signal\nos.kill(os.getpid(), signal.SIGKILL)\n")
    run = kbt_run_sum(tmp_path, IMAGES, **GRAY, modelClass="dies:Sum")
    assert run.returncode != 0, run.printed
    assert "shard 0 (exit -9)" in run.printed and "Traceback" not in run.printed
