"""Measurements summarised: one row per contender and input, and kbt's ratio against each baseline."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

KBT = "kbt-run"
LABELS = {
    "kbt-run": "kbt run",
    "kbt-shards": "kbt shard x N (Job pods)",
    "pandas": "plain pandas script",
    "ray": "Ray Data map_batches (ray.init included)",
    "http": "HTTP /invocations (server start included)",
    "script": "minimal script",
}
KBT_LABELS = {"heart-example": "kbt run, example job.yaml as shipped"}
PLAIN_SCRIPTS = {  # what the `pandas` baseline is for each kind of input
    "mnist": "plain script (PIL decode, torch predict)",
    "resnet50": "plain script (PIL decode, torch predict)",
    "text": "plain script (pandas read, transformers generate)",
}


@dataclass(frozen=True)
class Row:
    workload: str
    variant: str
    contender: str
    runs: int
    median_s: float
    low_s: float
    high_s: float
    records_per_s: float
    rss_mb: float
    records_ok: bool
    error: str
    goal: float | None


def summarize(measurement: dict[str, Any]) -> Row:
    seconds: list[float] = measurement["seconds"]
    median = statistics.median(seconds) if seconds else math.nan
    return Row(
        workload=measurement["workload"],
        variant=measurement["variant"],
        contender=measurement["contender"],
        runs=len(seconds),
        median_s=median,
        low_s=min(seconds, default=math.nan),
        high_s=max(seconds, default=math.nan),
        records_per_s=measurement["expected_records"] / median if seconds else math.nan,
        rss_mb=max(measurement["peak_rss_mb"], default=math.nan),
        records_ok=measurement["records"] == measurement["expected_records"],
        error=measurement["error"],
        goal=measurement.get("goal"),
    )


def fmt(value: float | None, pattern: str = "{:.2f}") -> str:
    return "–" if value is None or math.isnan(value) else pattern.format(value)


def kbt_row(rows: Sequence[Row], row: Row) -> Row | None:
    return next(
        (r for r in rows if (r.workload, r.variant, r.contender) == (row.workload, row.variant, KBT)), None
    )


@dataclass(frozen=True)
class Ratio:
    """kbt against one baseline: `value` is a speed-up (baseline time ÷ kbt time) end to end and a
    time ratio (kbt time ÷ script time) for the first prediction; `bound` marks "<" / ">" values
    (kbt was stopped at the time limit)."""

    value: float | None
    bound: str = ""

    def text(self) -> str:
        return "–" if self.value is None else f"{self.bound}{self.value:.2f}x"


def ratio(rows: Sequence[Row], row: Row, timeout_s: float) -> Ratio:
    kbt = kbt_row(rows, row)
    if kbt is None or row.contender == KBT or not row.runs:
        return Ratio(None)
    first = row.workload == "first-prediction"
    if kbt.runs:
        return Ratio(kbt.median_s / row.median_s if first else row.median_s / kbt.median_s)
    if kbt.error.startswith("did not finish"):
        return Ratio(timeout_s / row.median_s, ">") if first else Ratio(row.median_s / timeout_s, "<")
    return Ratio(None)


def label(row: Row) -> str:
    if row.contender == KBT:
        return KBT_LABELS.get(row.workload, LABELS[KBT])
    if row.contender == "pandas":
        return PLAIN_SCRIPTS.get(row.workload, LABELS["pandas"])
    return LABELS.get(row.contender, row.contender)
