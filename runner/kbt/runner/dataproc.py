"""SageMaker data processing: JSONPath input/output filters (jsonpath-ng) and join helpers.

On CSV a row is treated as a JSON array, so a filter selects columns by position: it is
evaluated once on ``[0, 1, ..., n-1]`` and the matches are the kept column indexes (``$[1:]``,
``$[0,3]``, ``$[-1]``). On JSON a filter is evaluated on each record: one match gives its value,
several give an object keyed by field name (or a list when they have no names).
"""

from __future__ import annotations

from typing import Any

from jsonpath_ng import JSONPath
from jsonpath_ng.exceptions import JsonPathLexerError, JsonPathParserError
from jsonpath_ng.ext.parser import parse

from kbt.runner.errors import ConfigError

JOIN_KEY = "SageMakerOutput"  # where a JSON join puts the prediction (SageMaker's name)


class FilterMismatch(ValueError):
    """A JSON filter matched nothing in a record."""


def compile_filter(expression: str | None, field: str) -> JSONPath | None:
    if expression is None or expression.strip() in ("", "$"):
        return None
    try:
        return parse(expression)
    except (JsonPathLexerError, JsonPathParserError, Exception) as exc:
        raise ConfigError(f"dataProcessing.{field}: invalid JSONPath {expression!r}: {exc}") from None


def select_positions(path: JSONPath | None, count: int, field: str) -> list[int]:
    """The positions of a ``count``-column row that ``path`` keeps (all when None)."""
    if path is None:
        return list(range(count))
    matches = [m.value for m in path.find(list(range(count)))]
    if len(matches) == 1 and isinstance(matches[0], list):
        matches = matches[0]
    positions = [m for m in matches if isinstance(m, int)]
    if not positions:
        raise ConfigError(f"dataProcessing.{field} {path} selects no column of a {count}-column row")
    return positions


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


def join_json(record: Any, prediction: Any) -> Any:
    """A JSON input record with the prediction added (non-object records are wrapped)."""
    base = dict(record) if isinstance(record, dict) else {"input": record}
    base[JOIN_KEY] = prediction
    return base
