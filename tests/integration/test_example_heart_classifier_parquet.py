"""examples/heart-classifier-parquet end to end: Parquet in, Parquet out, inputs joined."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow.pyfunc
import pandas as pd
import pytest
from example_support import EXAMPLES, kbt_run, load_example, retarget

EXAMPLE = EXAMPLES / "heart-classifier-parquet"
DIRTY_ROWS = [47, 52]  # records of heart-unlabeled-2 whose thal is "1" / "2"


def test_parquet_job_joins_predictions_to_inputs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_ALLOW_PICKLE_DESERIALIZATION", "true")
    work = tmp_path / "work"
    load_example("heart-classifier-parquet", "prepare").prepare(work=work)
    kbt_run(retarget(EXAMPLE / "job.yaml", work, tmp_path))

    model = mlflow.pyfunc.load_model(str(work / "model"))
    inputs = sorted((work / "data").glob("*.parquet"))
    outputs = work / "predictions"
    assert sorted(p.name for p in outputs.glob("*.out")) == [f"{p.name}.out" for p in inputs]
    for source in inputs:
        frame = pd.read_parquet(source)
        if source.stem == "heart-unlabeled-2":
            frame = frame.drop(index=DIRTY_ROWS)
        frame = frame.reset_index(drop=True)
        written = pd.read_parquet(outputs / f"{source.name}.out")
        assert list(written.columns) == [*frame.columns, "prediction"]
        pd.testing.assert_frame_equal(written.drop(columns="prediction"), frame, check_dtype=False)
        assert written["prediction"].tolist() == [int(v) for v in model.predict(frame)]

    errors = [
        json.loads(line) for line in (outputs / "_errors" / "heart-unlabeled-2.parquet.errors.jsonl").open()
    ]
    assert [e["record"] for e in errors] == DIRTY_ROWS
    assert all("column 'thal': unknown category" in e["reason"] for e in errors)
