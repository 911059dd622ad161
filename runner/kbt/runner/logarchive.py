"""Keep a shard's log lines and upload them to ``<out>/_kbt/logs/shard-NNNNN.log``.

The kubectl plugin reads the archive after the pods are gone. The archive keeps the first
``HEAD_BYTES`` and the last ``TAIL_BYTES`` of the log (with a marker where lines were dropped)
and is uploaded periodically and at exit; uploads that fail are retried at the next flush.
"""

from __future__ import annotations

import threading
from collections import deque

from kbt import log as kbt_log
from kbt.storage import Store

HEAD_BYTES = 1024 * 1024
TAIL_BYTES = 4 * 1024 * 1024


class LogArchive:
    def __init__(self, store: Store, key: str) -> None:
        self.store, self.key = store, key
        self._head: list[str] = []
        self._head_bytes = 0
        self._tail: deque[str] = deque()
        self._tail_bytes = 0
        self._dropped = 0
        self._lock = threading.Lock()
        self._dirty = False

    def add(self, line: str) -> None:
        with self._lock:
            self._dirty = True
            if self._head_bytes + len(line) <= HEAD_BYTES and not self._tail:
                self._head.append(line)
                self._head_bytes += len(line) + 1
                return
            self._tail.append(line)
            self._tail_bytes += len(line) + 1
            while self._tail_bytes > TAIL_BYTES and self._tail:
                self._tail_bytes -= len(self._tail.popleft()) + 1
                self._dropped += 1

    def text(self) -> str:
        with self._lock:
            middle = [f"... {self._dropped} log lines dropped ..."] if self._dropped else []
            return "\n".join([*self._head, *middle, *self._tail]) + "\n"

    def flush(self) -> None:
        if not self._dirty:
            return
        self._dirty = False
        self.store.put(self.key, self.text().encode())

    def __enter__(self) -> LogArchive:
        kbt_log.ensure_configured()
        kbt_log.add_tap(self.add)
        return self

    def __exit__(self, *_: object) -> None:
        kbt_log.remove_tap(self.add)
