"""`kbt run` (``run_local``, real worker processes) re-run into the same output path: it prints
what changed since the last run and re-scores only the changed input."""

from __future__ import annotations

from pathlib import Path

import pytest
from rich.console import Console

from chaos.jobs import job_document, make_job, write_model
from kbt.runner.local import run_local


@pytest.mark.timeout(240)
def test_kbt_run_reports_the_changed_input_and_rescores_it(tmp_path: Path) -> None:
    inputs, out = tmp_path / "in", tmp_path / "out"
    inputs.mkdir()
    (inputs / "a.csv").write_text("f0,f1,f2\n1,1,1\n")
    (inputs / "b.csv").write_text("f0,f1,f2\n2,2,2\n")
    doc = job_document("rerun", f"{inputs}/", f"{out}/", write_model(tmp_path / "model"))
    job = make_job(tmp_path / "job.json", doc)
    first = Console(record=True, width=200)
    assert run_local(job, 1, 1, 64 << 20, first).exit_code == 0
    assert "changed since the last run" not in first.export_text()
    b_output = (out / "b.csv.out").stat().st_mtime_ns
    (inputs / "a.csv").write_text("f0,f1,f2\n5,5,5\n")
    second = Console(record=True, width=200)
    summary = run_local(job, 1, 1, 64 << 20, second)
    assert summary.exit_code == 0, summary.reasons
    assert f"changed since the last run: input {inputs / 'a.csv'} changed" in second.export_text()
    assert (out / "a.csv.out").read_text().split() == ["10"]
    assert (out / "b.csv.out").stat().st_mtime_ns == b_output  # skipped, not rewritten
    assert summary.records == 2
