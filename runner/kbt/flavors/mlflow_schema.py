"""Fit a mini-batch to an MLflow model signature's input schema, naming what does not fit.

A required column missing from the input is an ``InputSchemaError`` (no record can be scored);
values that cannot be converted to the column's type (text in a ``long`` column, a missing
value in an integer column, 2.5 for an ``integer``) reject just those records with
``RecordsRejected``. Columns come back converted to the schema's types, in schema order; extra
columns are dropped. Tensor schemas check and fit the per-record shape and cast the dtype.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
from mlflow.types import DataType, Schema, TensorSpec

from kbt.flavors.base import Record
from kbt.flavors.errors import InputSchemaError, RecordsRejected

WHAT = "the MLflow model"
TRUE_WORDS = frozenset({"true", "1", "yes"})
FALSE_WORDS = frozenset({"false", "0", "no"})

Converter = Callable[[pd.Series], tuple[pd.Series, pd.Series]]  # -> (converted, bad mask)


def _integers(dtype: type[np.integer[Any]]) -> Converter:
    def convert(values: pd.Series) -> tuple[pd.Series, pd.Series]:
        if pd.api.types.is_integer_dtype(values.dtype) and not isinstance(
            values.dtype, pd.api.extensions.ExtensionDtype
        ):
            return values.astype(dtype), pd.Series(False, index=values.index)
        numbers = pd.to_numeric(values, errors="coerce")
        bad = numbers.isna() | (numbers % 1 != 0)
        return numbers.where(~bad, 0).astype(dtype), bad

    return convert


def _floats(dtype: type[np.floating[Any]]) -> Converter:
    def convert(values: pd.Series) -> tuple[pd.Series, pd.Series]:
        if pd.api.types.is_numeric_dtype(values.dtype) and not isinstance(
            values.dtype, pd.api.extensions.ExtensionDtype
        ):
            return values.astype(dtype), pd.Series(False, index=values.index)
        numbers = pd.to_numeric(values, errors="coerce").astype(dtype)
        return numbers, numbers.isna() & values.notna()

    return convert


def _strings(values: pd.Series) -> tuple[pd.Series, pd.Series]:
    if pd.api.types.is_string_dtype(values.dtype) and values.dtype != object:
        converted = values.astype(object)  # a str column: missing values are its only non-strings
    else:
        converted = values.map(lambda v: v if v is None or isinstance(v, str) or pd.isna(v) else str(v))
    return converted.astype(object), pd.Series(False, index=values.index)


def _booleans(values: pd.Series) -> tuple[pd.Series, pd.Series]:
    def parse(value: Any) -> bool | None:
        if isinstance(value, bool | np.bool_):
            return bool(value)
        word = str(value).strip().lower()
        return True if word in TRUE_WORDS else False if word in FALSE_WORDS else None

    parsed = values.map(parse)
    bad = parsed.isna()
    return parsed.where(~bad, False).astype(bool), bad


def _datetimes(values: pd.Series) -> tuple[pd.Series, pd.Series]:
    parsed = pd.to_datetime(values, errors="coerce")
    return parsed, parsed.isna() & values.notna()


def _binary(values: pd.Series) -> tuple[pd.Series, pd.Series]:
    return values, ~values.map(lambda v: isinstance(v, bytes | bytearray))


CONVERTERS: dict[DataType, Converter] = {
    DataType.long: _integers(np.int64),
    DataType.integer: _integers(np.int32),
    DataType.double: _floats(np.float64),
    DataType.float: _floats(np.float32),
    DataType.string: _strings,
    DataType.boolean: _booleans,
    DataType.datetime: _datetimes,
    DataType.binary: _binary,
}


def _type_name(spec_type: Any) -> str:
    return str(spec_type.name if isinstance(spec_type, DataType) else spec_type)


def conform_frame(frame: pd.DataFrame, schema: Schema, records: list[Record]) -> pd.DataFrame:
    """The frame converted to a column schema, or an error naming the columns/records at fault."""
    specs = schema.inputs
    if not schema.has_input_names():
        if frame.shape[1] != len(specs):
            raise InputSchemaError(f"{WHAT} expects {len(specs)} columns, the input has {frame.shape[1]}")
        frame = frame.set_axis([str(i) for i in range(len(specs))], axis=1)
        names = [str(i) for i in range(len(specs))]
    else:
        names = [str(spec.name) for spec in specs]
    missing = [
        f"{name!r} ({_type_name(spec.type)})"
        for name, spec in zip(names, specs, strict=True)
        if spec.required and name not in frame.columns
    ]
    if missing:
        raise InputSchemaError(
            f"{WHAT} needs column(s) {', '.join(missing)} which the input lacks "
            f"(input columns: {', '.join(map(str, frame.columns))})"
        )
    problems: dict[int, list[str]] = {}
    columns: dict[str, pd.Series] = {}
    for name, spec in zip(names, specs, strict=True):
        if name not in frame.columns:
            continue
        original = frame[name].reset_index(drop=True)
        converter = CONVERTERS.get(spec.type) if isinstance(spec.type, DataType) else None
        if converter is None:  # arrays, objects, maps, Any: left to MLflow
            columns[name] = original
            continue
        converted, bad = converter(original)
        for position in np.flatnonzero(bad.to_numpy()):
            problems.setdefault(int(position), []).append(
                f"column {name!r} expects {_type_name(spec.type)}, got {original.iloc[position]!r}"
            )
        columns[name] = converted
    if problems:
        raise RecordsRejected(
            {
                position: f"{records[position].source} record {records[position].index}: "
                + "; ".join(reasons)
                for position, reasons in problems.items()
            }
        )
    return pd.DataFrame(columns)


def conform_tensor(values: np.ndarray, schema: Schema) -> np.ndarray:
    """The array reshaped/cast to a single-tensor schema, or an error naming expected vs actual."""
    spec = schema.inputs[0]
    assert isinstance(spec, TensorSpec)  # callers pass tensor schemas only
    expected = tuple(spec.shape[1:])
    if values.shape[1:] != expected and -1 not in expected:
        if int(np.prod(values.shape[1:])) != int(np.prod(expected)):
            raise InputSchemaError(
                f"{WHAT} expects per-record tensor shape {expected}, the input has {values.shape[1:]}"
            )
        values = values.reshape((values.shape[0], *expected))
    try:
        return values.astype(spec.type)
    except (TypeError, ValueError) as exc:
        raise InputSchemaError(
            f"{WHAT} expects {spec.type} tensors; cannot convert {values.dtype}: {exc}"
        ) from exc
