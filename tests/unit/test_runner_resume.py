"""Re-running into the same output path: what the resume fingerprint covers (spec incl.
environment, model content, input versions), what a re-run reports and redoes; and
``compressionType`` (None reads ``.gz`` keys as they are, Gzip insists on gzip)."""

from __future__ import annotations

import gzip
import os
from pathlib import Path
from typing import Any

import pytest

from harness.rerun import rerun
from kbt.api.models import BatchTransformJobSpec
from kbt.api.resolved import ResolvedJob
from kbt.runner.errors import InputError


def make_job(inputs: Path, output: Path, model: Path, **extra: Any) -> ResolvedJob:
    spec: dict[str, Any] = {
        "transformInput": {
            "contentType": "text/csv",
            "splitType": "Line",
            "dataSource": {"s3DataSource": {"s3Uri": f"{inputs}/"}},
            **extra.pop("transformInput", {}),
        },
        "transformOutput": {"s3OutputPath": str(output), **extra.pop("transformOutput", {})},
        "transformResources": {"instanceType": "ml.m5.large"},
        "model": {"uri": str(model), "flavor": "sklearn"},
        "errorThreshold": -1,
        **extra,
    }
    parsed = BatchTransformJobSpec.model_validate(spec)
    assert parsed.model is not None
    return ResolvedJob(name="resume", spec=parsed, model=parsed.model, model_ref="m")


def rewrite(path: Path, text: str) -> None:
    """New content with a modification time surely different from the old one."""
    before = path.stat().st_mtime_ns if path.exists() else 0
    path.write_text(text)
    os.utime(path, ns=(before + 10**9, before + 10**9))


@pytest.fixture
def setup(tmp_path: Path) -> tuple[Path, Path, Path]:
    inputs, out, model = tmp_path / "in", tmp_path / "out", tmp_path / "model"
    inputs.mkdir()
    model.mkdir()
    rewrite(model / "model.skops", "weights-1")
    rewrite(inputs / "a.csv", "1,2\n3,4\n")
    rewrite(inputs / "b.csv", "10,20\n")
    return inputs, out, model


def test_nothing_changed_skips_everything(setup: tuple[Path, Path, Path]) -> None:
    inputs, out, model = setup
    job = make_job(inputs, out, model)
    assert rerun(job) == ([], 3)
    assert rerun(job) == ([], 0)
    assert (out / "a.csv.out").read_text().splitlines() == ["3.0", "7.0"]


def test_changed_input_is_rescored_and_the_others_are_skipped(setup: tuple[Path, Path, Path]) -> None:
    inputs, out, model = setup
    job = make_job(inputs, out, model)
    rerun(job)
    rewrite(inputs / "a.csv", "5,5\n6,6\n")
    changes, rows = rerun(job)
    assert changes == [f"input {inputs / 'a.csv'} changed"]
    assert rows == 2  # only a.csv
    assert (out / "a.csv.out").read_text().splitlines() == ["10.0", "12.0"]
    assert (out / "b.csv.out").read_text().splitlines() == ["30.0"]


def test_new_and_removed_inputs_are_reported(setup: tuple[Path, Path, Path]) -> None:
    inputs, out, model = setup
    job = make_job(inputs, out, model)
    rerun(job)
    (inputs / "b.csv").unlink()
    rewrite(inputs / "c.csv", "1,1\n")
    changes, rows = rerun(job)
    assert changes == [f"input {inputs / 'c.csv'} is new", f"input {inputs / 'b.csv'} is gone"]
    assert rows == 1


def test_environment_change_redoes_everything(setup: tuple[Path, Path, Path]) -> None:
    inputs, out, model = setup
    rerun(make_job(inputs, out, model))
    changes, rows = rerun(make_job(inputs, out, model, environment=[{"name": "SCALE", "value": "2"}]))
    assert changes == ["spec field environment changed", "every input is scored again"]
    assert rows == 3


def test_going_back_to_an_earlier_spec_does_not_reuse_its_stale_state(setup: tuple[Path, Path, Path]) -> None:
    inputs, out, model = setup
    scaled = [{"name": "SCALE", "value": "2"}]
    rerun(make_job(inputs, out, model))
    rerun(make_job(inputs, out, model, environment=scaled))
    changes, rows = rerun(make_job(inputs, out, model))
    assert changes == ["spec field environment changed", "every input is scored again"]
    assert rows == 3


def test_retrained_model_at_the_same_uri_redoes_everything(setup: tuple[Path, Path, Path]) -> None:
    inputs, out, model = setup
    job = make_job(inputs, out, model)
    rerun(job)
    rewrite(model / "model.skops", "weights-2")
    changes, rows = rerun(job)
    assert changes == [f"the model at {model} changed (new version or files)", "every input is scored again"]
    assert rows == 3


def test_append_row_rerun_never_duplicates_rows(setup: tuple[Path, Path, Path]) -> None:
    inputs, out, model = setup
    job = make_job(inputs, out, model, transformOutput={"outputAction": "appendRow", "accept": "text/csv"})
    rerun(job)
    rewrite(inputs / "b.csv", "100,200\n")
    changes, _ = rerun(job)
    assert changes == [f"input {inputs / 'b.csv'} changed"]
    assert (out / "predictions.csv").read_text().count("\n") == 3
    assert "300" in (out / "predictions.csv").read_text()


def test_gz_key_without_compression_type_is_read_as_is(tmp_path: Path) -> None:
    inputs, out, model = tmp_path / "in", tmp_path / "out", tmp_path / "model"
    inputs.mkdir()
    model.mkdir()
    (inputs / "plain.csv.gz").write_text("1,2\n")
    rerun(make_job(inputs, out, model))
    assert (out / "plain.csv.gz.out").read_text().splitlines() == ["3.0"]


def test_gzip_compression_type_gunzips_and_refuses_plain_objects(tmp_path: Path) -> None:
    inputs, out, model = tmp_path / "in", tmp_path / "out", tmp_path / "model"
    inputs.mkdir()
    model.mkdir()
    (inputs / "x.csv").write_bytes(gzip.compress(b"1,2\n3,4\n"))
    rerun(make_job(inputs, out, model, transformInput={"compressionType": "Gzip"}))
    assert (out / "x.csv.out").read_text().splitlines() == ["3.0", "7.0"]
    (inputs / "y.csv").write_text("1,2\n")
    with pytest.raises(InputError, match=r"y\.csv: transformInput.compressionType is Gzip but the object"):
        rerun(make_job(inputs, out, model, transformInput={"compressionType": "Gzip"}))


def test_an_input_fixed_since_the_last_run_loses_its_errors_file(setup: tuple[Path, Path, Path]) -> None:
    inputs, out, model = setup
    rewrite(inputs / "a.csv", "1,2\nx,4\n")
    job = make_job(inputs, out, model)
    rerun(job)
    errors = out / "_errors" / "a.csv.errors.jsonl"
    assert '"record": 1' in errors.read_text()
    rewrite(inputs / "a.csv", "1,2\n3,4\n")
    changes, rows = rerun(job)
    assert (changes, rows) == ([f"input {inputs}/a.csv changed"], 2)
    assert not errors.exists()
