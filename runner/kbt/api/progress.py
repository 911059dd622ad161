"""A shard's progress report: what the runner publishes and the operator, plugin and ``kbt run`` read.

The runner dumps one ``ShardProgress`` per shard as JSON (camelCase keys)::

    {"index": 3, "state": "running", "recordsProcessed": 1200, "recordsFailed": 2,
     "bytesProcessed": 52428800, "bytesTotal": 104857600, "recordsPerSecond": 310.5,
     "itemsDone": 4, "itemsTotal": 9, "device": "cpu", "startedAt": "...Z",
     "updatedAt": "...Z", "message": ""}

In a cluster it is the value of key ``shard-<index>`` of the job's progress ConfigMap; ``kbt run``
workers print it on stdout; every shard also keeps it at ``<out>/_kbt/progress/shard-NNNNN.json``.
Readers validate it with this model; fields a reader does not know are ignored, missing counters
are zero.
"""

from __future__ import annotations

import json
from typing import Literal

from pydantic import BaseModel, ConfigDict, NonNegativeFloat, NonNegativeInt, ValidationError
from pydantic.alias_generators import to_camel

PROGRESS_KEY_PREFIX = "shard-"  # ConfigMap key of shard i: shard-<i>

# The states a kbt runner reports; readers take any text (another runner version may add states).
ShardState = Literal["starting", "loading", "running", "finalizing", "completed", "failed", "stopped"]


class ShardProgress(BaseModel):
    """One shard's counters at ``updatedAt``; ``bytes*`` count input bytes of its work items."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, strict=True, frozen=True, extra="ignore"
    )
    index: NonNegativeInt
    state: str = "unknown"
    records_processed: NonNegativeInt = 0  # records with a prediction or an error, this run and earlier ones
    records_failed: NonNegativeInt = 0
    bytes_processed: NonNegativeInt = 0
    bytes_total: NonNegativeInt = 0
    records_per_second: NonNegativeFloat = 0.0  # this run only
    items_done: NonNegativeInt = 0
    items_total: NonNegativeInt = 0
    device: str = ""
    started_at: str = ""
    updated_at: str = ""
    message: str = ""  # the one-line reason once failed or stopped

    @property
    def percent(self) -> int | None:
        """Bytes done of this shard's input, when the runner knows its size."""
        if self.bytes_total <= 0:
            return None
        return min(100, self.bytes_processed * 100 // self.bytes_total)

    def to_json(self, indent: int | None = None) -> str:
        return self.model_dump_json(by_alias=True, indent=indent)

    @classmethod
    def from_json(cls, text: str | bytes) -> ShardProgress:
        """Parse one report; ValueError naming the first bad field."""
        return cls.from_data(json.loads(text))

    @classmethod
    def from_data(cls, data: object) -> ShardProgress:
        """Validate one decoded report; ValueError naming the first bad field."""
        if not isinstance(data, dict):
            raise ValueError("expected a JSON object")
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            error = exc.errors()[0]
            where = ".".join(str(part) for part in error["loc"])
            raise ValueError(f"field {where!r}: {error['msg']}, got {error.get('input')!r}") from None

    @classmethod
    def from_entry(cls, key: str, text: str) -> ShardProgress:
        """The report under ConfigMap key ``shard-<i>`` (its ``index`` defaults to, and must be, i)."""
        try:
            suffix = int(key.removeprefix(PROGRESS_KEY_PREFIX))
            data = json.loads(text)
            index = data.get("index", suffix) if isinstance(data, dict) else suffix
            if index != suffix:
                raise ValueError(f"index {index!r} does not match the key")
            return cls.from_data({**data, "index": suffix} if isinstance(data, dict) else data)
        except ValueError as exc:
            raise ValueError(f"progress entry {key!r}: {exc}") from None


def progress_key(shard: int) -> str:
    """The key of one shard's report inside the progress ConfigMap."""
    return f"{PROGRESS_KEY_PREFIX}{shard}"
