"""`kbt run` workers forked after one model load, or forked before loading it themselves, write
what spawned workers write: the same output bytes, per-shard logs (with the load's lines),
termination messages and exit codes."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Literal

import mlflow.sklearn
import numpy as np
import pandas as pd
import pytest
from mlflow.models import infer_signature
from rich.console import Console
from sklearn.linear_model import LogisticRegression

import kbt.runner.forking
import kbt.runner.local
from chaos.jobs import job_document, make_job
from kbt.runner.local import RunSummary, run_local

LOADED = "loaded MLflow model"
Mode = Literal["preloaded", "unloaded", "spawned"]


def _model(root: Path) -> Path:
    frame = pd.DataFrame({"a": np.arange(20, dtype=np.int64), "b": np.linspace(0.0, 1.0, 20)})
    model = LogisticRegression().fit(frame, (frame["a"] > 9).astype(int))
    path = root / "model"
    mlflow.sklearn.save_model(
        model, path, signature=infer_signature(frame, model.predict(frame)), pip_requirements=["scikit-learn"]
    )
    return path


def _inputs(root: Path) -> Path:
    inputs = root / "in"
    inputs.mkdir()
    for index in range(4):
        rows = "".join(f"{index * 7 + row},{row / 10}\n" for row in range(30))
        bad = "x,0.5\n" if index == 2 else ""  # rejected by the signature: `a` is a long
        (inputs / f"part-{index}.csv").write_text("a,b\n" + rows + bad)
    return inputs


def _run(
    root: Path, name: Mode, *, monkeypatch: pytest.MonkeyPatch, **spec: object
) -> tuple[RunSummary, dict[str, bytes], dict[str, str]]:
    """run_local with 2 workers started as ``name`` says; its summary, output files and the work
    folder's files. (This test process imported mlflow: ``unloaded`` forks as ``kbt run`` does,
    whose process imports no framework.)"""
    work = root / f"{name}-work"
    work.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(work))
    if name != "preloaded":
        monkeypatch.setattr(kbt.runner.local, "preload", lambda *_: None)
        for module in (kbt.runner.local, kbt.runner.forking):
            monkeypatch.setattr(module, "may_fork_unloaded", lambda: name == "unloaded")
    out = root / f"{name}-out"
    doc = job_document(name, f"{root / 'in'}/", f"{out}/", root / "model", **spec)
    doc["metadata"]["uid"] = "uid-same"
    doc["metadata"]["name"] = "same"
    doc["spec"]["model"] = {"uri": str(root / "model"), "flavor": "mlflow"}
    job = make_job(root / f"{name}.json", doc)
    summary = run_local(job, 2, 2, 64 << 20, Console(record=True, width=200))
    monkeypatch.undo()
    outputs = {
        str(p.relative_to(out)): p.read_bytes()
        for p in sorted(out.rglob("*"))
        if p.is_file() and "_kbt" not in p.parts and p.name != "_manifest.json"
    }
    (folder,) = work.glob("kbt-run-*")
    files = {p.name: p.read_text() for p in folder.iterdir() if p.name.startswith("shard-")}
    return summary, outputs, files


def _events(log: str) -> list[str]:
    """The log's events in order, without timestamps and timings, nor "finalized" (logged by
    whichever shard ends last), nor "work items done" (one per group of done-markers, and a
    group may be stored early by the clock: kbt.runner.done)."""
    events = [line.split("]", 1)[1].split("[", 1)[0].strip() for line in log.splitlines() if "] " in line]
    return [event for event in events if event not in ("finalized", "work items done")]


def _run_matching_spawned(tmp_path: Path, mode: Mode, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Run the job with workers in ``mode``, then spawned; assert both wrote the same output, log
    events and terminations; return the ``mode`` run's log and termination files."""
    forked, forked_out, forked_files = _run(tmp_path, mode, monkeypatch=monkeypatch)
    spawned, spawned_out, spawned_files = _run(tmp_path, "spawned", monkeypatch=monkeypatch)
    assert forked.exit_code == spawned.exit_code == 0
    assert (forked.records, forked.failed) == (spawned.records, spawned.failed) == (121, 1)
    assert forked_out == spawned_out and "part-2.csv.out" in forked_out
    assert sorted(forked_files) == sorted(spawned_files)
    for name in forked_files:
        if name.endswith(".termination"):
            assert forked_files[name] == spawned_files[name]
        else:
            assert _events(forked_files[name]) == _events(spawned_files[name])
    return forked_files


@pytest.mark.timeout(300)
def test_forked_workers_match_spawned_ones(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _model(tmp_path), _inputs(tmp_path)
    forked_files = _run_matching_spawned(tmp_path, "preloaded", monkeypatch)
    assert sum("] finalized" in text for text in forked_files.values()) == 1
    loads = {line for text in forked_files.values() for line in text.splitlines() if LOADED in line}
    assert len(loads) == 1 and "loader=kbt" in next(iter(loads))  # loaded once, logged by each shard


@pytest.mark.timeout(300)
@pytest.mark.parametrize("mode", ["preloaded", "unloaded"])
def test_forked_workers_fail_like_spawned_ones(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mode: Mode
) -> None:
    _model(tmp_path), _inputs(tmp_path)
    forked, _, forked_files = _run(tmp_path, mode, monkeypatch=monkeypatch, errorThreshold=0)
    spawned, _, spawned_files = _run(tmp_path, "spawned", monkeypatch=monkeypatch, errorThreshold=0)
    assert forked.exit_code == spawned.exit_code != 0
    terminations = sorted(name for name in forked_files if name.endswith(".termination"))
    assert terminations
    assert [forked_files[n] for n in terminations] == [spawned_files[n] for n in terminations]


@pytest.mark.timeout(300)
def test_workers_forked_before_loading_match_spawned_ones(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _model(tmp_path), _inputs(tmp_path)
    forked_files = _run_matching_spawned(tmp_path, "unloaded", monkeypatch)
    # each shard loaded the model itself
    assert all(LOADED in text for name, text in forked_files.items() if name.endswith(".log"))
