"""Done-markers: a work item is done once a stored group of markers names it.

A shard finishes small items (an image, a document) much faster than it could store one marker
object for each, so ``DoneBook`` keeps them and stores them as one group object when the group
holds ``GROUP_ITEMS`` markers, its items weigh ``GROUP_WEIGHT`` input bytes (what a lost group
would cost to redo), or its oldest marker has waited ``GROUP_SECONDS`` (checked on every commit
and every progress tick), and when the shard stops for any reason. An item's output is stored
before its marker, so a shard killed with markers unstored redoes only those items, with the
same bytes: nothing is lost or written twice. Every writer names its groups with its own token,
so two writers of one shard (a pod and its replacement) never replace each other's groups.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from kbt.runner.plan import WorkItem

if TYPE_CHECKING:
    from kbt.runner.state import Layout

GROUP_ITEMS = 256
GROUP_WEIGHT = 16 << 20
GROUP_SECONDS = 2.0

Marker = dict[str, Any]
OnDone = Callable[[list[tuple[WorkItem, Marker]]], None]


def store_group(layout: Layout, markers: list[Marker], token: str) -> None:
    """Store ``markers`` (of one shard's items, in ordinal order) as one group."""
    first, last = markers[0]["ordinal"], markers[-1]["ordinal"]
    body = json.dumps({"markers": markers}, sort_keys=True).encode()
    layout.store.put(layout.done_key(first, last, token), body)


def done_markers(layout: Layout) -> dict[int, Marker]:
    """Every stored done-marker, by work item ordinal."""
    markers = {}
    for info in layout.store.list_objects(layout.done_prefix()):
        for marker in json.loads(layout.store.read(info.key))["markers"]:
            markers[int(marker["ordinal"])] = marker
    return markers


class DoneBook:
    """Collects the markers of committed items and stores them in groups (thread-safe)."""

    def __init__(self, on_done: OnDone) -> None:
        self.on_done = on_done
        self.token = uuid.uuid4().hex[:8]
        self.layout: Layout | None = None
        self._pending: list[tuple[WorkItem, Marker]] = []
        self._weight = 0
        self._since = 0.0
        self._lock = threading.Lock()

    def bind(self, layout: Layout) -> None:
        """Store groups under ``layout`` (bound to the shard's plan)."""
        self.layout = layout

    def add(self, item: WorkItem, marker: Marker) -> None:
        """Note a committed item (its output and errors are stored); may store the group."""
        with self._lock:
            if not self._pending:
                self._since = time.monotonic()
            self._pending.append((item, marker))
            self._weight += item.weight
            if len(self._pending) >= GROUP_ITEMS or self._weight >= GROUP_WEIGHT or self._overdue():
                self._store()

    def flush_due(self) -> None:
        """Store the group if its oldest marker has waited long enough (a periodic tick)."""
        with self._lock:
            if self._pending and self._overdue():
                self._store()

    def flush(self) -> None:
        """Store every pending marker now."""
        with self._lock:
            if self._pending:
                self._store()

    def _overdue(self) -> bool:
        return time.monotonic() - self._since >= GROUP_SECONDS

    def _store(self) -> None:
        if self.layout is None:
            raise RuntimeError("DoneBook.bind was not called before the first commit")
        store_group(self.layout, [marker for _, marker in self._pending], self.token)
        done, self._pending, self._weight = self._pending, [], 0
        self.on_done(done)
