"""The job's output location and restart state, bound to its store.

``Layout`` turns the key layout of ``kbt.api.layout`` (relative to ``<out>``) into keys of the
output store. A work item's output (and its errors file) is written atomically before its
done-marker, so a shard killed at any point redoes at most the items without markers, with
identical bytes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from kbt.api import layout as keys
from kbt.api.models import AcceptType, OutputAction
from kbt.api.resolved import ResolvedJob
from kbt.runner.plan import Plan, WorkItem, fingerprint, make_plan, split_bytes_setting
from kbt.storage import ObjectNotFound, Store, directory_prefix, open_location


@dataclass(frozen=True)
class Layout:
    store: Store
    prefix: str  # the output folder ("" or ends with "/")
    fingerprint: str

    def plan_key(self) -> str:
        return self.prefix + keys.plan_key(self.fingerprint)

    def done_prefix(self) -> str:
        return self.prefix + keys.done_dir(self.fingerprint)

    def done_key(self, item: WorkItem) -> str:
        return self.prefix + keys.done_key(self.fingerprint, item.ordinal)

    def parts_prefix(self) -> str:
        return self.prefix + keys.parts_dir(self.fingerprint)

    def part_key(self, item: WorkItem) -> str:
        return self.prefix + keys.part_key(self.fingerprint, item.ordinal)

    def shard_prefix(self) -> str:
        return self.prefix + keys.shards_dir(self.fingerprint)

    def shard_done_key(self, shard: int) -> str:
        return self.prefix + keys.shard_done_key(self.fingerprint, shard)

    def finalized_key(self) -> str:
        return self.prefix + keys.finalized_key(self.fingerprint)

    def progress_key(self, shard: int) -> str:
        return self.prefix + keys.progress_file_key(shard)

    def log_key(self, shard: int) -> str:
        return self.prefix + keys.log_key(shard)

    def manifest_key(self) -> str:
        return self.prefix + keys.MANIFEST_NAME

    def output_key(self, name: str) -> str:
        return self.prefix + keys.output_key(name)

    def errors_key(self, item: WorkItem) -> str:
        return self.prefix + keys.errors_key(item.name, item.part if item.is_split else None)


def layout_for(job: ResolvedJob, shards: int, split_bytes: int | None = None) -> Layout:
    from kbt.runner.inputs import s3_settings

    store, prefix = open_location(job.spec.transformOutput.s3OutputPath, s3_settings(job.spec))
    return Layout(
        store, directory_prefix(prefix), fingerprint(job, shards, split_bytes or split_bytes_setting())
    )


def item_output_key(job: ResolvedJob, layout: Layout, item: WorkItem) -> str | None:
    """Where a work item writes: the final ``<name>.out``, a part for later composition, or
    nowhere (summaryOnly)."""
    action = job.spec.transformOutput.outputAction
    if action == OutputAction.SUMMARY_ONLY:
        return None
    if action == OutputAction.PER_INPUT and not item.is_split:
        return layout.output_key(item.name)
    return layout.part_key(item)


def is_parquet_output(job: ResolvedJob) -> bool:
    from kbt.runner.encode import output_type

    return output_type(job) == AcceptType.PARQUET


def load_or_create_plan(
    job: ResolvedJob, layout: Layout, shards: int, split_bytes: int | None = None
) -> Plan:
    """The stored plan, or a new one stored now (then read back, so racing shards converge)."""
    try:
        return Plan.from_json(layout.store.read(layout.plan_key()))
    except ObjectNotFound:
        pass
    plan = make_plan(job, shards, split_bytes)
    layout.store.put(layout.plan_key(), plan.to_json())
    return Plan.from_json(layout.store.read(layout.plan_key()))


def read_json(store: Store, key: str) -> Any:
    return json.loads(store.read(key))


def done_markers(layout: Layout) -> dict[int, dict[str, Any]]:
    """Every work item's done-marker, by ordinal."""
    markers = {}
    for info in layout.store.list_objects(layout.done_prefix()):
        marker = read_json(layout.store, info.key)
        markers[int(marker["ordinal"])] = marker
    return markers
