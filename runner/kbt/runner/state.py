"""Where a job keeps its outputs and its restart state under the output prefix.

Layout (``<out>`` = transformOutput.s3OutputPath)::

    <out>/<name>.out                      perInput output of input object <name>
    <out>/<appendRowFileName>             appendRow output (every row, input order)
    <out>/_manifest.json                  job manifest, written by finalization
    <out>/_errors/<name>[.part-NNNNN].errors.jsonl   rejected records of one work item
    <out>/_kbt/progress/shard-NNNNN.json  progress reports
    <out>/_kbt/logs/shard-NNNNN.log       archived shard logs
    <out>/_kbt/state/<fp>/plan.json       the shard plan (fp = job fingerprint)
    <out>/_kbt/state/<fp>/done/NNNNNNNN.json   done-marker of work item NNNNNNNN
    <out>/_kbt/state/<fp>/parts/NNNNNNNN.out   output part of a split / appendRow item
    <out>/_kbt/state/<fp>/shards/shard-NNNNN.json   done-marker of a shard (its totals)
    <out>/_kbt/state/<fp>/finalized.json  written once finalization has completed

Names come from object keys and ManifestFile entries, which may hold ``.`` and ``..`` segments;
such segments are written as ``%2E`` and ``%2E%2E`` so that every key stays under ``<out>``.

A work item's output (and its errors file) is written atomically before its done-marker, so a
shard killed at any point redoes at most the items without markers, with identical bytes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from kbt.api.models import AcceptType, OutputAction
from kbt.resolved import ResolvedJob
from kbt.runner.plan import Plan, WorkItem, fingerprint, make_plan, split_bytes_setting
from kbt.runner.storage import ObjectNotFound, Store, directory_prefix, open_location

ERRORS_DIR = "_errors/"
KBT_DIR = "_kbt/"
MANIFEST_NAME = "_manifest.json"


_ESCAPED_SEGMENTS = {".": "%2E", "..": "%2E%2E"}


def contained(name: str) -> str:
    """``name`` with its ``.``/``..`` segments escaped, so ``prefix + name`` stays under prefix."""
    if "." not in name:
        return name
    return "/".join(_ESCAPED_SEGMENTS.get(segment, segment) for segment in name.split("/"))


@dataclass(frozen=True)
class Layout:
    store: Store
    prefix: str  # the output folder ("" or ends with "/")
    fingerprint: str

    @property
    def state(self) -> str:
        return f"{self.prefix}{KBT_DIR}state/{self.fingerprint}/"

    def plan_key(self) -> str:
        return self.state + "plan.json"

    def done_prefix(self) -> str:
        return self.state + "done/"

    def done_key(self, item: WorkItem) -> str:
        return f"{self.done_prefix()}{item.ordinal:08d}.json"

    def part_key(self, item: WorkItem) -> str:
        return f"{self.state}parts/{item.ordinal:08d}.out"

    def shard_prefix(self) -> str:
        return self.state + "shards/"

    def shard_done_key(self, shard: int) -> str:
        return f"{self.shard_prefix()}shard-{shard:05d}.json"

    def finalized_key(self) -> str:
        return self.state + "finalized.json"

    def progress_key(self, shard: int) -> str:
        return f"{self.prefix}{KBT_DIR}progress/shard-{shard:05d}.json"

    def log_key(self, shard: int) -> str:
        return f"{self.prefix}{KBT_DIR}logs/shard-{shard:05d}.log"

    def manifest_key(self) -> str:
        return self.prefix + MANIFEST_NAME

    def output_key(self, name: str) -> str:
        return f"{self.prefix}{contained(name)}.out"

    def errors_key(self, item: WorkItem) -> str:
        suffix = f".part-{item.part:05d}" if item.is_split else ""
        return f"{self.prefix}{ERRORS_DIR}{contained(item.name)}{suffix}.errors.jsonl"


def layout_for(job: ResolvedJob, shards: int, split_bytes: int | None = None) -> Layout:
    from kbt.runner.inputs import s3_settings

    store, prefix = open_location(job.spec.transformOutput.s3OutputPath, s3_settings(job.spec))
    return Layout(
        store, directory_prefix(prefix), fingerprint(job, shards, split_bytes or split_bytes_setting())
    )


def item_output_key(job: ResolvedJob, layout: Layout, item: WorkItem) -> str | None:
    """Where a work item writes: the final ``<name>.out``, a part for later composition, or
    nowhere (summaryOnly)."""
    action = OutputAction(job.spec.transformOutput.outputAction)
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
