"""conform_frame: the MLflow signature's column types enforced on decoded frames, fast and exact."""

from __future__ import annotations

import pandas as pd
import pyarrow as pa
import pytest
from mlflow.types import ColSpec, DataType, Schema

from kbt.flavors.base import Record
from kbt.flavors.errors import RecordsRejected
from kbt.flavors.mlflow_schema import conform_frame, parse_schema

# kbt reads the schema from the JSON MLflow writes into MLmodel files.
COLUMNS = [ColSpec(DataType.long, "n"), ColSpec(DataType.double, "x"), ColSpec(DataType.string, "s")]
SCHEMA = parse_schema(Schema(COLUMNS).to_json())


def records(count: int) -> list[Record]:
    return [Record("in.csv", i, b"") for i in range(count)]


def test_typed_columns_from_pyarrow_pass_through_unchanged() -> None:
    table = pa.table({"n": [1, 2], "x": [0.5, 1.0], "s": ["a", None]})
    conformed = conform_frame(table.to_pandas(), SCHEMA, records(2))
    assert conformed["n"].dtype == "int64" and conformed["n"].tolist() == [1, 2]
    assert conformed["x"].dtype == "float64" and conformed["x"].tolist() == [0.5, 1.0]
    assert (
        conformed["s"].dtype == object and conformed["s"].iloc[0] == "a" and pd.isna(conformed["s"].iloc[1])
    )


def test_text_columns_are_converted_and_bad_values_name_their_record() -> None:
    frame = pd.DataFrame({"n": ["1", "2.5"], "x": ["0.5", "1e3"], "s": [3, "b"]})
    with pytest.raises(RecordsRejected) as caught:
        conform_frame(frame, SCHEMA, records(2))
    assert list(caught.value.problems) == [1]
    assert "'n'" in caught.value.problems[1] and "2.5" in caught.value.problems[1]
