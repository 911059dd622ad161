"""Read the shards' progress reports and aggregate them into the job's `status.progress`.

Each shard pod patches key ``shard-<shard index>`` of the job's progress ConfigMap with its
``kbt.api.progress.ShardProgress`` as JSON; this module validates every entry with that model.

``percent`` is by bytes: finished shards count fully, reporting shards by their byte fraction,
silent shards as zero, each weighted by its bytesTotal (silent shards by the mean reported size).
It stays below 100 until every shard has completed.
"""

from __future__ import annotations

from collections.abc import Mapping

from kbt.api.models import Progress
from kbt.api.progress import PROGRESS_KEY_PREFIX, ShardProgress


def parse_reports(data: Mapping[str, str]) -> tuple[dict[int, ShardProgress], list[str]]:
    """All `shard-<n>` entries of the ConfigMap, plus one message per malformed entry."""
    reports: dict[int, ShardProgress] = {}
    problems: list[str] = []
    for key, text in data.items():
        if not key.startswith(PROGRESS_KEY_PREFIX):
            continue
        try:
            report = ShardProgress.from_entry(key, text)
        except ValueError as exc:
            problems.append(str(exc))
            continue
        reports[report.index] = report
    return reports, problems


def percent_done(reports: Mapping[int, ShardProgress], total: int, completed: set[int]) -> int:
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


def aggregate(reports: Mapping[int, ShardProgress], total: int, completed: set[int]) -> Progress:
    """The job-wide progress; only running shards add to the rate."""
    in_range = [r for r in reports.values() if 0 <= r.index < total]
    rate = sum(r.records_per_second for r in in_range if r.state == "running" and r.index not in completed)
    return Progress(
        recordsProcessed=sum(r.records_processed for r in in_range),
        recordsFailed=sum(r.records_failed for r in in_range),
        bytesProcessed=sum(r.bytes_processed for r in in_range),
        bytesTotal=sum(r.bytes_total for r in in_range),
        recordsPerSecond=round(rate, 1),
        percent=percent_done(reports, total, completed),
    )
