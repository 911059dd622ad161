"""A pipeline step that refuses categories never seen in training, naming column and value.

Shipped with the MLflow model (``code_paths``) so the model itself rejects dirty rows such as
``thal=1`` instead of one-hot encoding them to all zeros and predicting silently.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin


class UnknownCategoryError(ValueError):
    """A record holds a category value the model was not trained on."""


class KnownCategories(BaseEstimator, TransformerMixin):  # type: ignore[misc]
    """Learns each categorical column's values in fit(); transform() rejects any other value."""

    def __init__(self, columns: list[str]) -> None:
        self.columns = columns

    def fit(self, frame: pd.DataFrame, y: Any = None) -> KnownCategories:
        self.known_: dict[str, list[str]] = {
            column: sorted({_key(v) for v in frame[column]}) for column in self.columns
        }
        return self

    def transform(self, frame: pd.DataFrame) -> pd.DataFrame:
        problems: list[str] = []
        for column, known in self.known_.items():
            if column not in frame.columns:
                problems.append(f"column {column!r} is missing")
                continue
            unknown = {_key(value) for value in frame[column]} - set(known)
            problems.extend(
                f"column {column!r}: unknown category {value!r} (known: {', '.join(known)})"
                for value in sorted(unknown)
            )
        if problems:
            raise UnknownCategoryError("; ".join(problems))
        return frame


def _key(value: Any) -> str:
    """Compare categories as text so 1, 1.0 and '1' are one value whatever the CSV parser chose."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
