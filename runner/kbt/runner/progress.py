"""Shard progress: the counters a running shard keeps and the sinks that publish them.

``ShardStats.report()`` is a ``kbt.api.progress.ShardProgress`` (the report every reader
validates). ``state`` is starting | loading | running | finalizing | completed | failed | stopped.
Sinks: ``QueueSink`` (in-process), ``StreamSink`` (JSON lines on a pipe, used by ``kbt run``
workers), ``FileSink`` (``<out>/_kbt/progress/shard-NNNNN.json``), ``KubernetesSink`` (key
``shard-<index>`` of ConfigMap ``KBT_PROGRESS_CONFIGMAP`` in ``KBT_NAMESPACE``). A failing sink
never fails the shard: it is logged once and skipped afterwards.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol, TextIO

from kbt.api.progress import ShardProgress, ShardState, progress_key
from kbt.log import get_logger
from kbt.storage import Store

log = get_logger(__name__)


def utc_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class ShardStats:
    """Counters of one shard, updated by the pipeline (one writer thread)."""

    index: int
    state: ShardState = "starting"
    records_processed: int = 0  # records with a prediction or an error, this run and earlier runs
    records_failed: int = 0
    bytes_done: int = 0  # bytes of finished work items
    bytes_current: int = 0  # bytes read of the work item in progress
    bytes_total: int = 0
    items_done: int = 0
    items_total: int = 0
    device: str = ""
    message: str = ""
    started_at: str = field(default_factory=utc_now)
    records_this_run: int = 0
    run_started: float = field(default_factory=time.monotonic)

    def report(self) -> ShardProgress:
        elapsed = max(1e-6, time.monotonic() - self.run_started)
        return ShardProgress(
            index=self.index,
            state=self.state,
            records_processed=self.records_processed,
            records_failed=self.records_failed,
            bytes_processed=min(self.bytes_total, self.bytes_done + self.bytes_current),
            bytes_total=self.bytes_total,
            records_per_second=round(self.records_this_run / elapsed, 1),
            items_done=self.items_done,
            items_total=self.items_total,
            device=self.device,
            started_at=self.started_at,
            updated_at=utc_now(),
            message=self.message,
        )


class ProgressSink(Protocol):
    def publish(self, report: ShardProgress) -> None: ...


class QueueSink:
    def __init__(self, target: queue.Queue[ShardProgress]) -> None:
        self.target = target

    def publish(self, report: ShardProgress) -> None:
        self.target.put(report)


class StreamSink:
    """One JSON line per report on ``stream`` (a ``kbt run`` worker's stdout)."""

    PREFIX = "KBT-PROGRESS "

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream

    def publish(self, report: ShardProgress) -> None:
        self.stream.write(self.PREFIX + report.to_json() + "\n")
        self.stream.flush()


class FileSink:
    def __init__(self, store: Store, key: str) -> None:
        self.store, self.key = store, key

    def publish(self, report: ShardProgress) -> None:
        self.store.put(self.key, report.to_json(indent=1).encode())


class KubernetesSink:
    """Patches ``data["shard-<index>"]`` of the job's progress ConfigMap."""

    def __init__(self, namespace: str, config_map: str, api: Any = None) -> None:
        if api is None:
            from kubernetes import client, config  # noqa: PLC0415 (heavy: only inside a cluster)

            config.load_incluster_config()
            api = client.CoreV1Api()
        self.api, self.namespace, self.config_map = api, namespace, config_map

    def publish(self, report: ShardProgress) -> None:
        body = {"data": {progress_key(report.index): report.to_json()}}
        self.api.patch_namespaced_config_map(self.config_map, self.namespace, body, _request_timeout=10)


class Reporter:
    """Publishes ``stats`` to every sink every ``interval`` seconds and on demand."""

    def __init__(
        self,
        stats: ShardStats,
        sinks: list[ProgressSink],
        interval: float,
        on_tick: Callable[[], None] | None = None,
    ) -> None:
        self.stats, self.sinks, self.interval, self.on_tick = stats, list(sinks), interval, on_tick
        self._broken: set[int] = set()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._loop, name="kbt-progress", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def publish(self) -> None:
        with self._lock:
            report = self.stats.report()
            for position, sink in enumerate(self.sinks):
                if position in self._broken:
                    continue
                try:
                    sink.publish(report)
                except Exception as exc:
                    self._broken.add(position)
                    log.warning("progress sink disabled", sink=type(sink).__name__, error=str(exc))

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self.publish()
            if self.on_tick is not None:
                try:
                    self.on_tick()
                except Exception as exc:
                    log.warning("periodic task failed", error=str(exc))

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        self.publish()
