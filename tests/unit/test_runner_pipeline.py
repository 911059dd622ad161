"""The shard pipeline end to end on local storage, with small real predictors built here."""

from __future__ import annotations

import csv
import gzip
import io
import json
import random
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from harness.lost_markers import forget_items
from kbt.api.models import BatchTransformJobSpec, ClassifyOptions, CsvOptions
from kbt.api.resolved import ResolvedJob
from kbt.flavors.base import ModelInput, ModelOutput, Record
from kbt.runner.classify import top_classes
from kbt.runner.coalesce import concat_inputs, stack_runs
from kbt.runner.decode import Decoder
from kbt.runner.errors import ConfigError, ErrorThresholdExceeded, InputError
from kbt.runner.framing import tfrecord_frame
from kbt.runner.pipeline import InlineExecutor
from kbt.runner.reader import ItemReader, header_or_none
from kbt.runner.shard import run_shard
from kbt.storage.local import LocalStore


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    for key, value in extra.items():
        base[key] = _merge(dict(base.get(key, {})), value) if isinstance(value, dict) else value
    return base


def make_job(inputs: Path, output: Path, **spec: Any) -> ResolvedJob:
    base: dict[str, Any] = {
        "transformInput": {
            "contentType": "text/csv",
            "splitType": "Line",
            "dataSource": {"s3DataSource": {"s3Uri": f"{inputs}/"}},
        },
        "transformOutput": {"s3OutputPath": str(output)},
        "transformResources": {"instanceType": "ml.m5.large"},
        "model": {"uri": "unused", "flavor": "sklearn"},
        "retrySettings": {"maxRetries": 0, "timeoutSeconds": 30},
        # these tests look at how bad records are reported, so they use Azure's semantics;
        # SageMaker's (no errorThreshold) are in tests/conformance/test_failure_semantics.py
        "errorThreshold": -1,
    }
    parsed = BatchTransformJobSpec.model_validate(_merge(base, spec))
    assert parsed.model is not None
    return ResolvedJob(name="test", spec=parsed, model=parsed.model, model_ref="unused")


class SumPredictor:
    """Sums the numeric columns of each row; a non-numeric value makes the batch fail."""

    device = "cpu"
    rows_independent = True

    def __init__(self, delay: float = 0.0) -> None:
        self.calls = 0
        self.delay = delay
        self.lock = threading.Lock()

    def predict(self, batch: ModelInput) -> ModelOutput:
        with self.lock:
            self.calls += 1
        if self.delay:
            time.sleep(random.random() * self.delay)
        if batch.frame is not None:
            return batch.frame.astype(float).sum(axis=1).to_numpy()
        if batch.tensor is not None:
            return batch.tensor.reshape(len(batch), -1).mean(axis=1)
        return [len(record.data) for record in batch.records]


def run_all(job: ResolvedJob, predictor: Any, shards: int = 1, split: int | None = None) -> None:
    for index in range(shards):
        run_shard(job, index, shards=shards, split_bytes=split, predictor=predictor, progress_interval=60)


def write_csv(path: Path, rows: list[list[Any]], header: list[str] | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        if header:
            writer.writerow(header)
        writer.writerows(rows)


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines()


def manifest(output: Path) -> dict[str, Any]:
    return json.loads((output / "_manifest.json").read_text())  # type: ignore[no-any-return]


def test_csv_outputs_per_input_in_order(tmp_path: Path) -> None:
    data = tmp_path / "in"
    rng = random.Random(1)
    tables = {
        f"part-{i}.csv": [[rng.randint(0, 9), rng.randint(0, 9)] for _ in range(30 + i)] for i in range(3)
    }
    for name, rows in tables.items():
        write_csv(data / name, rows, header=["a", "b"])
    out = tmp_path / "out"
    run_all(make_job(data, out, miniBatchSize=7), SumPredictor(), shards=2)
    for name, rows in tables.items():
        assert lines(out / f"{name}.out") == [f"{float(a + b)}" for a, b in rows]
    summary = manifest(out)
    assert summary["counts"] == {"records": 93, "succeeded": 93, "failed": 0, "objects": 3}
    assert len(summary["shards"]) == 2
    assert not (out / "_errors").exists()
    progress = json.loads((out / "_kbt/progress/shard-00001.json").read_text())
    assert progress["state"] == "completed" and progress["bytesProcessed"] == progress["bytesTotal"] > 0


def test_bad_records_go_to_errors_and_threshold_fails(tmp_path: Path) -> None:
    data = tmp_path / "in"
    (data).mkdir()
    (data / "x.csv").write_text("a,b\n1,2\n3,oops\n5,6\n7,8,9\n10,11\n")
    out = tmp_path / "out"
    run_all(make_job(data, out, miniBatchSize=10, errorThreshold=-1), SumPredictor())
    assert lines(out / "x.csv.out") == ["3.0", "11.0", "21.0"]
    errors = [json.loads(line) for line in lines(out / "_errors/x.csv.errors.jsonl")]
    assert [(e["record"], e["offset"]) for e in errors] == [(1, 8), (3, 19)]
    assert "3 fields, expected 2" in errors[1]["reason"]
    assert manifest(out)["counts"]["failed"] == 2
    with pytest.raises(ErrorThresholdExceeded, match="2 bad records, more than errorThreshold 1"):
        run_all(make_job(data, tmp_path / "strict", errorThreshold=1), SumPredictor())
    with pytest.raises(ErrorThresholdExceeded, match=r"2 of 5 records bad \(40.0%\)"):
        run_all(make_job(data, tmp_path / "pct", errorThreshold="10%"), SumPredictor())


def test_schema_mismatch_fails_fast(tmp_path: Path) -> None:
    data = tmp_path / "in"
    write_csv(data / "x.csv", [["word", "other"]] * 150, header=["a", "b"])
    predictor = SumPredictor()
    with pytest.raises(InputError, match=r"first 1.. records all failed the same way"):
        run_all(make_job(data, tmp_path / "out", miniBatchSize=1000, errorThreshold="50%"), predictor)


def test_split_csv_with_quoted_newlines_matches_unsplit(tmp_path: Path) -> None:
    data = tmp_path / "in"
    rng = random.Random(7)
    rows = [[i, rng.choice(["x", 'multi\n"line"', "a,b"]), rng.randint(0, 100)] for i in range(400)]
    write_csv(data / "big.csv", rows, header=["id", "text", "v"])

    class IdPlusV(SumPredictor):
        def predict(self, batch: ModelInput) -> ModelOutput:
            assert batch.frame is not None
            return (batch.frame["id"] + batch.frame["v"]).to_numpy()

    whole, split = tmp_path / "whole", tmp_path / "split"
    run_all(make_job(data, whole), IdPlusV())
    run_all(make_job(data, split), IdPlusV(), shards=3, split=1000)
    plan_parts = manifest(split)["inputs"][0]["parts"]
    assert plan_parts > 5
    assert (split / "big.csv.out").read_bytes() == (whole / "big.csv.out").read_bytes()
    assert lines(whole / "big.csv.out") == [str(i + v) for i, _, v in rows]
    assert not list((split / "_kbt").rglob("parts/*"))  # parts are removed after finalization


def test_jsonl_ranges_own_the_lines_that_start_in_them(tmp_path: Path) -> None:
    data = tmp_path / "in"
    data.mkdir()
    records = [{"a": i, "b": i * 2} for i in range(500)]
    (data / "r.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    out = tmp_path / "out"
    job = make_job(data, out, transformInput={"contentType": "application/jsonlines"})
    run_all(job, SumPredictor(), shards=2, split=333)
    assert lines(out / "r.jsonl.out") == [str(float(3 * i)) for i in range(500)]


def test_csv_filters_and_join(tmp_path: Path) -> None:
    data = tmp_path / "in"
    write_csv(data / "x.csv", [["id1", 1, 2], ["id2", 3, 4]])
    out = tmp_path / "out"
    job = make_job(
        data,
        out,
        transformInput={"csv": {"header": False}},
        dataProcessing={"inputFilter": "$[1:]", "joinSource": "Input"},
    )
    run_all(job, SumPredictor())
    assert lines(out / "x.csv.out") == ["id1,1,2,3.0", "id2,3,4,7.0"]
    filtered = tmp_path / "filtered"
    job = make_job(
        data,
        filtered,
        transformInput={"csv": {"header": False}},
        dataProcessing={"inputFilter": "$[1:]", "joinSource": "Input", "outputFilter": "$[0,-1]"},
    )
    run_all(job, SumPredictor())
    assert lines(filtered / "x.csv.out") == ["id1,3.0", "id2,7.0"]


def test_json_filter_join_and_output_filter(tmp_path: Path) -> None:
    data = tmp_path / "in"
    data.mkdir()
    (data / "x.jsonl").write_text('{"id": 1, "features": [1, 2]}\n{"id": 2, "features": [5, 5]}\n{"id": 3}\n')
    out = tmp_path / "out"
    job = make_job(
        data,
        out,
        transformInput={"contentType": "application/jsonlines"},
        dataProcessing={
            "inputFilter": "$.features",
            "joinSource": "Input",
            "outputFilter": "$['id','SageMakerOutput']",
        },
    )
    run_all(job, SumPredictor())
    assert [json.loads(line) for line in lines(out / "x.jsonl.out")] == [
        {"id": 1, "SageMakerOutput": 3.0},
        {"id": 2, "SageMakerOutput": 10.0},
    ]
    (error,) = [json.loads(line) for line in lines(out / "_errors/x.jsonl.errors.jsonl")]
    assert error["record"] == 2 and "matches nothing" in error["reason"]


def test_append_row_and_summary_only(tmp_path: Path) -> None:
    data = tmp_path / "in"
    for i in range(3):
        write_csv(data / f"f{i}.csv", [[i, j] for j in range(5)], header=["a", "b"])
    out = tmp_path / "out"
    run_all(
        make_job(data, out, transformOutput={"outputAction": "appendRow", "appendRowFileName": "all.csv"}),
        SumPredictor(),
        shards=2,
    )
    assert lines(out / "all.csv") == [str(float(i + j)) for i in range(3) for j in range(5)]
    assert not list(out.glob("*.out"))
    summary_out = tmp_path / "summary"
    run_all(make_job(data, summary_out, transformOutput={"outputAction": "summaryOnly"}), SumPredictor())
    assert sorted(p.name for p in summary_out.iterdir()) == ["_kbt", "_manifest.json"]
    assert manifest(summary_out)["counts"]["records"] == 15


def test_parquet_split_by_row_groups_to_parquet(tmp_path: Path) -> None:
    data = tmp_path / "in"
    data.mkdir()
    frame = pd.DataFrame({"a": np.arange(1000), "b": np.arange(1000) * 0.5})
    pq.write_table(pa.Table.from_pandas(frame), data / "t.parquet", row_group_size=100)
    out, whole = tmp_path / "out", tmp_path / "whole"
    spec = {
        "transformInput": {"contentType": "application/x-parquet", "splitType": "None"},
        "dataProcessing": {"joinSource": "Input"},
    }
    run_all(make_job(data, out, **spec), SumPredictor(), shards=3, split=2000)
    run_all(make_job(data, whole, **spec), SumPredictor())
    assert manifest(out)["inputs"][0]["parts"] > 2
    result = pq.read_table(out / "t.parquet.out").to_pandas()
    assert list(result.columns) == ["a", "b", "prediction"]
    assert result["prediction"].tolist() == (frame["a"] + frame["b"]).tolist()
    assert pq.read_table(whole / "t.parquet.out").equals(pq.read_table(out / "t.parquet.out"))


def _png(value: int) -> bytes:
    from PIL import Image  # noqa: PLC0415 (heavy: only image test)

    buffer = io.BytesIO()
    Image.new("L", (4, 4), color=value).save(buffer, format="PNG")
    return buffer.getvalue()


def test_images_decode_and_corrupt_image_is_a_record_error(tmp_path: Path) -> None:
    data = tmp_path / "in"
    data.mkdir()
    for value in (10, 20):
        (data / f"img-{value}.png").write_bytes(_png(value))
    (data / "img-30.png").write_bytes(b"not an image")
    out = tmp_path / "out"
    job = make_job(
        data,
        out,
        transformInput={"contentType": "image/png", "splitType": "None"},
        model={"imagePreprocessing": {"colorMode": "L", "scale": 0.5, "layout": "NHW"}},
    )
    run_all(job, SumPredictor())
    assert lines(out / "img-10.png.out") == ["5.0"]
    assert lines(out / "img-20.png.out") == ["10.0"]
    assert (out / "img-30.png.out").read_bytes() == b""
    (error,) = [json.loads(line) for line in lines(out / "_errors/img-30.png.errors.jsonl")]
    assert "not a decodable image" in error["reason"]


def test_gzip_and_tfrecord_inputs(tmp_path: Path) -> None:
    data = tmp_path / "in"
    data.mkdir()
    (data / "x.csv.gz").write_bytes(gzip.compress(b"a,b\n1,2\n3,4\n"))
    out = tmp_path / "out"
    run_all(make_job(data, out, transformInput={"compressionType": "Gzip"}), SumPredictor())
    assert lines(out / "x.csv.gz.out") == ["3.0", "7.0"]
    tf_in = tmp_path / "tf"
    tf_in.mkdir()
    payloads = [b"a", b"bbb", b"cc"]
    (tf_in / "r.tfrecord").write_bytes(b"".join(tfrecord_frame(p) for p in payloads) + b"\x00" * 5)
    tf_out = tmp_path / "tf-out"
    run_all(
        make_job(
            tf_in, tf_out, transformInput={"contentType": "application/x-tfrecord", "splitType": "TFRecord"}
        ),
        SumPredictor(),
    )
    assert lines(tf_out / "r.tfrecord.out") == ["1", "3", "2"]
    (error,) = [json.loads(line) for line in lines(tf_out / "_errors/r.tfrecord.errors.jsonl")]
    assert "truncated TFRecord header" in error["reason"]


def test_concurrent_batches_keep_input_order(tmp_path: Path) -> None:
    data = tmp_path / "in"
    rows = [[i, 0] for i in range(300)]
    write_csv(data / "x.csv", rows, header=["a", "b"])
    out = tmp_path / "out"
    run_all(make_job(data, out, miniBatchSize=5, maxConcurrentTransforms=6), SumPredictor(delay=0.01))
    assert lines(out / "x.csv.out") == [str(float(i)) for i in range(300)]


def test_timeouts_are_retried_then_fail_the_batch(tmp_path: Path) -> None:
    data = tmp_path / "in"
    write_csv(data / "x.csv", [[1, 1], [2, 2]], header=["a", "b"])

    class SlowFirst(SumPredictor):
        def predict(self, batch: ModelInput) -> ModelOutput:
            self.calls += 1
            if self.calls == 1:
                time.sleep(3)
            return super().predict(batch)

    out = tmp_path / "out"
    retry = {"maxRetries": 1, "timeoutSeconds": 1}
    run_all(make_job(data, out, retrySettings=retry), SlowFirst())
    assert lines(out / "x.csv.out") == ["2.0", "4.0"]

    class Hangs(SumPredictor):
        def predict(self, batch: ModelInput) -> ModelOutput:
            time.sleep(2)
            return super().predict(batch)

    hung = tmp_path / "hung"
    run_all(make_job(data, hung, retrySettings={"maxRetries": 0, "timeoutSeconds": 1}), Hangs())
    errors = [json.loads(line) for line in lines(hung / "_errors/x.csv.errors.jsonl")]
    assert [e["record"] for e in errors] == [0, 1]
    assert all("did not return within 1 s" in e["reason"] for e in errors)


def test_rerun_skips_completed_items(tmp_path: Path) -> None:
    data = tmp_path / "in"
    for i in range(4):
        write_csv(data / f"f{i}.csv", [[i, 1]], header=["a", "b"])
    out = tmp_path / "out"
    job = make_job(data, out)
    run_all(job, SumPredictor())
    before = {p.name: p.read_bytes() for p in out.glob("*.out")}
    assert forget_items(job, {2}) == 1
    (out / "f2.csv.out").unlink()
    for marker in out.rglob("finalized.json"):
        marker.unlink()
    predictor = SumPredictor()
    run_all(job, predictor)
    assert predictor.calls == 1
    assert {p.name: p.read_bytes() for p in out.glob("*.out")} == before


def test_json_array_documents_and_csv_without_split_type(tmp_path: Path) -> None:
    data = tmp_path / "in"
    data.mkdir()
    (data / "doc.json").write_text('[{"a": 1, "b": 2}, {"a": 3, "b": 4}]')
    (data / "one.json").write_text('{"a": 10, "b": 1}')
    (data / "broken.json").write_text('{"a": ')
    out = tmp_path / "out"
    run_all(
        make_job(data, out, transformInput={"contentType": "application/json", "splitType": "None"}),
        SumPredictor(),
    )
    assert lines(out / "doc.json.out") == ["3.0", "7.0"]
    assert lines(out / "one.json.out") == ["11.0"]
    (error,) = [json.loads(line) for line in lines(out / "_errors/broken.json.errors.jsonl")]
    assert "not a JSON document" in error["reason"]
    csv_in = tmp_path / "csv"
    write_csv(csv_in / "x.csv", [[1, 2], [3, 4]], header=["a", "b"])
    csv_out = tmp_path / "csv-out"
    run_all(make_job(csv_in, csv_out, transformInput={"splitType": "None"}), SumPredictor())
    assert lines(csv_out / "x.csv.out") == ["3.0", "7.0"]


@pytest.mark.parametrize(
    ("first_row", "setting", "expected"),
    [
        (b"age,sex,thal", None, ["age", "sex", "thal"]),
        (b"63,1,fixed", None, None),  # any number: data (SageMaker's headerless CSV)
        (b"-1.5e3,abc", None, None),
        (b"63,1,fixed", True, ["63", "1", "fixed"]),
        (b"age,sex", False, None),
        (b'"a,b",c', None, ["a,b", "c"]),
    ],
)
def test_csv_header_detection(first_row: bytes, setting: bool | None, expected: list[str] | None) -> None:
    assert header_or_none(first_row, CsvOptions(header=setting)) == expected


@pytest.mark.parametrize("split", [None, 40])
def test_headerless_numeric_csv_scores_every_row_by_default(tmp_path: Path, split: int | None) -> None:
    data = tmp_path / "in"
    write_csv(data / "x.csv", [[i, 2 * i] for i in range(1, 21)])
    out = tmp_path / "out"
    run_all(make_job(data, out), SumPredictor(), shards=2 if split else 1, split=split)
    assert lines(out / "x.csv.out") == [str(float(3 * i)) for i in range(1, 21)]


class ScoresPredictor:
    """Three class scores per CSV row: the row's value picks the winning class."""

    device = "cpu"
    rows_independent = True

    def predict(self, batch: ModelInput) -> ModelOutput:
        assert batch.frame is not None
        winners = batch.frame.iloc[:, 0].astype(int).to_numpy() % 3
        scores = np.full((len(winners), 3), 0.1)
        scores[np.arange(len(winners)), winners] = 0.8
        return scores


def test_classify_and_include_source_in_append_row(tmp_path: Path) -> None:
    data = tmp_path / "in"
    write_csv(data / "a.csv", [[0], [1]], header=["v"])
    write_csv(data / "b.csv", [[2]], header=["v"])
    out = tmp_path / "out"
    job = make_job(
        data,
        out,
        transformOutput={"outputAction": "appendRow", "includeSource": True},
        model={"classify": {"topK": 1}},
    )
    run_all(job, ScoresPredictor())
    assert lines(out / "predictions.csv") == ["a.csv,0,0.8", "a.csv,1,0.8", "b.csv,2,0.8"]


def test_classify_top_k_with_labels_and_shape_errors() -> None:
    frame = top_classes(
        [[0.1, 0.7, 0.2], [0.5, 0.2, 0.3]], ClassifyOptions(topK=2, labels=["cat", "dog", "eel"])
    )
    assert frame.to_dict(orient="list") == {
        "class_1": ["dog", "cat"],
        "probability_1": [0.7, 0.5],
        "class_2": ["eel", "eel"],
        "probability_2": [0.2, 0.3],
    }
    with pytest.raises(ConfigError, match="one row of class scores per record"):
        top_classes([0.1, 0.2], ClassifyOptions())
    with pytest.raises(ConfigError, match="labels has 2 names but the model returns 3"):
        top_classes([[0.1, 0.7, 0.2]], ClassifyOptions(labels=["a", "b"]))


class BatchSizeRecorder(SumPredictor):
    """SumPredictor that remembers how many records each call got."""

    def __init__(self) -> None:
        super().__init__()
        self.sizes: list[int] = []

    def predict(self, batch: ModelInput) -> ModelOutput:
        self.sizes.append(len(batch))
        return super().predict(batch)


def test_small_objects_are_predicted_in_full_mini_batches_with_outputs_per_object(tmp_path: Path) -> None:
    data = tmp_path / "in"
    for i in range(25):
        write_csv(data / f"f{i:02d}.csv", [[i, 1]], header=["a", "b"])
    write_csv(data / "g.csv", [["x", "y"]], header=["other", "cols"])  # cannot stack with the rest
    out = tmp_path / "out"
    predictor = BatchSizeRecorder()
    predictor.rows_independent = False  # one call per mini-batch (sized calls: test_runner_callsize.py)
    run_all(make_job(data, out, miniBatchSize=10), predictor)
    assert predictor.sizes == [10, 10, 5, 1]
    assert [lines(out / f"f{i:02d}.csv.out") for i in range(25)] == [[f"{i + 1.0}"] for i in range(25)]
    assert len(list((out / "_errors").glob("g.csv*"))) == 1  # non-numeric: its own call failed, alone


def test_stacking_rules() -> None:
    def tensor_input(shape: tuple[int, ...]) -> ModelInput:
        return ModelInput(
            records=[Record("x", i, b"") for i in range(shape[0])], tensor=np.zeros(shape, np.float32)
        )

    inputs = [tensor_input((2, 4)), tensor_input((3, 4)), tensor_input((1, 5)), tensor_input((1, 4))]
    assert stack_runs(inputs) == [[0, 1], [2], [3]]
    stacked = concat_inputs(inputs[:2])
    assert stacked.tensor is not None and stacked.tensor.shape == (5, 4) and len(stacked.records) == 5


class Returns:
    """Returns the given values, one per record, in order."""

    device = "cpu"
    rows_independent = False

    def __init__(self, values: list[Any]) -> None:
        self.values = values

    def predict(self, batch: ModelInput) -> ModelOutput:
        assert batch.frame is not None
        return self.values[: len(batch.frame)]


@pytest.mark.parametrize(
    "values",
    [
        [1, 0, -7, 123456789012345678901234567890, 2.5, 1 / 3, -0.0, float("nan"), float("inf"), 1e300],
        [1, "a,b", 'say "hi"', None, True, 2.5, "", "x"],  # not only numbers: csv.writer's quoting
    ],
    ids=["numbers", "mixed"],
)
def test_csv_predictions_are_written_as_csv_writer_writes_them(tmp_path: Path, values: list[Any]) -> None:
    data, out = tmp_path / "in", tmp_path / "out"
    write_csv(data / "x.csv", [[i] for i in range(len(values))], header=["a"])
    run_all(make_job(data, out, miniBatchSize=len(values)), Returns(values))
    expected = io.StringIO()
    csv.writer(expected, lineterminator="\n").writerows([value] for value in values)
    assert (out / "x.csv.out").read_text() == expected.getvalue()


@pytest.mark.parametrize(
    ("concurrency", "remote", "decoded_in"),
    [(1, False, "MainThread"), (1, True, "kbt-model"), (2, False, "kbt-model")],
)
def test_one_model_call_at_a_time_runs_in_the_writing_thread_for_local_outputs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, concurrency: int, remote: bool, decoded_in: str
) -> None:
    threads: set[str] = set()
    decode = Decoder.decode

    def recording(self: Decoder, *args: Any) -> Any:
        threads.add(threading.current_thread().name.split("_")[0])
        return decode(self, *args)

    monkeypatch.setattr(Decoder, "decode", recording)
    monkeypatch.setattr(LocalStore, "remote", remote)  # as an S3 output store is
    data, out = tmp_path / "in", tmp_path / "out"
    write_csv(data / "x.csv", [[i, 1] for i in range(40)], header=["a", "b"])
    run_all(make_job(data, out, miniBatchSize=5, maxConcurrentTransforms=concurrency), SumPredictor())
    assert lines(out / "x.csv.out") == [str(float(i + 1)) for i in range(40)]
    assert threads == {decoded_in}


@pytest.mark.parametrize(
    ("content", "remote", "read_in"),
    [
        ("image/png", False, "MainThread"),
        ("image/png", True, "kbt-reader"),
        ("text/csv", False, "kbt-reader"),
    ],
)
def test_whole_objects_on_local_disk_are_read_by_the_writing_thread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, content: str, remote: bool, read_in: str
) -> None:
    threads: set[str] = set()
    batches = ItemReader.batches

    def recording(self: ItemReader, first_seq: int) -> Any:
        threads.add(threading.current_thread().name)
        yield from batches(self, first_seq)

    monkeypatch.setattr(ItemReader, "batches", recording)
    monkeypatch.setattr(LocalStore, "remote", remote)  # as an S3 input store is
    data, out = tmp_path / "in", tmp_path / "out"
    data.mkdir()
    for value in (10, 20):
        name = f"img-{value}.png" if content == "image/png" else f"rows-{value}.csv"
        (data / name).write_bytes(_png(value) if content == "image/png" else b"%d\n" % value)
    spec: dict[str, Any] = {"transformInput": {"contentType": content, "splitType": "Line"}}
    if content == "image/png":
        spec = {
            "transformInput": {"contentType": content, "splitType": "None"},
            "model": {"imagePreprocessing": {"colorMode": "L", "layout": "NHW"}},
        }
    run_all(make_job(data, out, **spec), SumPredictor())
    assert sorted(p.name for p in out.glob("*.out")) == (
        ["img-10.png.out", "img-20.png.out"]
        if content == "image/png"
        else ["rows-10.csv.out", "rows-20.csv.out"]
    )
    assert threads == {read_in}


def test_the_inline_executor_keeps_errors_for_the_caller_and_lets_interrupts_through() -> None:
    def fails(kind: type[BaseException]) -> None:
        raise kind("boom")

    executor = InlineExecutor()
    assert executor.submit(pow, 2, 5).result() == 32
    with pytest.raises(ValueError, match="boom"):
        executor.submit(fails, ValueError).result()
    with pytest.raises(KeyboardInterrupt):
        executor.submit(fails, KeyboardInterrupt)
