"""Normalising model outputs to one row per record, and SageMaker-style serialisation."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st
from test_runner_pipeline import make_job

from kbt.api.progress import ShardProgress
from kbt.flavors.base import BatchRejected
from kbt.runner.dataproc import apply_json, compile_filter, select_positions
from kbt.runner.encode import SMALL_INT_RANGE, Encoder, Rows, _csv_text, _dumps, _small_ints, normalize
from kbt.runner.errors import ConfigError
from kbt.runner.progress import Reporter, ShardStats


def test_normalize_shapes() -> None:
    assert normalize(np.array([1, 2]), 2).values == [1, 2]
    assert normalize(np.array([[1, 2], [3, 4]]), 2).fields() == [[1, 2], [3, 4]]
    assert normalize(pd.Series([0.5, 1.5]), 2).values == [0.5, 1.5]
    assert normalize([{"label": "a"}, {"label": "b"}], 2).json_values() == [{"label": "a"}, {"label": "b"}]
    frame = normalize({"p": np.array([[0.1, 0.9], [0.7, 0.3]]), "c": np.array([1, 0])}, 2).frame
    assert frame is not None and list(frame.columns) == ["p_0", "p_1", "c"]
    rows = normalize(pd.DataFrame({"x": [1, 2]}, index=[5, 6]), 2)
    assert rows.json_values() == [{"x": 1}, {"x": 2}]
    with pytest.raises(BatchRejected, match="returned 3 predictions for 2 records"):
        normalize(np.zeros(3), 2)


def test_csv_and_json_serialisation() -> None:
    assert _csv_text([], [[1, "a,b"], [2.5, 'q"x']], "\n") == '1,"a,b"\n2.5,"q""x"\n'
    assert _csv_text([], [[1], [2]], "") == "12"
    assert _dumps({"v": float("nan"), "w": np.int64(3)}) == '{"v":null,"w":3}'


def test_filters() -> None:
    assert select_positions(compile_filter("$[1:]", "inputFilter"), 4, "inputFilter") == [1, 2, 3]
    assert select_positions(compile_filter("$[0,-1]", "outputFilter"), 4, "outputFilter") == [0, 3]
    assert select_positions(compile_filter("$", "inputFilter"), 2, "inputFilter") == [0, 1]
    assert apply_json(compile_filter("$.features", "inputFilter"), {"features": [1, 2]}) == [1, 2]
    with pytest.raises(ConfigError, match="invalid JSONPath"):
        compile_filter("$[[", "inputFilter")


def test_reporter_disables_a_failing_sink_and_keeps_the_others() -> None:
    class Broken:
        def publish(self, report: ShardProgress) -> None:
            raise OSError("ConfigMap API unreachable")

    class Recorder:
        def __init__(self) -> None:
            self.reports: list[ShardProgress] = []

        def publish(self, report: ShardProgress) -> None:
            self.reports.append(report)

    stats = ShardStats(index=4, records_processed=10, records_failed=1, bytes_total=100, bytes_done=40)
    recorder = Recorder()
    reporter = Reporter(stats, [Broken(), recorder], interval=60)
    reporter.publish()
    stats.state = "completed"
    reporter.publish()
    assert [r.state for r in recorder.reports] == ["starting", "completed"]
    report = recorder.reports[-1].model_dump(by_alias=True)
    assert {
        k: report[k] for k in ("index", "recordsProcessed", "recordsFailed", "bytesProcessed", "bytesTotal")
    } == {
        "index": 4,
        "recordsProcessed": 10,
        "recordsFailed": 1,
        "bytesProcessed": 40,
        "bytesTotal": 100,
    }


def _joined(values: list[Any], separator: str) -> bytes:
    return (separator.join(map(str, values)) + separator).encode()


SEPARATORS = pytest.mark.parametrize("separator", ["\n", ""], ids=["line", "none"])


@SEPARATORS
@pytest.mark.parametrize(
    "values",
    [
        [0, 1, 1, 0, 1],
        list(range(10)) * 3,
        [-3, -2, -1, 0, 1, 2, 3, 0, -3],
        [5, 12, 7, 10, 9, 11, 8, 6],  # mixed widths
        [10, 99, 42],  # one width, not from 0
        [7],
        [-(2**63), -(2**63) + 5],
        [2**63 - 1],
    ],
)
def test_small_ints_write_what_the_join_writes(values: list[int], separator: str) -> None:
    assert _small_ints(values, separator) == _joined(values, separator)


@SEPARATORS
@pytest.mark.parametrize(
    "values",
    [[], [10**20, 1], [2**63], [-(2**63) - 1], [0, SMALL_INT_RANGE], [-(2**63), 2**63 - 1]],
    ids=["empty", "huge", "uint64", "below-int64", "wide-range", "int64-extremes"],
)
def test_small_ints_leave_the_rest_to_the_join(values: list[int], separator: str) -> None:
    assert _small_ints(values, separator) is None


@given(st.lists(st.integers(-600, 600), min_size=1), st.sampled_from(["\n", ""]))
def test_small_ints_match_the_join(values: list[int], separator: str) -> None:
    small = _small_ints(values, separator)
    assert (
        small is None if max(values) - min(values) >= SMALL_INT_RANGE else small == _joined(values, separator)
    )


def _csv_encoder(separator: str) -> Encoder:
    assemble = "Line" if separator else "None"
    output = {"s3OutputPath": "/out", "accept": "text/csv", "assembleWith": assemble}
    return Encoder(make_job(Path("/in"), Path("/out"), transformOutput=output))


@SEPARATORS
@pytest.mark.parametrize(
    "values",
    [[1, 0, 1], [-1, 0, 12], [10**20, 3], [0, 5000], [1, 2.5, -0.0], [True, False]],
    ids=["labels", "mixed-widths", "huge", "wide-range", "floats", "bools"],
)
def test_csv_fast_path_output(values: list[Any], separator: str) -> None:
    out = _csv_encoder(separator)._csv(None, None, Rows(values=values))  # type: ignore[arg-type]
    assert out.data == _csv_text([], [[v] for v in values], separator).encode()
