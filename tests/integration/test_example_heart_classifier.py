"""examples/heart-classifier end to end: train, `kbt run job.yaml`, check every prediction;
and `demo.py` (what `make demo` runs) against its own loopback S3."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import mlflow.pyfunc
import pandas as pd
import pytest
from example_support import EXAMPLES, REPO, S3_CREDENTIALS, kbt_run, load_example, retarget

pytestmark = pytest.mark.xdist_group("example-heart")
EXAMPLE = EXAMPLES / "heart-classifier"
DIRTY_ROWS = {47: "1", 52: "2"}  # records of heart-unlabeled-2.csv whose thal is not a category


@pytest.fixture(scope="module")
def prepare() -> ModuleType:
    return load_example("heart-classifier", "prepare")


@pytest.fixture(scope="module")
def trained(prepare: ModuleType, tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("heart-work")
    accuracy = prepare.prepare(work=work)
    assert 0.7 <= accuracy <= 1.0, f"hold-out accuracy {accuracy:.3f} is implausible"
    return work


def expected_predictions(model: Any, csv_file: Path) -> list[int]:
    """What the saved model predicts for the file's rows with a known thal, in file order."""
    frame = pd.read_csv(csv_file, dtype={"thal": str})
    clean = frame[frame["thal"].isin(["fixed", "normal", "reversible"])]
    return [int(v) for v in model.predict(clean)]


def test_job_scores_clean_rows_and_rejects_unknown_thal(
    trained: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_ALLOW_PICKLE_DESERIALIZATION", "true")
    manifest = retarget(EXAMPLE / "job.yaml", trained, tmp_path)
    kbt_run(manifest)
    predictions = trained / "predictions"
    model = mlflow.pyfunc.load_model(str(trained / "model"))
    inputs = sorted((trained / "data").glob("*.csv"))
    assert sorted(p.name for p in predictions.glob("*.out")) == [f"{p.name}.out" for p in inputs]
    for source in inputs:
        written = [int(line) for line in (predictions / f"{source.name}.out").read_text().splitlines()]
        assert written == expected_predictions(model, source), source.name
    assert len((predictions / "heart-unlabeled-3.csv.out").read_text().splitlines()) == 3

    errors = [
        json.loads(line) for line in (predictions / "_errors" / "heart-unlabeled-2.csv.errors.jsonl").open()
    ]
    assert [(Path(e["object"]).name, e["record"]) for e in errors] == [
        ("heart-unlabeled-2.csv", row) for row in DIRTY_ROWS
    ]
    for error, value in zip(errors, DIRTY_ROWS.values(), strict=True):
        assert f"column 'thal': unknown category '{value}'" in error["reason"]

    summary = json.loads((predictions / "_manifest.json").read_text())
    assert summary["counts"] == {"records": 303, "succeeded": 301, "failed": 2, "objects": 4}


@pytest.mark.slow  # trains and runs the whole job again: `make demo` as a user runs it
def test_demo_runs_on_loopback_s3_and_prints_results() -> None:
    env = {**os.environ, **S3_CREDENTIALS}
    result = subprocess.run(
        [sys.executable, str(EXAMPLE / "demo.py")],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-6000:]
    assert "s3://results/heart/heart-unlabeled-0.csv.out" in output
    assert "s3://results/heart/_manifest.json" in output
    assert '"failed": 2' in output
    assert "unknown category '1'" in output and "unknown category '2'" in output
