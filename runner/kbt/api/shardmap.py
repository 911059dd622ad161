"""Which shard a pod runs: the shard-map codec and ``shard_index(env)``.

A first-run Job runs every shard, completion index = shard index. A retry Job runs only some
shards: its completion index ``i`` stands for shard ``shard_map[i]``. The map travels to the pod as
env ``KBT_SHARD_MAP`` (comma-separated shard indexes, ``"3,7"``) and is kept on the Job as the
annotation ``kbt.dev/shard-map``, so the operator and the plugin read the same map back.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from kbt.api import podenv
from kbt.api.models import API_GROUP

SHARD_MAP_ANNOTATION = f"{API_GROUP}/shard-map"


class ShardMapError(ValueError):
    """A completion index or shard map that names no shard."""


def encode_shard_map(shards: Sequence[int]) -> str:
    """(3, 7) -> ``"3,7"``."""
    return ",".join(str(s) for s in shards)


def decode_shard_map(text: str) -> list[int]:
    """``"3,7"`` -> [3, 7]; ShardMapError for anything else (also for an empty map)."""
    try:
        shards = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise ShardMapError(f"invalid shard map {text!r}: expected comma-separated integers") from None
    if not shards:
        raise ShardMapError("invalid shard map: empty")
    return shards


def shard_for(completion: int, shard_map: Sequence[int] | None) -> int | None:
    """The shard completion index ``completion`` runs; None when the map has no such index."""
    if shard_map is None:
        return completion if completion >= 0 else None
    return shard_map[completion] if 0 <= completion < len(shard_map) else None


def shard_index(env: Mapping[str, str]) -> int:
    """The shard of a pod with environment ``env``: JOB_COMPLETION_INDEX through KBT_SHARD_MAP."""
    raw = env.get(podenv.COMPLETION_INDEX)
    if raw is None:
        raise ShardMapError(f"no shard index: pass --index or set {podenv.COMPLETION_INDEX}")
    text = env.get(podenv.SHARD_MAP, "")
    problem = f"{podenv.COMPLETION_INDEX}={raw!r} has no shard in {podenv.SHARD_MAP}={text!r}"
    try:
        completion = int(raw)
        shard_map = decode_shard_map(text) if text.strip(", ") else None
    except ValueError:
        raise ShardMapError(problem) from None
    shard = shard_for(completion, shard_map)
    if shard is None:
        raise ShardMapError(problem)
    return shard
