"""Run a command as a child process and measure its wall time and peak RSS (whole process tree).

Linux only: the tree and its resident memory are read from /proc every few milliseconds, so
short-lived grandchildren (shard processes, Ray workers) are counted while they live.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024
RESULT_PREFIX = "BENCH-RESULT "


class ContenderFailed(RuntimeError):
    """A contender's process exited non-zero or printed no result line."""


@dataclass(frozen=True)
class ProcessRun:
    wall_seconds: float
    peak_rss_mb: float
    result: dict[str, float]  # what the child printed after RESULT_PREFIX (may be empty)


def _children_map() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
        except OSError:
            continue
        # The command name may hold spaces and parentheses; fields after the last ')' are fixed.
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(parent, []).append(int(entry.name))
    return children


def tree_rss_mb(roots: list[int]) -> float:
    """Resident memory of the given processes and all their descendants, in MiB."""
    children = _children_map()
    seen: set[int] = set()
    pending = list(roots)
    total_pages = 0
    while pending:
        pid = pending.pop()
        if pid in seen:
            continue
        seen.add(pid)
        pending.extend(children.get(pid, []))
        try:
            total_pages += int(Path(f"/proc/{pid}/statm").read_text().split()[1])
        except (OSError, IndexError, ValueError):
            continue
    return total_pages * PAGE_KB / 1024


class PeakSampler:
    """Samples the RSS of process trees on a background thread; `peak_mb` is the maximum seen."""

    def __init__(self, roots: list[int], interval: float = 0.05) -> None:
        self.roots = roots
        self.interval = interval
        self.peak_mb = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak_mb = max(self.peak_mb, tree_rss_mb(self.roots))
            self._stop.wait(self.interval)

    def __enter__(self) -> PeakSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def run_measured(
    command: list[str],
    env: dict[str, str],
    log_path: Path,
    timeout: float = 1800,
) -> ProcessRun:
    """Run `command`, sampling the RSS of its process tree; on a timeout it is killed and
    ``subprocess.TimeoutExpired`` raised."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("wb") as log:
        started = time.perf_counter()
        # Own session, so an interrupted benchmark can end the child and all it started.
        child = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=log, start_new_session=True)
        try:
            with PeakSampler([child.pid]) as sampler:
                stdout, _ = child.communicate(timeout=timeout)
        except BaseException:
            os.killpg(child.pid, signal.SIGKILL)
            child.wait()
            raise
        wall = time.perf_counter() - started
        log.write(stdout)
    if child.returncode != 0:
        tail = log_path.read_text(errors="replace")[-3000:]
        raise ContenderFailed(f"{' '.join(command)} exited {child.returncode}; log {log_path}:\n{tail}")
    result: dict[str, float] = {}
    for line in stdout.decode(errors="replace").splitlines():
        if line.startswith(RESULT_PREFIX):
            result = json.loads(line.removeprefix(RESULT_PREFIX))
    return ProcessRun(wall_seconds=wall, peak_rss_mb=sampler.peak_mb, result=result)


def emit_result(**values: float) -> None:
    """Called by a child process: report its own timed section to the harness."""
    print(RESULT_PREFIX + json.dumps(values), flush=True)
