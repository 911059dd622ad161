"""Finalization: compose parts into final outputs, write ``_manifest.json``; idempotent.

Runs at the end of whichever shard finds every shard's done-marker (and again in ``kbt run``
after its workers; a no-op then). Composition reads only parts, which are kept until the
``finalized.json`` marker exists, so a finalizer killed midway, or two racing ones, write the
same bytes. After the marker is written the parts are deleted. A summaryOnly job's manifest
lists the files its scoring script wrote (uploaded by the shards, kbt.runner.custom_outputs).
"""

from __future__ import annotations

import json
import uuid
from collections import defaultdict
from pathlib import Path
from typing import Any

from kbt.api import layout as keys
from kbt.api.models import OutputAction
from kbt.api.resolved import ResolvedJob
from kbt.log import get_logger
from kbt.runner.done import done_markers
from kbt.runner.errors import ErrorThresholdExceeded
from kbt.runner.parquet_io import open_parquet
from kbt.runner.plan import Plan, WorkItem
from kbt.runner.progress import utc_now
from kbt.runner.state import Layout, is_parquet_output, read_json
from kbt.runner.thresholds import Threshold
from kbt.storage import ObjectNotFound, StorageError

log = get_logger(__name__)


def all_shards_done(layout: Layout, plan: Plan) -> bool:
    return len(layout.store.list_objects(layout.shard_prefix())) >= plan.shards


def _compose(job: ResolvedJob, layout: Layout, key: str, parts: list[str], scratch: Path) -> None:
    store = layout.store
    if not is_parquet_output(job):
        store.compose(key, parts, scratch)
        return
    import pyarrow.parquet as pq  # noqa: PLC0415 (lazy: see kbt.frames)

    scratch.mkdir(parents=True, exist_ok=True)
    target = scratch / f"compose-{uuid.uuid4().hex}.parquet"
    writer: pq.ParquetWriter | None = None
    try:
        for part in parts:
            if store.size(part) == 0:
                continue
            source = open_parquet(store, part)
            for group in range(source.metadata.num_row_groups):
                table = source.read_row_group(group)
                writer = writer or pq.ParquetWriter(target, table.schema)
                writer.write_table(table.cast(writer.schema))
        if writer is None:
            store.put(key, b"")
            return
        writer.close()
        writer = None
        store.put_file(key, target)
    finally:
        if writer is not None:
            writer.close()
        target.unlink(missing_ok=True)


def _outputs(job: ResolvedJob, layout: Layout, plan: Plan, scratch: Path) -> list[str]:
    """Compose what needs composing; return the final output keys."""
    action = job.spec.transformOutput.outputAction
    if action == OutputAction.SUMMARY_ONLY:
        return custom_output_keys(layout)
    if action == OutputAction.APPEND_ROW:
        key = layout.prefix + job.spec.transformOutput.appendRowFileName
        _compose(job, layout, key, [layout.part_key(item) for item in plan.items], scratch)
        return [key]
    by_object: dict[str, list[WorkItem]] = defaultdict(list)
    for item in plan.items:
        by_object[item.name].append(item)
    outputs = []
    for name, items in by_object.items():
        key = layout.output_key(name)
        if items[0].is_split:
            _compose(job, layout, key, [layout.part_key(item) for item in items], scratch)
        outputs.append(key)
    return outputs


def custom_output_keys(layout: Layout) -> list[str]:
    """What a summaryOnly job's scoring scripts wrote (kbt.runner.custom_outputs): every key under
    the output prefix but kbt's own."""
    own = (keys.KBT_DIR, keys.ERRORS_DIR, keys.MANIFEST_NAME)
    found = layout.store.list_objects(layout.prefix)
    return [info.key for info in found if not info.key[len(layout.prefix) :].startswith(own)]


def _manifest(
    job: ResolvedJob, layout: Layout, plan: Plan, outputs: list[str], markers: dict[int, Any]
) -> dict[str, Any]:
    store = layout.store
    shards = [read_json(store, info.key) for info in store.list_objects(layout.shard_prefix())]
    inputs: dict[str, dict[str, Any]] = {}
    for item in plan.items:
        marker = markers[item.ordinal]
        entry = inputs.setdefault(
            item.name,
            {
                "object": plan.input_store + item.key,
                "name": item.name,
                "bytes": item.size,
                "records": 0,
                "failed": 0,
                "parts": item.parts,
            },
        )
        entry["records"] += marker["records"]
        entry["failed"] += marker["failed"]
    records = sum(m["records"] for m in markers.values())
    failed = sum(m["failed"] for m in markers.values())
    started = min((s["startedAt"] for s in shards), default=utc_now())
    return {
        "job": {"name": job.name, "namespace": job.namespace, "uid": job.uid},
        "model": {"ref": job.model_ref, "uri": job.model.uri, "flavor": job.model.flavor},
        "device": sorted({s.get("device", "") for s in shards} - {""}),
        "counts": {
            "records": records,
            "succeeded": records - failed,
            "failed": failed,
            "objects": len(inputs),
        },
        "inputs": list(inputs.values()),
        "outputs": [store.uri(key) for key in outputs],
        "errors": [store.uri(m["errors"]) for m in markers.values() if m.get("errors")],
        "shards": sorted(shards, key=lambda s: s["index"]),
        "timing": {"startedAt": started, "finishedAt": utc_now()},
        "fingerprint": plan.fingerprint,
        "outputAction": job.spec.transformOutput.outputAction,
    }


def _judge_errors(job: ResolvedJob, layout: Layout, markers: dict[int, Any]) -> None:
    """errorThreshold over the job's whole input (every shard's records); nothing is composed past it."""
    failed = sum(m["failed"] for m in markers.values())
    try:
        Threshold.from_job(job).check_job(failed, sum(m["records"] for m in markers.values()))
    except ErrorThresholdExceeded as exc:
        errors = layout.store.uri(layout.prefix + keys.ERRORS_DIR)
        raise ErrorThresholdExceeded(f"{exc}; the bad records are listed under {errors}") from exc


def finalize(job: ResolvedJob, layout: Layout, plan: Plan, scratch: Path) -> bool:
    """Finalize if every work item is done; True when the job's outputs are final."""
    store = layout.store
    if store.exists(layout.finalized_key()):
        return True
    markers = done_markers(layout)
    missing = [item.label for item in plan.items if item.ordinal not in markers]
    if missing:
        log.info("not finalizing yet", missing=len(missing), first=missing[0])
        return False
    _judge_errors(job, layout, markers)
    try:
        outputs = _outputs(job, layout, plan, scratch)
    except (ObjectNotFound, StorageError):
        if store.exists(layout.finalized_key()):
            return True  # another finalizer finished and removed the parts meanwhile
        raise
    manifest = _manifest(job, layout, plan, outputs, markers)
    store.put(layout.manifest_key(), json.dumps(manifest, indent=2).encode())
    store.put(layout.finalized_key(), json.dumps({"finishedAt": utc_now()}).encode())
    for info in store.list_objects(layout.parts_prefix()):
        store.delete(info.key)
    log.info(
        "finalized",
        records=manifest["counts"]["records"],
        failed=manifest["counts"]["failed"],
        manifest=store.uri(layout.manifest_key()),
    )
    return True
