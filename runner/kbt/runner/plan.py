"""The shard plan: which work items exist and which shard processes each, deterministically.

Objects are sorted by key. An object larger than the split size (``KBT_SPLIT_SIZE_MB``, default
64 MiB) is split when its format allows: CSV at record boundaries found by a quote-aware scan
(quoted fields may hold newlines; RFC 4180 quotes are balanced outside fields, so a newline is a
record boundary exactly when the number of quotes before it is even); JSON Lines / text at byte
offsets aligned by the reader (a range owns the lines that *start* inside it); Parquet by row
groups. Gzip (``compressionType: Gzip``), RecordIO, TFRecord, images and JSON documents are
never split.

Work items are assigned to shards in order, balanced by bytes: item ``i`` goes to shard
``floor(N * (bytes before i + half of i) / total bytes)``, so each shard gets a contiguous run
of roughly ``1/N`` of the bytes. So that a few large objects still spread evenly, a splittable
object larger than the item size is cut at every shard boundary (``k * total bytes / N``) that
falls inside it, and each piece between those cuts into equal items of at most
``total bytes / (ITEMS_PER_SHARD * N)`` (never below ``MIN_BALANCED_SPLIT_BYTES``, never above
the split size): a 40 MB CSV on two shards becomes two 20 MB halves of three items each, one
half per shard, instead of five 8 MiB items split [0, 0, 1, 1, 1].

``useful_shards`` is how many shards ``kbt run`` plans by default: as many as asked (the CPUs)
while each shard still gets at least ``MIN_SHARD_BYTES`` and at least one work item.

The plan's content digest covers everything that decides the outputs: the job, its spec (less
``RUNTIME_FIELDS``; ``environment`` reaches the model, so it counts), the model spec and the
model's content (``kbt.runner.model_identity``), every input object's key, size and version
(ETag or modification time), the shard count and the split size; it is the fingerprint of the
job's first state (later ones chain it with the one they replace). The plan records the spec,
model and object versions it was made from, so a re-run can say what changed
(``kbt.runner.state``).
"""

from __future__ import annotations

import hashlib
import itertools
import json
from dataclasses import dataclass, field
from dataclasses import fields as dataclass_fields
from typing import Any

from kbt.api.resolved import ResolvedJob
from kbt.runner.compression import is_gzip
from kbt.runner.formats import Splitting, content_format
from kbt.runner.inputs import InputObject, list_inputs, s3_settings
from kbt.runner.model_identity import model_identity
from kbt.runner.parquet_io import parquet_row_group_ranges
from kbt.runner.splitting import csv_split_points
from kbt.settings import RunnerSettings
from kbt.storage import Store

MIB = 1024 * 1024
DEFAULT_SPLIT_BYTES = 64 * MIB
ITEMS_PER_SHARD = 4
MIN_BALANCED_SPLIT_BYTES = 8 * MIB
MIN_SHARD_BYTES = 4 * MIB  # less input than this per shard does not pay for another worker
PLAN_VERSION = 3  # 3: cuts at shard boundaries (items of version 2 plans cover other ranges)
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
    version: str = ""  # the object's version when planned (kbt.storage.ObjectInfo.version)

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
    spec: dict[str, Any] = field(default_factory=dict)  # the fingerprinted spec fields
    model: dict[str, Any] = field(default_factory=dict)  # model spec and content identity
    content: str = ""  # content_digest: equal digests = nothing that decides the outputs changed
    version: int = PLAN_VERSION

    def for_shard(self, shard: int) -> list[WorkItem]:
        return [item for item, owner in zip(self.items, self.assignment, strict=True) if owner == shard]

    def to_json(self) -> bytes:
        # Field by field, not dataclasses.asdict: that deep-copies every value of every item,
        # which costs a planner tenths of a second per 10,000 objects.
        fields = {name: getattr(self, name) for name in PLAN_FIELDS}
        fields["items"] = [{name: getattr(item, name) for name in ITEM_FIELDS} for item in self.items]
        return json.dumps(fields, sort_keys=True).encode()

    @classmethod
    def from_json(cls, data: bytes) -> Plan:
        raw = json.loads(data)
        items = [
            WorkItem(**{**item, "row_groups": tuple(item["row_groups"]) if item["row_groups"] else None})
            for item in raw.pop("items")
        ]
        return cls(items=items, **raw)


ITEM_FIELDS = tuple(f.name for f in dataclass_fields(WorkItem))
PLAN_FIELDS = tuple(f.name for f in dataclass_fields(Plan))


def split_bytes_setting() -> int:
    return max(1, int(RunnerSettings.from_env().split_size_mb * MIB))


def _digest(material: Any) -> str:
    return hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()[:16]


def job_identity(job: ResolvedJob) -> str:
    """The job object (namespace, name, uid): each has its own restart state."""
    return _digest([job.namespace, job.name, job.uid])


def spec_fields(job: ResolvedJob) -> dict[str, Any]:
    """The spec fields that can change what is written."""
    return job.spec.model_dump(mode="json", exclude=RUNTIME_FIELDS)


def job_key(job: ResolvedJob, shards: int, split_bytes: int) -> str:
    """What a shard can tell without any I/O: the job, its spec and model spec, shards, split."""
    return _digest(
        {
            "job": job_identity(job),
            "spec": spec_fields(job),
            "model": job.model.model_dump(mode="json"),
            "shards": shards,
            "split": split_bytes,
            "version": PLAN_VERSION,
        }
    )


def content_digest(key: str, model: dict[str, Any], items: list[WorkItem]) -> str:
    """``job_key`` plus the model's and the inputs' content."""
    objects = sorted({(item.key, item.size, item.version) for item in items})
    return _digest({"key": key, "model": model, "objects": objects})


def successor(content: str, previous: str) -> str:
    """The fingerprint of a state that replaces state ``previous``: never an earlier one's, so
    going back to an earlier spec or input does not find that state's stale done-markers."""
    return _digest([content, previous])


def cut_targets(size: int, split: int, boundaries: list[int]) -> list[int]:
    """Offsets (ascending, inside (0, size)) to cut an object of ``size`` bytes at: every shard
    boundary inside it, and each piece between those into equal parts of at most ``split``."""
    edges = [0, *(b for b in boundaries if 0 < b < size), size]
    targets: list[int] = []
    for a, b in itertools.pairwise(edges):
        parts = -(-(b - a) // split)
        targets.extend(a + (b - a) * k // parts for k in range(1, parts))
        targets.append(b)
    return sorted(set(targets) - {size})


def _shard_boundaries(offset: int, total: int, shards: int) -> list[int]:
    """The shard boundaries ``k * total / shards`` relative to an object starting at ``offset``."""
    return [-(-total * k // shards) - offset for k in range(1, shards)]


def _line_splittable(job: ResolvedJob) -> bool:
    transform = job.spec.transformInput
    fmt = content_format(transform.contentType, "transformInput.contentType")
    return not is_gzip(job) and fmt.splits_by_line(transform.splitType)


def _items_for(
    store: Store, job: ResolvedJob, obj: InputObject, split: int, first: int, *, boundaries: list[int]
) -> list[WorkItem]:
    transform = job.spec.transformInput
    fmt = content_format(transform.contentType, "transformInput.contentType")
    whole = [WorkItem(first, obj.key, obj.name, obj.size, weight=obj.size, version=obj.version)]
    if obj.size <= split or is_gzip(job):
        return whole
    if fmt.splitting == Splitting.ROW_GROUPS:
        groups = parquet_row_group_ranges(store, obj.key, split)
        return [
            WorkItem(
                first + i,
                obj.key,
                obj.name,
                obj.size,
                part=i,
                parts=len(groups),
                row_groups=(a, b),
                weight=w,
                version=obj.version,
            )
            for i, (a, b, w) in enumerate(groups)
        ]
    if not fmt.splits_by_line(transform.splitType):
        return whole
    targets = cut_targets(obj.size, split, boundaries)
    cuts = (
        csv_split_points(store, obj.key, obj.size, targets)
        if fmt.splitting == Splitting.CSV_RECORDS
        else targets
    )
    bounds = [0, *cuts, obj.size]
    ranges = [(a, b) for a, b in itertools.pairwise(bounds) if b > a]
    return [
        WorkItem(
            first + i,
            obj.key,
            obj.name,
            obj.size,
            start=a,
            end=b,
            part=i,
            parts=len(ranges),
            weight=b - a,
            version=obj.version,
        )
        for i, (a, b) in enumerate(ranges)
    ]


def balanced_split(split: int, sizes: list[int], shards: int) -> int:
    """The item size that gives each shard about ``ITEMS_PER_SHARD`` items (see the module docstring)."""
    per_item = -(-sum(sizes) // (ITEMS_PER_SHARD * max(1, shards)))
    return min(split, max(MIN_BALANCED_SPLIT_BYTES, per_item))


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


def useful_shards(job: ResolvedJob, wanted: int, split_bytes: int) -> int:
    """The most shards, up to ``wanted``, that each get ``MIN_SHARD_BYTES`` and a work item
    (estimated from the listing: Parquet objects count whole, CSV cuts at their targets)."""
    _, objects = list_inputs(job.spec)
    sizes = [obj.size for obj in objects]
    total = sum(sizes)
    splittable = _line_splittable(job)
    for shards in range(max(1, min(wanted, total // MIN_SHARD_BYTES)), 1, -1):
        cut = balanced_split(split_bytes, sizes, shards)
        weights: list[int] = []
        offset = 0
        for size in sizes:
            if splittable and size > cut:
                bounds = [0, *cut_targets(size, cut, _shard_boundaries(offset, total, shards)), size]
                weights.extend(b - a for a, b in itertools.pairwise(bounds))
            else:
                weights.append(size)
            offset += size
        if len(set(assign(weights, shards))) == shards:
            return shards
    return 1


def make_plan(job: ResolvedJob, shards: int, split_bytes: int | None = None) -> Plan:
    """List the inputs, identify the model and plan ``shards`` shards (no storage writes)."""
    split = split_bytes or split_bytes_setting()
    store, objects = list_inputs(job.spec)
    items: list[WorkItem] = []
    total = sum(obj.size for obj in objects)
    cut = balanced_split(split, [obj.size for obj in objects], shards)
    offset = 0
    for obj in objects:
        boundaries = _shard_boundaries(offset, total, shards)
        items.extend(_items_for(store, job, obj, cut, len(items), boundaries=boundaries))
        offset += obj.size
    model = {
        "spec": job.model.model_dump(mode="json"),
        "content": model_identity(job.model, s3_settings(job.spec)),
    }
    content = content_digest(job_key(job, shards, split), model, items)
    return Plan(
        fingerprint=content,
        shards=shards,
        split_bytes=split,
        input_store=store.uri(""),
        items=items,
        assignment=assign([item.weight for item in items], shards),
        spec=spec_fields(job),
        model=model,
        content=content,
    )
