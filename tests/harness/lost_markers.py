"""Make the restart state look as if a shard died before it stored some items' done-markers:
every stored marker group is rewritten without them (the state such a death leaves)."""

from __future__ import annotations

import json

from kbt.api import layout as keys
from kbt.api.resolved import ResolvedJob
from kbt.runner.state import layout_for


def forget_items(job: ResolvedJob, ordinals: set[int]) -> int:
    """Remove the markers of work items ``ordinals`` from every state of ``job``'s output;
    returns how many markers were removed."""
    layout = layout_for(job)
    store, removed = layout.store, 0
    for info in store.list_objects(layout.prefix + keys.STATE_DIR):
        if "/done/" not in info.key:
            continue
        markers = json.loads(store.read(info.key))["markers"]
        kept = [m for m in markers if m["ordinal"] not in ordinals]
        removed += len(markers) - len(kept)
        if not kept:
            store.delete(info.key)
        elif len(kept) < len(markers):
            store.put(info.key, json.dumps({"markers": kept}).encode())
    return removed
