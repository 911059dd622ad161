"""How many trials a fault suite runs, and the record of each trial for `bench/chaos_report.py`.

The normal test run uses the quick counts; `make chaos` sets ``KBT_CHAOS_FULL=1`` for the full
ones and ``KBT_CHAOS_RESULTS`` to a file that every trial appends one JSON line to.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Mapping
from dataclasses import asdict, dataclass

RESULTS_ENV = "KBT_CHAOS_RESULTS"
FULL_ENV = "KBT_CHAOS_FULL"


def trial_count(quick: int, full: int) -> int:
    """`full` under `make chaos`, `quick` in the normal test suite."""
    return full if os.environ.get(FULL_ENV) == "1" else quick


@dataclass(frozen=True)
class Trial:
    """The outcome of one fault-injection trial."""

    suite: str
    trial: int
    ok: bool
    lost: int = 0  # output records (or resources) missing compared with a fault-free run
    duplicated: int = 0  # output records (or resources) present more often than in a fault-free run
    detail: str = ""


def record(trial: Trial) -> None:
    """Append the trial to the results file when one is configured (several workers may append)."""
    path = os.environ.get(RESULTS_ENV)
    if not path:
        return
    line = json.dumps(asdict(trial), sort_keys=True) + "\n"
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


def line_differences(expected: Mapping[str, bytes], actual: Mapping[str, bytes]) -> tuple[int, int]:
    """(lost, duplicated) output lines of `actual` against `expected`, compared as multisets per object."""
    lost = duplicated = 0
    for key in expected.keys() | actual.keys():
        want = Counter(expected.get(key, b"").splitlines())
        got = Counter(actual.get(key, b"").splitlines())
        lost += sum((want - got).values())
        duplicated += sum((got - want).values())
    return lost, duplicated
