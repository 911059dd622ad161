"""SageMaker data processing: JSONPath input/output filters (jsonpath-ng) and the JSON join.

Rules from SageMaker's developer guide, "Associate Prediction Results with Input Records"
(batch-transform-data-processing). On CSV a row is treated as a JSON array ("Supported JSONPath
Operators"), so a filter selects columns by position: it is evaluated once on ``[0, 1, ..., n-1]``
and the matches are the kept column indexes (``$[1:]``, ``$[0,3]``, ``$[-1]``); an index outside
the row is an error for that record (FilterMismatch), never silently dropped. On JSON a filter is
evaluated on each record: one match gives its value, several give an object keyed by field name
(or a list when they have no names). A JSON join adds the prediction under ``SageMakerOutput``
to an object record; any other record (array, scalar) becomes ``{"SageMakerInput": record,
"SageMakerOutput": prediction}`` ("Example: Output Input Data and Inferences").
"""

from __future__ import annotations

from typing import Any

from jsonpath_ng import Child, Index, JSONPath, Root
from jsonpath_ng.exceptions import JsonPathLexerError, JsonPathParserError
from jsonpath_ng.ext.parser import parse

from kbt.runner.errors import ConfigError

JOIN_KEY = "SageMakerOutput"  # where a JSON join puts the prediction (SageMaker's name)
INPUT_KEY = "SageMakerInput"  # where a JSON join puts an input record that is not an object


class FilterMismatch(ValueError):
    """A filter matched nothing in a record, or named a column the record does not have."""


def compile_filter(expression: str | None, field: str) -> JSONPath | None:
    if expression is None or expression.strip() in ("", "$"):
        return None
    try:
        return parse(expression)
    except (JsonPathLexerError, JsonPathParserError, Exception) as exc:
        raise ConfigError(f"dataProcessing.{field}: invalid JSONPath {expression!r}: {exc}") from None


def column_positions(path: JSONPath | None, count: int) -> list[int]:
    """The positions of a ``count``-column row that ``path`` keeps (all when None).

    FilterMismatch when an index of ``path`` lies outside the row or nothing is selected.
    """
    if path is None:
        return list(range(count))
    outside = [i for i in _row_indexes(path) if not -count <= i < count]
    if outside:
        raise FilterMismatch(
            f"filter {path} names column {', '.join(map(str, outside))}, outside the record's {count} columns"
        )
    matches = [m.value for m in path.find(list(range(count)))]
    if len(matches) == 1 and isinstance(matches[0], list):
        matches = matches[0]
    positions = [m for m in matches if isinstance(m, int)]
    if not positions:
        raise FilterMismatch(f"filter {path} selects no column of a {count}-column record")
    return positions


def select_positions(path: JSONPath | None, count: int, field: str) -> list[int]:
    """``column_positions`` for a whole frame of ``count`` columns: a mismatch is a ConfigError."""
    try:
        return column_positions(path, count)
    except FilterMismatch as exc:
        raise ConfigError(f"dataProcessing.{field}: {exc}") from None


def _row_indexes(path: JSONPath) -> tuple[int, ...]:
    """The explicit indexes of a ``$[i, j, ...]`` filter (none for slices and other paths)."""
    if isinstance(path, Child) and isinstance(path.left, Root) and isinstance(path.right, Index):
        return tuple(path.right.indices)
    return ()


def apply_json(path: JSONPath | None, value: Any) -> Any:
    """``path`` evaluated on one JSON record; FilterMismatch when nothing matches."""
    if path is None:
        return value
    matches = path.find(value)
    if not matches:
        raise FilterMismatch(f"filter {path} matches nothing in the record")
    if len(matches) == 1:
        return matches[0].value
    names = [str(m.path) for m in matches]
    if all(isinstance(getattr(m.path, "fields", None), tuple) for m in matches) and len(set(names)) == len(
        names
    ):
        return {name: m.value for name, m in zip(names, matches, strict=True)}
    return [m.value for m in matches]


def join_json(record: Any, prediction: Any) -> dict[str, Any]:
    """An object record with ``SageMakerOutput`` added; any other record under ``SageMakerInput``."""
    base = dict(record) if isinstance(record, dict) else {INPUT_KEY: record}
    base[JOIN_KEY] = prediction
    return base
