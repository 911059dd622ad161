"""The shard plan: which work items exist and which shard processes each, deterministically.

Objects are sorted by key. An object larger than the split size (``KBT_SPLIT_SIZE_MB``, default
64 MiB) is split when its format allows: CSV at record boundaries found by a quote-aware scan
(quoted fields may hold newlines; RFC 4180 quotes are balanced outside fields, so a newline is a
record boundary exactly when the number of quotes before it is even); JSON Lines / text at byte
offsets aligned by the reader (a range owns the lines that *start* inside it); Parquet by row
groups. Gzip, RecordIO, TFRecord, images and JSON documents are never split.

Work items are assigned to shards in order, balanced by bytes: item ``i`` goes to shard
``floor(N * (bytes before i + half of i) / total bytes)``, so each shard gets a contiguous run
of roughly ``1/N`` of the bytes. The plan is stored at ``_kbt/state/<fingerprint>/plan.json``
under the output prefix by whichever process plans first; every other shard reuses it, so all
shards (and reruns) agree even if the input listing changes during the job.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from dataclasses import asdict, dataclass, field

from kbt.api.models import CompressionType
from kbt.api.resolved import ResolvedJob
from kbt.runner.formats import Splitting, content_format
from kbt.runner.inputs import InputObject, list_inputs
from kbt.runner.parquet_io import parquet_row_group_ranges
from kbt.runner.splitting import csv_split_points
from kbt.settings import RunnerSettings
from kbt.storage import Store

MIB = 1024 * 1024
DEFAULT_SPLIT_BYTES = 64 * MIB
PLAN_VERSION = 1
# Spec fields that cannot change what is written; everything else is part of the fingerprint.
RUNTIME_FIELDS = {
    "stop",
    "suspend",
    "retryFailedShards",
    "podOverrides",
    "backoffLimitPerIndex",
    "maxFailedIndexes",
    "activeDeadlineSeconds",
    "queueName",
    "tags",
    "transformResources",
    "shardCount",
    "maxConcurrentTransforms",
    "retrySettings",
    "environment",
    "sageMakerEndpoint",
}


@dataclass(frozen=True)
class WorkItem:
    """A unit of work with its own output: a whole object, a byte range, or row groups."""

    ordinal: int
    key: str
    name: str
    size: int
    start: int = 0
    end: int | None = None  # exclusive; None = to the end of the object
    part: int = 0
    parts: int = 1
    row_groups: tuple[int, int] | None = None  # Parquet [first, last)
    weight: int = 0  # bytes this item accounts for (progress, balancing)

    @property
    def is_split(self) -> bool:
        return self.parts > 1

    @property
    def label(self) -> str:
        return self.name if not self.is_split else f"{self.name}[part {self.part + 1}/{self.parts}]"


@dataclass
class Plan:
    fingerprint: str
    shards: int
    split_bytes: int
    input_store: str
    items: list[WorkItem] = field(default_factory=list)
    assignment: list[int] = field(default_factory=list)
    version: int = PLAN_VERSION

    def for_shard(self, shard: int) -> list[WorkItem]:
        return [item for item, owner in zip(self.items, self.assignment, strict=True) if owner == shard]

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), sort_keys=True).encode()

    @classmethod
    def from_json(cls, data: bytes) -> Plan:
        raw = json.loads(data)
        items = [
            WorkItem(**{**item, "row_groups": tuple(item["row_groups"]) if item["row_groups"] else None})
            for item in raw.pop("items")
        ]
        return cls(items=items, **raw)


def split_bytes_setting() -> int:
    return max(1, int(RunnerSettings.from_env().split_size_mb * MIB))


def fingerprint(job: ResolvedJob, shards: int, split_bytes: int) -> str:
    """Identifies one job's output state: same spec, model, shards and split size = same state."""
    spec = job.spec.model_dump(mode="json", exclude=RUNTIME_FIELDS)
    material = {
        "job": [job.namespace, job.name, job.uid],
        "spec": spec,
        "model": job.model.model_dump(mode="json"),
        "shards": shards,
        "split": split_bytes,
        "version": PLAN_VERSION,
    }
    return hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()[:16]


def is_gzip(job: ResolvedJob, key: str) -> bool:
    return job.spec.transformInput.compressionType == CompressionType.GZIP or key.endswith(".gz")


def _items_for(store: Store, job: ResolvedJob, obj: InputObject, split: int, first: int) -> list[WorkItem]:
    transform = job.spec.transformInput
    fmt = content_format(transform.contentType, "transformInput.contentType")
    whole = [WorkItem(first, obj.key, obj.name, obj.size, weight=obj.size)]
    if obj.size <= split or is_gzip(job, obj.key):
        return whole
    if fmt.splitting == Splitting.ROW_GROUPS:
        groups = parquet_row_group_ranges(store, obj.key, split)
        return [
            WorkItem(
                first + i, obj.key, obj.name, obj.size, part=i, parts=len(groups), row_groups=(a, b), weight=w
            )
            for i, (a, b, w) in enumerate(groups)
        ]
    if not fmt.splits_by_line(transform.splitType):
        return whole
    if fmt.splitting == Splitting.CSV_RECORDS:
        cuts = csv_split_points(store, obj.key, obj.size, split)
    else:
        cuts = list(range(split, obj.size, split))
    bounds = [0, *cuts, obj.size]
    ranges = [(a, b) for a, b in itertools.pairwise(bounds) if b > a]
    return [
        WorkItem(
            first + i, obj.key, obj.name, obj.size, start=a, end=b, part=i, parts=len(ranges), weight=b - a
        )
        for i, (a, b) in enumerate(ranges)
    ]


def assign(weights: list[int], shards: int) -> list[int]:
    """Shard of each item: contiguous runs balanced by bytes (see the module docstring)."""
    total = sum(weights)
    owners = []
    before = 0
    for position, weight in enumerate(weights):
        if total > 0:
            owner = (shards * (2 * before + weight)) // (2 * total)
        else:
            owner = position * shards // max(1, len(weights))
        owners.append(min(shards - 1, owner))
        before += weight
    return owners


def make_plan(job: ResolvedJob, shards: int, split_bytes: int | None = None) -> Plan:
    """List the inputs and plan ``shards`` shards over them (no storage writes)."""
    split = split_bytes or split_bytes_setting()
    store, objects = list_inputs(job.spec)
    items: list[WorkItem] = []
    for obj in objects:
        items.extend(_items_for(store, job, obj, split, len(items)))
    return Plan(
        fingerprint=fingerprint(job, shards, split),
        shards=shards,
        split_bytes=split,
        input_store=store.uri(""),
        items=items,
        assignment=assign([item.weight for item in items], shards),
    )
