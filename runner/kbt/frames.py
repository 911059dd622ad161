"""Whether a value is a pandas object, without importing pandas.

kbt imports pandas and pyarrow (~0.3 s) only inside the functions that build or read frames and
tables, never at module level: a job that needs neither (a PyTorch model on images, CSV or JSON
Lines output) does not pay for them, neither in ``kbt run`` before it forks its workers nor in a
worker. Annotations name their types under ``TYPE_CHECKING``. Code that only asks whether a value
is a frame asks here: a value can be a pandas object only once pandas has been imported.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any, TypeGuard

if TYPE_CHECKING:
    import pandas as pd


def is_frame(value: object) -> TypeGuard[pd.DataFrame]:
    """Whether ``value`` is a pandas DataFrame."""
    if "pandas" not in sys.modules:
        return False
    import pandas as pd  # noqa: PLC0415 (imported already; waits if another thread is importing it)

    return isinstance(value, pd.DataFrame)


def is_series(value: object) -> TypeGuard[pd.Series[Any]]:
    """Whether ``value`` is a pandas Series."""
    if "pandas" not in sys.modules:
        return False
    import pandas as pd  # noqa: PLC0415 (imported already; waits if another thread is importing it)

    return isinstance(value, pd.Series)
