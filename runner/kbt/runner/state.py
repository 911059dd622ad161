"""The job's output location and restart state, bound to its store.

``Layout`` turns the key layout of ``kbt.api.layout`` (relative to ``<out>``) into keys of the
output store. A work item's output (and its errors file) is written atomically before its
done-marker (``kbt.runner.done``), so a shard killed at any point redoes at most the items
without markers, with identical bytes.

Each job object points at the state it runs under (``current-<job>.json``). A shard reuses it
while its spec is unchanged; ``kbt run`` (and a shard whose spec changed) plans afresh: when the
new plan's fingerprint differs (spec, model or inputs changed), ``current_plan`` says what
changed and starts a new state, carrying over only the done-markers of whole objects written
as ``<name>.out`` whose object is unchanged, when the spec and the model are unchanged too.
Everything else is redone (parts of appendRow and split outputs are gone once finalized).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from typing import Any

from kbt.api import layout as keys
from kbt.api.models import AcceptType, OutputAction
from kbt.api.resolved import ResolvedJob
from kbt.log import get_logger
from kbt.runner.done import done_markers, store_group
from kbt.runner.plan import (
    Plan,
    WorkItem,
    job_identity,
    job_key,
    make_plan,
    split_bytes_setting,
    successor,
)
from kbt.storage import ObjectNotFound, Store, directory_prefix, open_location

log = get_logger(__name__)


@dataclass(frozen=True)
class Layout:
    store: Store
    prefix: str  # the output folder ("" or ends with "/")
    fingerprint: str

    def for_plan(self, plan: Plan) -> Layout:
        """This output location, bound to the restart state of ``plan``."""
        return replace(self, fingerprint=plan.fingerprint)

    def plan_key(self) -> str:
        return self.prefix + keys.plan_key(self.fingerprint)

    def done_prefix(self) -> str:
        return self.prefix + keys.done_dir(self.fingerprint)

    def done_key(self, first: int, last: int, token: str) -> str:
        return self.prefix + keys.done_key(self.fingerprint, first, last, token)

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

    def errors_prefix(self) -> str:
        return self.prefix + keys.ERRORS_DIR

    def errors_key(self, item: WorkItem) -> str:
        return self.prefix + keys.errors_key(item.name, item.part if item.is_split else None)


def layout_for(job: ResolvedJob) -> Layout:
    """The job's output location, not yet bound to a state (see ``current_plan``)."""
    from kbt.runner.inputs import s3_settings  # noqa: PLC0415 (avoids import cycle)

    store, prefix = open_location(job.spec.transformOutput.s3OutputPath, s3_settings(job.spec))
    return Layout(store, directory_prefix(prefix), "")


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
    from kbt.runner.encode import output_type  # noqa: PLC0415 (avoids import cycle)

    return output_type(job) == AcceptType.PARQUET


def current_plan(
    job: ResolvedJob, layout: Layout, shards: int, split_bytes: int | None = None, *, refresh: bool = False
) -> tuple[Plan, list[str]]:
    """The plan the job runs under and, when it is a new one, what changed since the last.

    Without ``refresh`` the current plan is reused while the spec is unchanged; otherwise the
    inputs are listed and the model identified again. Racing planners converge on the stored one.
    """
    split = split_bytes or split_bytes_setting()
    pointer_key = layout.prefix + keys.current_key(job_identity(job))
    key = job_key(job, shards, split)
    pointer = _read_optional(layout.store, pointer_key)
    previous = _stored_plan(layout, pointer["fingerprint"]) if pointer else None
    if previous is not None and pointer is not None and pointer["key"] == key and not refresh:
        return previous, []
    plan = make_plan(job, shards, split)
    if previous is not None and previous.content == plan.content:
        return previous, []
    changes: list[str] = []
    if previous is not None:
        plan = replace(plan, fingerprint=successor(plan.content, previous.fingerprint))
        changes = describe_changes(previous, plan)
    state = layout.for_plan(plan)
    if not state.store.exists(state.plan_key()):
        if previous is not None and _same_job(previous, plan):
            _carry_over(job, layout.for_plan(previous), previous, state, plan)
        state.store.put(state.plan_key(), plan.to_json())
    layout.store.put(pointer_key, json.dumps({"key": key, "fingerprint": plan.fingerprint}).encode())
    for change in changes:
        log.warning("changed since the last run", change=change, state=plan.fingerprint)
    return Plan.from_json(state.store.read(state.plan_key())), changes


def _read_optional(store: Store, key: str) -> Any:
    try:
        return read_json(store, key)
    except (ObjectNotFound, ValueError):
        return None


def _stored_plan(layout: Layout, fingerprint: str) -> Plan | None:
    """The plan stored under ``fingerprint``; None when it is missing or from an older kbt."""
    try:
        return Plan.from_json(layout.store.read(layout.prefix + keys.plan_key(fingerprint)))
    except (ObjectNotFound, ValueError, TypeError, KeyError):
        return None


def _same_job(previous: Plan, plan: Plan) -> bool:
    return (
        previous.spec == plan.spec
        and previous.model == plan.model
        and previous.split_bytes == plan.split_bytes
    )


def _objects(plan: Plan) -> dict[str, tuple[int, str]]:
    return {item.key: (item.size, item.version) for item in plan.items}


def describe_changes(previous: Plan, plan: Plan) -> list[str]:
    """One line per change from ``previous`` to ``plan``: spec fields, the model, input objects."""
    changes = [f"spec field {name} changed" for name in _changed_fields(previous.spec, plan.spec)]
    if previous.model.get("spec") != plan.model.get("spec"):
        changes.append("the model spec changed")
    elif previous.model != plan.model:
        changes.append(f"the model at {plan.model['spec']['uri']} changed (new version or files)")
    if previous.shards != plan.shards:
        changes.append(f"shard count changed from {previous.shards} to {plan.shards}")
    if previous.split_bytes != plan.split_bytes:
        changes.append(f"split size changed from {previous.split_bytes} to {plan.split_bytes} bytes")
    before, after = _objects(previous), _objects(plan)
    root = plan.input_store
    changes += [f"input {root}{k} changed" for k in sorted(after) if k in before and before[k] != after[k]]
    changes += [f"input {root}{k} is new" for k in sorted(after.keys() - before.keys())]
    changes += [f"input {root}{k} is gone" for k in sorted(before.keys() - after.keys())]
    if changes and not _same_job(previous, plan):
        changes.append("every input is scored again")
    return changes


def _changed_fields(before: Any, after: Any, path: str = "") -> list[str]:
    """Dotted names of the fields that differ (``transformInput.contentType``)."""
    if isinstance(before, dict) and isinstance(after, dict):
        return [
            found
            for name in sorted(before.keys() | after.keys())
            for found in _changed_fields(before.get(name), after.get(name), f"{path}{name}.")
        ]
    return [] if before == after else [path.rstrip(".")]


def _carry_over(job: ResolvedJob, old: Layout, previous: Plan, new: Layout, plan: Plan) -> None:
    """Copy the done-markers of unchanged whole objects whose ``<name>.out`` stays valid."""
    finished = {item.key: item for item in previous.items if not item.is_split}
    markers = done_markers(old)
    carried = []
    for item in plan.items:
        before = finished.get(item.key)
        if before is None or before.ordinal not in markers or item.is_split:
            continue
        unchanged = (before.size, before.version) == (item.size, item.version)
        if not unchanged or item_output_key(job, new, item) != item_output_key(job, old, before):
            continue
        carried.append({**markers[before.ordinal], "ordinal": item.ordinal})
    if carried:
        store_group(new, carried, "carried")


def read_json(store: Store, key: str) -> Any:
    return json.loads(store.read(key))
