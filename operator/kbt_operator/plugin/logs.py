"""`kubectl btj logs`: every shard's log, each line prefixed `[shard I]`, merged by time.

Live pods are read through the API (with kubelet timestamps, so shards interleave in time order);
once the job has finished, shards whose pods are gone are read from the runner's archive in S3.
With `follow`, one thread streams each shard pod and new pods (new shards, retries) are picked up
as they start, until the job has finished and every stream has ended.
"""

from __future__ import annotations

import heapq
import queue
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from kbt_operator.plugin.archive import LogArchive
from kbt_operator.plugin.errors import PluginError, PluginExit
from kbt_operator.plugin.job import JobView
from kbt_operator.plugin.kube import Kube
from kbt_operator.plugin.shards import Shard, ShardPod, collect_shards

_RFC3339 = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:\d\d))\s?(.*)$", re.S)
_JSON_TIME = re.compile(r'"timestamp"\s*:\s*"([^"]+)"')
_EARLIEST = datetime.min.replace(tzinfo=UTC)
Emit = Callable[[str], None]


@dataclass(frozen=True)
class LogOptions:
    tail: int | None = None
    since: timedelta | None = None
    shard: int | None = None
    timestamps: bool = False
    poll_seconds: float = 2.0


@dataclass(frozen=True)
class LogLine:
    shard: int
    time: datetime
    stamp: str  # the timestamp as received ('' when the line carried none)
    text: str

    def render(self, timestamps: bool) -> str:
        shown = f"{self.stamp} {self.text}" if timestamps and self.stamp else self.text
        return f"[shard {self.shard}] {shown}"


def _parse_time(text: str) -> datetime | None:
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def parse_line(shard: int, raw: str, previous: datetime = _EARLIEST) -> LogLine:
    """A log line split into its leading RFC3339 timestamp (kubelet's) and the text.

    Archived lines may carry none; a JSON line's "timestamp" field (structlog) is used for
    ordering then, and a line without any time keeps the time of the line before it.
    """
    match = _RFC3339.match(raw)
    if match and (stamp_time := _parse_time(match.group(1))) is not None:
        return LogLine(shard, stamp_time, match.group(1), match.group(2))
    json_time = _JSON_TIME.search(raw)
    when = _parse_time(json_time.group(1)) if json_time else None
    return LogLine(shard, when or previous, "", raw)


def parse_lines(shard: int, raw_lines: Iterable[str]) -> list[LogLine]:
    lines: list[LogLine] = []
    for raw in raw_lines:
        lines.append(parse_line(shard, raw, lines[-1].time if lines else _EARLIEST))
    return lines


def split_lines(chunks: Iterable[bytes]) -> Iterator[str]:
    """Complete text lines out of a byte stream cut at arbitrary points."""
    pending = b""
    for chunk in chunks:
        pending += chunk
        *complete, pending = pending.split(b"\n")
        for line in complete:
            yield line.decode("utf-8", errors="replace").rstrip("\r")
    if pending:
        yield pending.decode("utf-8", errors="replace")


def _since_seconds(options: LogOptions) -> int | None:
    return max(1, int(options.since.total_seconds())) if options.since else None


def _wanted(shard: int, options: LogOptions) -> bool:
    return options.shard is None or options.shard == shard


class LogReader:
    """Reads (or follows) the logs of one job and emits rendered lines in order."""

    def __init__(self, kube: Kube, job: JobView, options: LogOptions, emit: Emit, notify: Emit) -> None:
        self.kube, self.job, self.options = kube, job, options
        self.emit, self.notify = emit, notify

    def _shards(self) -> dict[int, Shard]:
        pods = self.kube.list_shard_pods(self.job.name)
        shards = collect_shards(pods, {}, self.job.shard_count)
        if self.options.shard is not None and self.options.shard not in shards:
            raise PluginError(
                f"job {self.job.name} has shards 0..{self.job.shard_count - 1}; there is no shard "
                f"{self.options.shard}",
                PluginExit.USAGE,
            )
        return {index: shard for index, shard in shards.items() if _wanted(index, self.options)}

    # --- one-shot -----------------------------------------------------------------------------

    def print_once(self) -> None:
        shards = self._shards()
        streams: list[list[LogLine]] = []
        waiting: list[str] = []
        without_pod: list[int] = []
        for index, shard in shards.items():
            pod = shard.latest
            if pod is None:
                without_pod.append(index)
            elif not pod.has_logs:
                waiting.append(f"shard {index} ({pod.waiting_reason})")
            else:
                streams.append(self._pod_lines(pod))
        if without_pod and self.job.finished:
            try:
                streams.extend(self._archived_lines(set(without_pod)))
            except PluginError as exc:
                if not any(streams):
                    raise
                self.notify(f"warning: archived logs unavailable: {exc.message}")
        if not any(streams):
            raise self._nothing_yet(waiting)
        for note in waiting:
            self.notify(f"{note}: not started, no logs yet")
        for line in heapq.merge(*streams, key=lambda line: line.time):
            self.emit(line.render(self.options.timestamps))

    def _pod_lines(self, pod: ShardPod) -> list[LogLine]:
        chunks = self.kube.pod_log(
            pod.name, follow=False, tail_lines=self.options.tail, since_seconds=_since_seconds(self.options)
        )
        return parse_lines(pod.index, split_lines(chunks))

    def _archived_lines(self, indexes: set[int]) -> list[list[LogLine]]:
        archive = LogArchive(self.job, self.kube.secret_data)
        cutoff = datetime.now(UTC) - self.options.since if self.options.since else None
        streams = []
        for index, key in sorted(archive.shards().items()):
            if index not in indexes:
                continue
            lines = parse_lines(index, archive.read(key))
            if cutoff is not None:
                lines = [line for line in lines if line.time >= cutoff]
            if self.options.tail is not None:
                lines = lines[-self.options.tail :] if self.options.tail > 0 else []
            streams.append(lines)
        return streams

    def _nothing_yet(self, waiting: list[str]) -> PluginError:
        job = self.job
        if not job.started:
            return PluginError(
                f"job {job.name} has not started yet (status {job.phase}); "
                f"`kubectl btj logs -f {job.name}` waits for its shards",
                PluginExit.NOT_READY,
            )
        if waiting:
            return PluginError(
                f"no logs yet: {', '.join(waiting)} not started; use -f to wait", PluginExit.NOT_READY
            )
        return PluginError(
            f"no logs yet for job {job.name} (status {job.phase}): no shard pod is running and nothing is "
            "archived under its output path",
            PluginExit.NOT_READY,
        )

    # --- follow -------------------------------------------------------------------------------

    def follow(self, job_state: Callable[[], JobView]) -> None:
        """Stream every shard pod as it starts until the job has finished and all streams ended."""
        lines: queue.Queue[LogLine | str | None] = queue.Queue()
        followed: set[str] = set()
        live = 0
        first_round = True
        announced: set[str] = set()
        while True:
            shards = self._shards()
            pending = False
            for shard in shards.values():
                # At start only the latest attempt of each shard; later every new pod (retries).
                pods = [shard.latest] if first_round and shard.latest else shard.pods
                for pod in pods:
                    if pod.name in followed:
                        continue
                    if not pod.has_logs:
                        pending = True
                        if pod.name not in announced:
                            announced.add(pod.name)
                            self.notify(f"shard {pod.index}: waiting to start ({pod.waiting_reason})")
                        continue
                    followed.add(pod.name)
                    live += 1
                    self._start_stream(pod, lines, initial=first_round)
            if first_round and not followed and self.job.finished:
                self.print_once()
                return
            first_round = False
            deadline = time.monotonic() + self.options.poll_seconds
            while (remaining := deadline - time.monotonic()) > 0:
                try:
                    item = lines.get(timeout=remaining)
                except queue.Empty:
                    break
                if item is None:
                    live -= 1
                elif isinstance(item, str):
                    self.notify(item)
                else:
                    self.emit(item.render(self.options.timestamps))
            self.job = job_state()
            if self.job.finished and live == 0 and not pending:
                return

    def _start_stream(self, pod: ShardPod, sink: queue.Queue[LogLine | str | None], initial: bool) -> None:
        tail = self.options.tail if initial else None
        since = _since_seconds(self.options) if initial else None

        def stream() -> None:
            try:
                previous = _EARLIEST
                for raw in split_lines(
                    self.kube.pod_log(pod.name, follow=True, tail_lines=tail, since_seconds=since)
                ):
                    line = parse_line(pod.index, raw, previous)
                    previous = line.time
                    sink.put(line)
            except PluginError as exc:
                sink.put(f"shard {pod.index} ({pod.name}): {exc.message}")
            finally:
                sink.put(None)

        threading.Thread(target=stream, name=f"log-{pod.name}", daemon=True).start()
