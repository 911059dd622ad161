"""``kbt run``: plan a job, run its shards as worker processes, show progress, finalize.

Each worker is ``python -m kbt.runner`` - the same ``shard_main`` that ``kbt shard`` runs in a
pod - so local output is byte-identical to a cluster run. Workers stream progress as JSON lines
on stdout; their logs go to ``<tmp>/shard-NNNNN.log`` (and the usual archive under ``_kbt/logs``).
When the model is fork-safe (``kbt.runner.forking``) it is loaded once here and the workers are
forked from this process; otherwise each worker is forked before its load (while this process
has imported no framework) or spawned, and imports and loads the model on its own. Workers of a
framework model (``forking.loads_early``) are forked before the job is planned, so that their
imports and load overlap this process's listing and planning.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Protocol

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TaskProgressColumn, TextColumn, TimeElapsedColumn

from kbt.api import podenv
from kbt.api.exitcodes import ExitCode
from kbt.api.progress import ShardProgress
from kbt.api.resolved import ResolvedJob
from kbt.runner.finalize import finalize
from kbt.runner.forking import Gate, fork_worker, loads_early, may_fork_unloaded, preload
from kbt.runner.progress import StreamSink
from kbt.runner.shard import PreloadedModel, model_environment, scratch_dir
from kbt.runner.state import current_plan, layout_for, read_json

POLL_SECONDS = 0.05
FINAL_REPORT_SECONDS = 0.5  # the longest wait for an ended worker's last progress line


class WorkerProcess(Protocol):
    """A spawned (``subprocess.Popen``) or forked (``forking.ForkedProcess``) worker."""

    @property
    def returncode(self) -> int | None: ...

    def poll(self) -> int | None: ...

    def wait(self) -> int: ...


@dataclass
class Worker:
    index: int
    process: WorkerProcess
    log_path: Path
    termination_path: Path
    report: ShardProgress | None = None
    follower: threading.Thread | None = None  # reads its progress lines; ends at its stdout's end


@dataclass
class RunSummary:
    exit_code: int
    records: int = 0
    failed: int = 0
    seconds: float = 0.0
    output: str = ""
    reasons: list[str] = field(default_factory=list)
    manifest: dict[str, Any] = field(default_factory=dict)


def _follow(worker: Worker, stream: IO[str], ended: threading.Event) -> None:
    """Reads the worker's progress lines; sets ``ended`` at the end of its stream, which comes
    as the worker exits (the run loop reaps it then, not at its next poll)."""
    for line in stream:
        if line.startswith(StreamSink.PREFIX):
            try:
                worker.report = ShardProgress.from_json(line[len(StreamSink.PREFIX) :])
            except ValueError:
                continue
    ended.set()


def _thread_limits(workers: int) -> dict[str, str]:
    """Each of ``workers`` concurrent workers' share of this machine's cores, as the framework
    thread counts (none for one worker: it uses every core, as a pod does)."""
    if workers <= 1:
        return {}
    share = str(max(1, len(os.sched_getaffinity(0)) // workers))
    return dict.fromkeys(podenv.THREAD_LIMITS, share)


def _worker_environment(termination: Path, workers: int) -> dict[str, str]:
    env = {
        podenv.LOG_FORMAT: "console",  # defaults for workers, unless this process's env says otherwise
        podenv.PROGRESS_INTERVAL: "1",
        **_thread_limits(workers),
        **os.environ,
        podenv.PROGRESS_STREAM: "1",
        podenv.TERMINATION_LOG: str(termination),
    }
    env.pop(podenv.COMPLETION_INDEX, None)
    return env


def _start(
    job: ResolvedJob,
    job_path: Path,
    index: int,
    shards: int,
    split: int,
    *,
    workers: int,
    work: Path,
    preloaded: PreloadedModel | None,
    stream_ended: threading.Event,
    gate: Gate | None = None,
) -> Worker:
    log_path, termination = work / f"shard-{index:05d}.log", work / f"shard-{index:05d}.termination"
    env = _worker_environment(termination, min(workers, shards))
    arguments = [
        "--job",
        str(job_path),
        "--index",
        str(index),
        "--shards",
        str(shards),
        "--split-bytes",
        str(split),
    ]
    process: WorkerProcess
    if preloaded is not None:
        # As a spawned worker's environment is once its load exported the model's variables.
        process, stdout = fork_worker(arguments, {**env, **model_environment(job)}, log_path, preloaded)
    elif may_fork_unloaded():
        process, stdout = fork_worker(arguments, env, log_path, None, (gate, job_path) if gate else None)
    else:
        with log_path.open("w") as log_file:
            spawned = subprocess.Popen(
                [sys.executable, "-m", "kbt.runner", *arguments],
                stdout=subprocess.PIPE,
                stderr=log_file,
                text=True,
                env=env,
            )
        assert spawned.stdout is not None
        process, stdout = spawned, spawned.stdout
    worker = Worker(index, process, log_path, termination)
    worker.follower = threading.Thread(target=_follow, args=(worker, stdout, stream_ended), daemon=True)
    worker.follower.start()
    return worker


def _update(progress: Progress, tasks: dict[int, TaskID], worker: Worker) -> None:
    report = worker.report
    if report is None:
        return
    progress.update(
        tasks[worker.index],
        total=max(1, report.bytes_total),
        completed=report.bytes_processed,
        records=report.records_processed,
        errors=report.records_failed,
        rate=report.records_per_second,
        state=report.state,
    )


def run_local(job: ResolvedJob, workers: int, shards: int, split: int, console: Console) -> RunSummary:
    """Run every shard of ``job`` with at most ``workers`` processes at once, then finalize."""
    started = time.monotonic()
    output = layout_for(job)
    work = Path(tempfile.mkdtemp(prefix="kbt-run-"))
    job_path = work / "job.json"
    job.dump(job_path)
    running, gates = [], []
    stream_ended = threading.Event()  # a worker's progress stream ended: it is exiting
    if loads_early(job):  # they import the framework and load the model while this process plans
        for index in range(min(workers, shards)):
            gates.append(Gate())
            running.append(
                _start(
                    job,
                    job_path,
                    index,
                    shards,
                    split,
                    workers=workers,
                    work=work,
                    preloaded=None,
                    stream_ended=stream_ended,
                    gate=gates[-1],
                )
            )
    try:
        plan, changes = current_plan(job, output, shards, split, refresh=True)
    except BaseException:
        for gate, worker in zip(gates, running, strict=True):
            gate.shut()
            worker.process.wait()
        raise
    for gate in gates:
        gate.open()
    layout = output.for_plan(plan)
    for change in changes:
        console.print(f"changed since the last run: {change}")
    scratch = scratch_dir()
    preloaded = None
    if not running:
        environment = _worker_environment(work / "preload.termination", min(workers, shards))
        preloaded = preload(job, layout, scratch, environment)
    columns = [
        TextColumn("{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TextColumn(
            "{task.fields[records]} records, {task.fields[errors]} errors, "
            "{task.fields[rate]:.0f}/s {task.fields[state]}"
        ),
        TimeElapsedColumn(),
    ]
    waiting = list(range(len(running), shards))
    finished: list[Worker] = []
    with Progress(*columns, console=console, transient=False) as progress:
        tasks = {
            i: progress.add_task(f"shard {i}", total=None, records=0, errors=0, rate=0.0, state="waiting")
            for i in range(shards)
        }
        while waiting or running:
            while waiting and len(running) < workers:
                running.append(
                    _start(
                        job,
                        job_path,
                        waiting.pop(0),
                        shards,
                        split,
                        workers=workers,
                        work=work,
                        preloaded=preloaded,
                        stream_ended=stream_ended,
                    )
                )
            stream_ended.wait(POLL_SECONDS)
            stream_ended.clear()
            for worker in list(running):
                _update(progress, tasks, worker)
                exiting = worker.follower is not None and not worker.follower.is_alive()
                if exiting or worker.process.poll() is not None:
                    worker.process.wait()
                    if worker.follower is not None:
                        worker.follower.join(FINAL_REPORT_SECONDS)  # the last report read
                    _update(progress, tasks, worker)
                    running.remove(worker)
                    finished.append(worker)
    shutil.rmtree(scratch, ignore_errors=True)
    return _summarise(job, layout, plan, finished, started=started)


def _summarise(
    job: ResolvedJob, layout: Any, plan: Any, finished: list[Worker], *, started: float
) -> RunSummary:
    failures = [w for w in sorted(finished, key=lambda w: w.index) if w.process.returncode != 0]
    summary = RunSummary(int(ExitCode.OK), output=layout.store.uri(layout.prefix))
    if failures:
        summary.exit_code = failures[0].process.wait()  # ended: its exit code
        for worker in failures:
            reason = worker.termination_path.read_text().strip() if worker.termination_path.exists() else ""
            summary.reasons.append(
                f"shard {worker.index} (exit {worker.process.returncode}): {reason or 'no reason'}"
                f"; log: {worker.log_path}"
            )
    else:
        finalize(job, layout, plan, scratch_dir())
        summary.manifest = read_json(layout.store, layout.manifest_key())
        summary.records = summary.manifest["counts"]["records"]
        summary.failed = summary.manifest["counts"]["failed"]
    summary.seconds = time.monotonic() - started
    return summary
