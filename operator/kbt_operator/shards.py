"""Shard index sets of Indexed Jobs, mapped to shards through the Job's shard map.

Kubernetes reports Indexed Job indexes as interval strings (``"0-2,5,7-9"``). A retry Job runs
only some shards; the map from its completion indexes to shards (``kbt.api.shardmap``) is kept
on the Job as the annotation ``kbt.dev/shard-map``; a Job without it runs every shard with
completion index = shard index.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from kbt.api.shardmap import shard_for


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


def to_shards(local: Iterable[int], shard_map: Sequence[int]) -> set[int]:
    """Completion indexes of a Job -> shard indexes (indexes outside the map are dropped)."""
    return {shard for shard in (shard_for(i, shard_map) for i in local) if shard is not None}
