"""Whether a value is a pandas object, without importing pandas.

kbt imports pandas and pyarrow (~0.3 s) only inside the functions that build or read frames and
tables, never at module level: a job that needs neither (a PyTorch model on images, CSV or JSON
Lines output) does not pay for them, neither in ``kbt run`` before it forks its workers nor in a
worker. Annotations name their types under ``TYPE_CHECKING``. Code that only asks whether a value
is a frame asks here: a value can be a pandas object only once pandas has been imported.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any, TypeGuard, TypeVar

if TYPE_CHECKING:
    import pandas as pd


def _is_pandas(value: object, kind: str) -> bool:
    if "pandas" not in sys.modules:
        return False
    import pandas as pd  # noqa: PLC0415 (imported already; waits if another thread is importing it)

    return isinstance(value, getattr(pd, kind))


def is_frame(value: object) -> TypeGuard[pd.DataFrame]:
    """Whether ``value`` is a pandas DataFrame."""
    return _is_pandas(value, "DataFrame")


def is_series(value: object) -> TypeGuard[pd.Series[Any]]:
    """Whether ``value`` is a pandas Series."""
    return _is_pandas(value, "Series")


Pandas = TypeVar("Pandas", "pd.DataFrame", "pd.Series[Any]")


def concat(parts: list[Pandas]) -> Pandas:
    """``parts`` one after another, renumbered from 0 (they exist: pandas is imported already)."""
    import pandas as pd  # noqa: PLC0415 (imported already by whoever made the parts)

    return pd.concat(parts, ignore_index=True)
