"""SageMaker data-processing rules of kbt.runner.dataproc: column filters and the JSON join."""

from __future__ import annotations

import pytest

from kbt.runner.dataproc import FilterMismatch, column_positions, compile_filter, join_json, select_positions
from kbt.runner.errors import ConfigError


def test_an_index_outside_the_record_is_a_mismatch_not_dropped() -> None:
    path = compile_filter("$[0,5]", "outputFilter")
    with pytest.raises(FilterMismatch, match="names column 5, outside the record's 4 columns"):
        column_positions(path, 4)
    with pytest.raises(FilterMismatch, match="names column -5"):
        column_positions(compile_filter("$[-5]", "outputFilter"), 4)
    assert column_positions(compile_filter("$[0,-4]", "outputFilter"), 4) == [0, 0]
    assert column_positions(compile_filter("$[2:9]", "outputFilter"), 4) == [2, 3]  # slices clamp


def test_a_frame_wide_mismatch_is_a_config_error_naming_the_field() -> None:
    with pytest.raises(ConfigError, match=r"dataProcessing.inputFilter: filter \$.\[3\] names column 3"):
        select_positions(compile_filter("$[3]", "inputFilter"), 3, "inputFilter")


def test_json_join_keeps_objects_and_wraps_everything_else_under_sagemaker_input() -> None:
    assert join_json({"key": 1}, {"label": 1}) == {"key": 1, "SageMakerOutput": {"label": 1}}
    assert join_json([1, 2, 3], [1]) == {"SageMakerInput": [1, 2, 3], "SageMakerOutput": [1]}
    assert join_json("text", 0.5) == {"SageMakerInput": "text", "SageMakerOutput": 0.5}
    assert join_json(None, 1) == {"SageMakerInput": None, "SageMakerOutput": 1}
