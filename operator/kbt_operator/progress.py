"""Read the shards' progress reports and aggregate them into the job's `status.progress`.

Each shard pod patches key ``shard-<shard index>`` of the job's progress ConfigMap with JSON::

    {"index": 3, "state": "running", "recordsProcessed": 1200, "recordsFailed": 2,
     "bytesProcessed": 52428800, "bytesTotal": 104857600, "recordsPerSecond": 310.5,
     "device": "cuda", "updatedAt": "2024-05-01T10:00:00Z"}

``percent`` is by bytes: finished shards count fully, reporting shards by their byte fraction,
silent shards as zero, each weighted by its bytesTotal (silent shards by the mean reported size).
It stays below 100 until every shard has completed.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

from kbt.api.models import Progress
from kbt_operator.labels import PROGRESS_KEY_PREFIX

RUNNING_STATE = "running"


@dataclass(frozen=True)
class ShardReport:
    index: int
    state: str
    records_processed: int = 0
    records_failed: int = 0
    bytes_processed: int = 0
    bytes_total: int = 0
    records_per_second: float = 0.0
    device: str = ""
    updated_at: str = ""

    @property
    def percent(self) -> int | None:
        """Bytes done of this shard's input, when the runner knows its size."""
        if self.bytes_total <= 0:
            return None
        return min(100, self.bytes_processed * 100 // self.bytes_total)


def _number(report: Mapping[str, object], field: str, kind: type[int] | type[float]) -> int | float:
    value = report.get(field, 0)
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ValueError(f"field {field!r} must be a non-negative number, got {value!r}")
    return kind(value)


def parse_report(key: str, text: str) -> ShardReport:
    """One ConfigMap entry; raises ValueError naming the key and the problem."""
    try:
        suffix = int(key.removeprefix(PROGRESS_KEY_PREFIX))
        report = json.loads(text)
        if not isinstance(report, dict):
            raise ValueError("expected a JSON object")
        index = report.get("index", suffix)
        if index != suffix:
            raise ValueError(f"index {index!r} does not match the key")
        return ShardReport(
            index=suffix,
            state=str(report.get("state") or "unknown"),
            records_processed=int(_number(report, "recordsProcessed", int)),
            records_failed=int(_number(report, "recordsFailed", int)),
            bytes_processed=int(_number(report, "bytesProcessed", int)),
            bytes_total=int(_number(report, "bytesTotal", int)),
            records_per_second=float(_number(report, "recordsPerSecond", float)),
            device=str(report.get("device") or ""),
            updated_at=str(report.get("updatedAt") or ""),
        )
    except ValueError as exc:
        raise ValueError(f"progress entry {key!r}: {exc}") from None


def parse_reports(data: Mapping[str, str]) -> tuple[dict[int, ShardReport], list[str]]:
    """All `shard-<n>` entries of the ConfigMap, plus one message per malformed entry."""
    reports: dict[int, ShardReport] = {}
    problems: list[str] = []
    for key, text in data.items():
        if not key.startswith(PROGRESS_KEY_PREFIX):
            continue
        try:
            report = parse_report(key, text)
        except ValueError as exc:
            problems.append(str(exc))
            continue
        reports[report.index] = report
    return reports, problems


def percent_done(reports: Mapping[int, ShardReport], total: int, completed: set[int]) -> int:
    if total <= 0:
        return 0
    if len(completed & set(range(total))) == total:
        return 100
    known = [r.bytes_total for r in reports.values() if r.bytes_total > 0]
    default_weight = sum(known) / len(known) if known else 1.0
    done = weight = 0.0
    for shard in range(total):
        report = reports.get(shard)
        size = report.bytes_total if report is not None and report.bytes_total > 0 else default_weight
        weight += size
        if shard in completed:
            done += size
        elif report is not None and report.bytes_total > 0:
            done += min(report.bytes_processed, report.bytes_total)
    return min(99, int(100 * done / weight))


def aggregate(reports: Mapping[int, ShardReport], total: int, completed: set[int]) -> Progress:
    """The job-wide progress; only running shards add to the rate."""
    in_range = [r for r in reports.values() if 0 <= r.index < total]
    rate = sum(r.records_per_second for r in in_range if r.state == RUNNING_STATE and r.index not in completed)
    return Progress(
        recordsProcessed=sum(r.records_processed for r in in_range),
        recordsFailed=sum(r.records_failed for r in in_range),
        bytesProcessed=sum(r.bytes_processed for r in in_range),
        bytesTotal=sum(r.bytes_total for r in in_range),
        recordsPerSecond=round(rate, 1),
        percent=percent_done(reports, total, completed),
    )
