"""Malformed inputs: every bad record is reported with its object and position, never skipped
silently, and nothing hangs or blows up memory (a 1 GB single line, thousands of tiny objects).

The corpus comes from ``chaos.bad_inputs`` and is generated per test; the model is a custom
scoring script that sums three numeric columns (for images: one that reports each file's size).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from chaos.bad_inputs import (
    BadObject,
    write_csv_corpus,
    write_gzip_corpus,
    write_huge_line,
    write_image_corpus,
    write_jsonlines_corpus,
    write_many_tiny,
)
from chaos.jobs import ShardRun, job_document, make_job, run_shard_process, write_model
from chaos.trials import trial_count

HUGE_LINE_BYTES = trial_count(quick=64 << 20, full=1 << 30)  # 1 GiB under `make chaos`


IMAGE_SIZE_SCORE_PY = """\
import os


def init():
    pass


def run(mini_batch):
    return [os.path.getsize(path) for path in mini_batch]
"""


def _run(tmp_path: Path, inputs: Path, script: str | None = None, **spec: Any) -> tuple[ShardRun, Path]:
    out = tmp_path / "out"
    model = write_model(tmp_path / "model", script) if script else write_model(tmp_path / "model")
    doc = job_document("badinput", f"{inputs}/", f"{out}/", model, **spec)
    make_job(tmp_path / "job.json", doc)
    return run_shard_process(tmp_path / "job.json", 0, 1, 64 << 20, timeout=480), out


def _errors(out: Path) -> dict[str, list[dict[str, Any]]]:
    """Error entries by object name (the file name under _errors/ without its suffix)."""
    found: dict[str, list[dict[str, Any]]] = {}
    for path in sorted((out / "_errors").rglob("*.errors.jsonl")) if (out / "_errors").exists() else []:
        name = path.relative_to(out / "_errors").as_posix().removesuffix(".errors.jsonl")
        found[name] = [json.loads(line) for line in path.read_text().splitlines()]
    return found


def _check_corpus(corpus: list[BadObject], run: ShardRun, out: Path, inputs: Path) -> None:
    assert run.returncode == 0, (run.returncode, run.termination, run.log[-2000:])
    errors = _errors(out)
    for obj in corpus:
        reported = errors.get(obj.key, [])
        for entry in reported:
            assert entry["object"].endswith(obj.key), entry
            assert entry["reason"].strip(), entry
        positions = sorted(entry["record"] for entry in reported)
        if obj.whole_object:
            assert reported or obj.key in run.termination, f"{obj.key} ({obj.problem}): no error reported"
            continue
        # A model that rejects a whole mini-batch fails its good records too (Azure semantics), so
        # the bad records must be among those reported; no record may vanish without a trace.
        assert set(obj.bad_records) <= set(positions), f"{obj.key} ({obj.problem}): errors at {positions}"
        output = out / f"{obj.key}.out"
        assert output.exists(), f"{obj.key} ({obj.problem}): no output and no error: silently skipped"
        assert len(output.read_bytes().splitlines()) + len(positions) == obj.records, obj.key
    manifest = json.loads((out / "_manifest.json").read_text())
    assert manifest["counts"]["failed"] == sum(len(e) for e in errors.values())


@pytest.mark.timeout(120)
def test_malformed_csv_rows_are_reported_with_object_and_record(tmp_path: Path) -> None:
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    corpus = write_csv_corpus(inputs)
    run, out = _run(tmp_path, inputs)
    _check_corpus(corpus, run, out, inputs)


@pytest.mark.timeout(120)
def test_broken_json_lines_are_reported_with_object_and_record(tmp_path: Path) -> None:
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    corpus = write_jsonlines_corpus(inputs)
    run, out = _run(tmp_path, inputs, transformInput={
        "contentType": "application/jsonlines", "splitType": "Line",
        "dataSource": {"s3DataSource": {"s3Uri": f"{inputs}/"}},
    })  # fmt: skip
    _check_corpus(corpus, run, out, inputs)


@pytest.mark.timeout(120)
def test_truncated_and_fake_gzip_objects_fail_with_a_clear_error(tmp_path: Path) -> None:
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    corpus = write_gzip_corpus(inputs)
    run, out = _run(tmp_path, inputs, transformInput={
        "contentType": "text/csv", "splitType": "Line", "compressionType": "Gzip",
        "dataSource": {"s3DataSource": {"s3Uri": f"{inputs}/"}},
    })  # fmt: skip
    if run.returncode != 0:  # a clear shard failure naming the object is acceptable
        assert any(o.key in run.termination for o in corpus if o.whole_object), run.termination
        return
    _check_corpus(corpus, run, out, inputs)


@pytest.mark.timeout(120)
def test_corrupt_and_empty_images_are_reported_with_object_and_record(tmp_path: Path) -> None:
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    corpus = write_image_corpus(inputs)
    model = {"uri": str(tmp_path / "model"), "flavor": "custom", "scoringScript": "score.py",
             "imagePreprocessing": {"colorMode": "L", "width": 4, "height": 4}}  # fmt: skip
    run, out = _run(tmp_path, inputs, IMAGE_SIZE_SCORE_PY, model=model, transformInput={
        "contentType": "image/png", "dataSource": {"s3DataSource": {"s3Uri": f"{inputs}/"}},
    })  # fmt: skip
    _check_corpus(corpus, run, out, inputs)
    good = next(obj for obj in corpus if obj.key == "good.png")
    assert (out / "good.png.out").read_bytes().strip() == str((inputs / good.key).stat().st_size).encode()
    reasons = {name: entries[0]["reason"] for name, entries in _errors(out).items()}
    assert set(reasons) == {obj.key for obj in corpus if obj.bad_records}, reasons
    assert all("image" in reason for reason in reasons.values()), reasons


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_a_huge_single_line_fails_that_record_without_hanging_or_eating_memory(tmp_path: Path) -> None:
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    write_huge_line(inputs / "huge.csv", HUGE_LINE_BYTES)
    (inputs / "small.csv").write_bytes(b"f0,f1,f2\n1,2,3\n")
    run, out = _run(tmp_path, inputs, maxPayloadInMB=6)
    assert run.peak_rss_mib < 800, (
        f"the shard used {run.peak_rss_mib:.0f} MiB for a {HUGE_LINE_BYTES >> 20} MiB line"
    )
    errors = _errors(out)
    if run.returncode == 0:
        assert [e["record"] for e in errors.get("huge.csv", [])] == [0], errors
        assert (
            "maxPayloadInMB" in errors["huge.csv"][0]["reason"]
            or "too large" in errors["huge.csv"][0]["reason"]
        )
        assert (out / "small.csv.out").read_bytes().strip() == b"1"  # 1 * 2 + 2 - 3
    else:
        assert "huge.csv" in run.termination, run.termination


@pytest.mark.timeout(300)
def test_thousands_of_tiny_objects_each_get_their_output(tmp_path: Path) -> None:
    count = trial_count(quick=2_000, full=20_000)
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    write_many_tiny(inputs, count)
    run, out = _run(tmp_path, inputs)
    assert run.returncode == 0, (run.termination, run.log[-2000:])
    outputs = list(out.rglob("*.csv.out"))
    assert len(outputs) == count
    assert json.loads((out / "_manifest.json").read_text())["counts"]["records"] == count
