"""Decoding a model call's CSV mini-batches in one parse gives each mini-batch its own parse's frame."""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st
from test_runner_pipeline import make_job, run_all, write_csv

from kbt.api.models import BatchTransformJobSpec
from kbt.api.resolved import ResolvedJob
from kbt.flavors.base import ModelInput, ModelOutput, new_records
from kbt.runner.decode import Decoder, _forced, _parse_table
from kbt.runner.plan import WorkItem
from kbt.runner.reader import Batch

COLUMNS = ["a", "b", "c"]
# CSV fields pyarrow reads as null, int, float, bool, date, timestamp or string: mixed between
# mini-batches, they are where a call's parse and each mini-batch's could disagree.
FIELDS = st.sampled_from(
    [
        "",
        "NA",
        "nan",
        "1",
        "-7",
        "0",
        "2.5",
        "3.0",
        "1e3",
        "inf",
        "true",
        "False",
        "2020-01-02",
        "2020-01-02T03:04:05",
        "fixed",
        "normal",
        "x y",
        '"q,r"',
        "99999999999999999999",
    ]
)


def _decoder() -> Decoder:
    spec = BatchTransformJobSpec.model_validate(
        {
            "transformInput": {
                "contentType": "text/csv",
                "splitType": "Line",
                "dataSource": {"s3DataSource": {"s3Uri": "in/"}},
            },
            "transformOutput": {"s3OutputPath": "out/"},
            "transformResources": {"instanceType": "ml.m5.large"},
            "model": {"uri": "unused", "flavor": "mlflow"},
        }
    )
    assert spec.model is not None
    return Decoder(ResolvedJob(name="test", spec=spec, model=spec.model, model_ref="unused"))


def _batches(rows: list[list[str]], sizes: list[int]) -> list[Batch]:
    item = WorkItem(ordinal=0, key="f.csv", name="f.csv", size=1, weight=1)
    batches, start = [], 0
    for seq, size in enumerate(sizes):
        data = [",".join(row).encode() for row in rows[start : start + size]]
        batches.append(Batch(seq, item, new_records("f.csv", start, data), list(range(start, start + size))))
        start += size
    return batches


def _assert_like_each_parse(batches: list[Batch]) -> bool:
    """The call's frame is the mini-batches' own frames stacked, where the call is decoded at
    once; whether it was."""
    decoder = _decoder()
    call = decoder.decode_call(batches, COLUMNS)
    if call is None:
        return False
    alone = [decoder.decode(batch, COLUMNS) for batch in batches]
    assert call.model_input.frame is not None
    start = 0
    for own, part, batch in zip(alone, call.parts, batches, strict=True):
        assert own.positions == part.positions and not own.rejected
        assert part.model_input.records == batch.records
        assert own.model_input.frame is not None
        mine = call.model_input.frame.iloc[start : start + len(batch.records)].reset_index(drop=True)
        pd.testing.assert_frame_equal(mine, own.model_input.frame)  # same dtypes and values
        start += len(batch.records)
    stacked = pd.concat([own.model_input.frame for own in alone], ignore_index=True)
    pd.testing.assert_frame_equal(call.model_input.frame, stacked)
    assert call.model_input.records == [r for batch in batches for r in batch.records]
    return True


@st.composite
def _cases(draw: st.DrawFn) -> tuple[list[int], list[list[str]]]:
    """Mini-batch sizes and rows whose columns each draw from a few ``FIELDS`` (often one type)."""
    sizes = draw(st.lists(st.integers(1, 6), min_size=2, max_size=5))
    pools = [draw(st.lists(FIELDS, min_size=1, max_size=3, unique=True)) for _ in COLUMNS]
    rows = [[draw(st.sampled_from(pool)) for pool in pools] for _ in range(sum(sizes))]
    return sizes, rows


CASES = _cases()


@settings(max_examples=400, deadline=None)
@given(CASES)
def test_a_call_parsed_at_once_matches_each_mini_batch_parsed_alone(
    case: tuple[list[int], list[list[str]]],
) -> None:
    sizes, rows = case
    _assert_like_each_parse(_batches(rows, sizes))


def test_heart_like_rows_are_parsed_per_call() -> None:
    rows = [
        ["63", "2.3", "fixed"],
        ["67", "1.5", "normal"],
        ["41", "0", "reversible"],
        ["50", "0.4", "normal"],
    ]
    assert _assert_like_each_parse(_batches(rows, [2, 2]))


def test_a_mini_batch_that_would_type_a_column_differently_is_parsed_alone() -> None:
    decoder = _decoder()
    numeric_codes = _batches(
        [["1", "2.5", "normal"], ["2", "0.5", "fixed"], ["3", "1.5", "1"], ["4", "0.5", "2"]], [2, 2]
    )
    assert decoder.decode_call(numeric_codes, COLUMNS) is None  # `c`: strings, then ints
    integral = _batches([["1", "2.5", "a"], ["2", "1", "b"], ["3", "1", "c"]], [1, 2])
    assert decoder.decode_call(integral, COLUMNS) is None  # `b`: float, then ints
    with_null = _batches([["1", "2.5", "a"], ["", "0.5", "b"]], [1, 1])
    assert decoder.decode_call(with_null, COLUMNS) is None  # `a`: int64 alone, float64 with the null


class DtypeEcho:
    """Predicts each record's column dtypes: what a model would see of type inference."""

    device = "cpu"
    rows_independent = True

    def __init__(self) -> None:
        self.calls = 0
        self.lock = threading.Lock()

    def predict(self, batch: ModelInput) -> ModelOutput:
        with self.lock:
            self.calls += 1
        assert batch.frame is not None
        return ["/".join(str(dtype) for dtype in batch.frame.dtypes)] * len(batch)


def test_sized_calls_see_each_mini_batch_typed_as_its_own_parse(tmp_path: Path) -> None:
    rows = [[i, f"{i % 7}.5", ("normal", "fixed")[i % 2]] for i in range(2000)]
    for i in range(100, 120):  # one mini-batch reads `b` as int64 and `c` as int64 alone
        rows[i][1:] = [str(i % 3), str(i % 2 + 1)]
    rows[1500][0] = ""  # `a` gets a null in one mini-batch: float64 there, int64 elsewhere
    write_csv(tmp_path / "in" / "data.csv", rows, header=COLUMNS)
    outputs, calls = {}, {}
    for flavor in ("sklearn", "pytorch"):  # pytorch: one call per mini-batch, each parsed alone
        predictor = DtypeEcho()
        predictor.rows_independent = flavor == "sklearn"
        run_all(
            make_job(tmp_path / "in", tmp_path / flavor, miniBatchSize=20, model={"flavor": flavor}),
            predictor,
        )
        outputs[flavor] = (tmp_path / flavor / "data.csv.out").read_text().splitlines()
        calls[flavor] = predictor.calls
    assert outputs["sklearn"] == outputs["pytorch"]
    strings = str(pd.Series(["normal"]).dtype)  # object, or str from pandas 3 on
    assert outputs["sklearn"][100] == "int64/int64/int64"
    assert outputs["sklearn"][0] == f"int64/float64/{strings}"
    assert outputs["sklearn"][1500] == f"float64/float64/{strings}"
    assert calls["sklearn"] < calls["pytorch"] == 100


def test_a_column_forces_its_type_when_each_part_holds_a_forcing_value_first_or_later() -> None:
    starts = np.array([0, 2])
    assert _forced(pa.chunked_array([["normal", "1", "fixed", "2"]]), starts)  # each part's first value
    assert _forced(pa.chunked_array([["1", "normal", "2", "fixed"]]), starts)  # found by the full pass
    assert not _forced(pa.chunked_array([["normal", "fixed", "1", "2"]]), starts)  # the second part: ints
    assert _forced(pa.chunked_array([[1.0, 2.5, 0.5, 3.0]]), starts)
    assert not _forced(pa.chunked_array([[2.5, 0.5, 1.0, 3.0]]), starts)


def test_a_sigterm_during_a_parse_in_the_main_thread_leaves_the_parse_to_finish() -> None:
    """pyarrow cancels a main-thread read_csv on a signal that has a Python handler; a shard's
    SIGTERM handler stops it after the mini-batch instead (the parse runs in the main thread
    when model calls run inline)."""
    rows = 2_000_000
    text = b"".join(b"%d,%d.5,x%d\n" % (i, i, i % 97) for i in range(rows))
    received: list[int] = []
    previous = signal.signal(signal.SIGTERM, lambda signum, _: received.append(signum))
    timer = threading.Timer(0.05, os.kill, (os.getpid(), signal.SIGTERM))
    try:
        timer.start()
        table = _parse_table(text, rows, ["a", "b", "c"], ",")
        timer.join()
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert table.num_rows == rows and received == [signal.SIGTERM]
