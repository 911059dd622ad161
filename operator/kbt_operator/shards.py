"""Shard index sets and the shard map of retry Jobs.

Kubernetes reports Indexed Job indexes as interval strings (``"0-2,5,7-9"``). A retry Job runs
only some shards: its completion index ``i`` stands for shard ``shard_map[i]``. The map travels
to the runner as env ``KBT_SHARD_MAP`` (comma-separated shard indexes, ``"3,7"``) and is kept on
the Job as the annotation ``kbt.dev/shard-map`` so status derivation can read it back; a Job
without the annotation runs every shard with completion index = shard index.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from kbt.api.models import API_GROUP

SHARD_MAP_ANNOTATION = f"{API_GROUP}/shard-map"
SHARD_MAP_ENV = "KBT_SHARD_MAP"


def parse_indexes(text: str | None) -> set[int]:
    """`"0-2,5"` -> {0, 1, 2, 5}; empty or None -> empty set."""
    result: set[int] = set()
    for raw in (text or "").split(","):
        part = raw.strip()
        if not part:
            continue
        first, sep, last = part.partition("-")
        try:
            low = int(first)
            high = int(last) if sep else low
        except ValueError:
            raise ValueError(f"invalid index interval {part!r} in {text!r}") from None
        if high < low:
            raise ValueError(f"invalid index interval {part!r} in {text!r}")
        result.update(range(low, high + 1))
    return result


def format_indexes(indexes: Iterable[int]) -> str:
    """{0, 1, 2, 5} -> `"0-2,5"` (the Kubernetes form)."""
    ordered = sorted(set(indexes))
    parts: list[str] = []
    start = previous = None
    for index in ordered:
        if previous is not None and index == previous + 1:
            previous = index
            continue
        if start is not None:
            parts.append(str(start) if start == previous else f"{start}-{previous}")
        start = previous = index
    if start is not None:
        parts.append(str(start) if start == previous else f"{start}-{previous}")
    return ",".join(parts)


def encode_shard_map(shards: Sequence[int]) -> str:
    return ",".join(str(s) for s in shards)


def decode_shard_map(text: str) -> list[int]:
    try:
        shards = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise ValueError(f"invalid shard map {text!r}: expected comma-separated integers") from None
    if not shards:
        raise ValueError("invalid shard map: empty")
    return shards


def job_shard_map(job: Mapping[str, Any], total: int) -> list[int]:
    """The real shard of each completion index of `job` (identity for a first-run Job)."""
    annotations = (job.get("metadata") or {}).get("annotations") or {}
    text = annotations.get(SHARD_MAP_ANNOTATION)
    return decode_shard_map(text) if text else list(range(total))


def to_shards(local: Iterable[int], shard_map: Sequence[int]) -> set[int]:
    """Completion indexes of a Job -> shard indexes (indexes outside the map are dropped)."""
    return {shard_map[i] for i in local if 0 <= i < len(shard_map)}


def job_completed_shards(job: Mapping[str, Any], total: int) -> set[int]:
    """Shards finished when `job` is the latest: those it did not run plus those it completed."""
    shard_map = job_shard_map(job, total)
    done_before = set(range(total)) - set(shard_map)
    completed = parse_indexes((job.get("status") or {}).get("completedIndexes"))
    return done_before | to_shards(completed, shard_map)


def job_failed_shards(job: Mapping[str, Any], total: int) -> set[int]:
    failed = parse_indexes((job.get("status") or {}).get("failedIndexes"))
    return to_shards(failed, job_shard_map(job, total))
