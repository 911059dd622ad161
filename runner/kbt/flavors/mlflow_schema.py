"""Fit a mini-batch to an MLflow model signature's input schema, naming what does not fit.

A required column missing from the input is an ``InputSchemaError`` (no record can be scored);
values that cannot be converted to the column's type (text in a ``long`` column, a missing
value in an integer column, 2.5 for an ``integer``) reject just those records with
``RecordsRejected``. Columns come back converted to the schema's types, in schema order; extra
columns are dropped. Tensor schemas check and fit the per-record shape and cast the dtype.

The schema is read from the MLmodel file's ``signature.inputs`` JSON (``input_schema``), without
importing mlflow: the same JSON ``mlflow.types.Schema.to_json`` writes.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from kbt.flavors.base import Record
from kbt.flavors.errors import InputSchemaError, RecordsRejected

WHAT = "the MLflow model"
TRUE_WORDS = frozenset({"true", "1", "yes"})
FALSE_WORDS = frozenset({"false", "0", "no"})

Converter = Callable[[pd.Series], tuple[pd.Series, pd.Series]]  # -> (converted, bad mask)


@dataclass(frozen=True)
class ColumnSpec:
    """One column of a column schema; ``type`` is MLflow's type name ("long", "string", "array", ...)."""

    name: str | None
    type: str
    required: bool = True


@dataclass(frozen=True)
class TensorSpec:
    """One tensor of a tensor schema: numpy dtype and shape, -1 for any size."""

    name: str | None
    type: np.dtype[Any]
    shape: tuple[int, ...]


@dataclass(frozen=True)
class Schema:
    """An MLflow signature's input schema: all columns or all tensors."""

    inputs: tuple[ColumnSpec | TensorSpec, ...]  # all of one kind

    def is_tensor_spec(self) -> bool:
        return bool(self.inputs) and isinstance(self.inputs[0], TensorSpec)

    def has_input_names(self) -> bool:
        return bool(self.inputs) and all(spec.name is not None for spec in self.inputs)

    def input_names(self) -> list[str | int]:
        return [spec.name if spec.name is not None else i for i, spec in enumerate(self.inputs)]

    def only_simple_columns(self) -> bool:
        """True when kbt converts every column itself (no arrays, objects, maps or Any)."""
        return all(isinstance(spec, ColumnSpec) and spec.type in CONVERTERS for spec in self.inputs)


def parse_schema(text: str) -> Schema:
    """The schema of an MLmodel ``signature.inputs`` JSON string."""
    entries: list[dict[str, Any]] = json.loads(text)
    if entries and all(entry.get("type") == "tensor" for entry in entries):
        return Schema(
            tuple(
                TensorSpec(
                    entry.get("name"),
                    np.dtype(entry["tensor-spec"]["dtype"]),
                    tuple(int(size) for size in entry["tensor-spec"]["shape"]),
                )
                for entry in entries
            )
        )
    return Schema(
        tuple(
            ColumnSpec(entry.get("name"), str(entry.get("type")), bool(entry.get("required", True)))
            for entry in entries
        )
    )


def input_schema(mlmodel: dict[str, Any]) -> Schema | None:
    """The input schema of a parsed MLmodel file, or None when it has no signature inputs."""
    inputs = (mlmodel.get("signature") or {}).get("inputs")
    return parse_schema(inputs) if inputs else None


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


CONVERTERS: dict[str, Converter] = {
    "long": _integers(np.int64),
    "integer": _integers(np.int32),
    "double": _floats(np.float64),
    "float": _floats(np.float32),
    "string": _strings,
    "boolean": _booleans,
    "datetime": _datetimes,
    "binary": _binary,
}


def conform_frame(frame: pd.DataFrame, schema: Schema, records: Sequence[Record]) -> pd.DataFrame:
    """The frame converted to a column schema, or an error naming the columns/records at fault."""
    specs = [spec for spec in schema.inputs if isinstance(spec, ColumnSpec)]
    if not schema.has_input_names():
        if frame.shape[1] != len(specs):
            raise InputSchemaError(f"{WHAT} expects {len(specs)} columns, the input has {frame.shape[1]}")
        frame = frame.set_axis([str(i) for i in range(len(specs))], axis=1)
        names = [str(i) for i in range(len(specs))]
    else:
        names = [str(spec.name) for spec in specs]
    missing = [
        f"{name!r} ({spec.type})"
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
        converter = CONVERTERS.get(spec.type)
        if converter is None:  # arrays, objects, maps, Any: left to MLflow
            columns[name] = original
            continue
        converted, bad = converter(original)
        for position in np.flatnonzero(bad.to_numpy()):
            problems.setdefault(int(position), []).append(
                f"column {name!r} expects {spec.type}, got {original.iloc[position]!r}"
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
