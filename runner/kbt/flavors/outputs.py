"""Turn what a framework returns into one prediction row per record, checked against the batch."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from kbt.flavors.base import BatchRejected, ModelOutput

if TYPE_CHECKING:
    import pandas as pd


def expect_rows(output: ModelOutput, records: int, what: str) -> ModelOutput:
    """Return ``output`` if it has one entry per record, else raise naming both counts."""
    count = len(next(iter(output.values()))) if isinstance(output, dict) and output else len(output)
    if count != records:
        raise BatchRejected(f"{what} returned {count} predictions for {records} records")
    return output


def array_rows(values: np.ndarray, records: int, what: str) -> np.ndarray | list[Any]:
    """A model's array output as rows: 1-D and 2-D arrays as they are (a 2-D row has one column
    per output), higher-rank outputs as one nested list per record."""
    if values.ndim == 0:
        raise BatchRejected(f"{what} returned a scalar for {records} records")
    expect_rows(values, records, what)
    if values.dtype == np.float16 or str(values.dtype) == "bfloat16":
        values = values.astype(np.float32)
    return values if values.ndim <= 2 else [row.tolist() for row in values]


def named_arrays_frame(outputs: Mapping[str, np.ndarray], records: int, what: str) -> pd.DataFrame:
    """Several named outputs as one frame: a 1-D output is a column, an (N, k) output gives
    columns ``name_0 .. name_{k-1}``, higher ranks one nested list per record."""
    import pandas as pd

    columns: dict[str, Any] = {}
    for name, values in outputs.items():
        expect_rows(values, records, f"{what} output {name!r}")
        if values.ndim == 1:
            columns[name] = values
        elif values.ndim == 2:
            columns.update({f"{name}_{i}": values[:, i] for i in range(values.shape[1])})
        else:
            columns[name] = [row.tolist() for row in values]
    return pd.DataFrame(columns)


def jsonable(value: Any) -> Any:
    """Nested pipeline output with numpy scalars/arrays made plain Python (for JSON and CSV)."""
    if isinstance(value, dict):
        return {str(key): jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(item) for item in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value
