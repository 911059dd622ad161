"""Normalising model outputs to one row per record, and SageMaker-style serialisation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from kbt.api.progress import ShardProgress
from kbt.flavors.base import BatchRejected
from kbt.runner.dataproc import apply_json, compile_filter, select_positions
from kbt.runner.encode import _csv_text, _dumps, normalize
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
