"""Run one shard end to end: plan, skip finished work, load the model, stream, finalize.

``run_shard`` is what ``kbt shard`` and every ``kbt run`` worker execute. ``shard_main`` wraps
it for a process: logging, SIGTERM -> stop, the termination message, and the exit code. A
``PreloadedModel`` is a model ``kbt run`` loaded before forking its workers: the shard uses it
instead of loading, and its log repeats what the load logged, where its own load would have.
"""

from __future__ import annotations

import gc
import json
import logging
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from kbt import log as kbt_log
from kbt.api.azureml import mini_batch_mode
from kbt.api.exitcodes import ExitCode
from kbt.api.models import Flavor, OutputAction
from kbt.api.resolved import ResolvedJob
from kbt.api.shardmap import ShardMapError, shard_index
from kbt.flavors.base import LoadContext, Predictor
from kbt.runner.custom_outputs import SyncedPredictor, custom_outputs
from kbt.runner.done import DoneBook, Marker, done_markers
from kbt.runner.errors import ConfigError, exit_code_for, one_line
from kbt.runner.finalize import all_shards_done, finalize
from kbt.runner.inputs import s3_settings
from kbt.runner.logarchive import LogArchive
from kbt.runner.malloc import keep_freed_memory
from kbt.runner.pipeline import Pipeline
from kbt.runner.plan import WorkItem
from kbt.runner.progress import FileSink, KubernetesSink, ProgressSink, Reporter, ShardStats, utc_now
from kbt.runner.state import Layout, current_plan, layout_for
from kbt.settings import RunnerSettings
from kbt.storage import open_location

log = kbt_log.get_logger(__name__)
LOG_FLUSH_SECONDS = 30.0


@dataclass
class ShardResult:
    index: int
    records: int
    failed: int
    seconds: float
    finalized: bool


def scratch_dir() -> Path:
    configured = RunnerSettings.from_env().scratch_dir
    if configured is not None:
        path = configured
    elif os.access("/scratch", os.W_OK):
        path = Path("/scratch")
    else:
        path = Path(tempfile.gettempdir()) / "kbt-scratch"
    path.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix="shard-", dir=path))


@dataclass(frozen=True)
class PreloadedModel:
    """A predictor loaded before the shard started, with the log records and warnings its load
    emitted (``replay`` hands them to this process's log)."""

    predictor: Predictor
    log_records: tuple[logging.LogRecord, ...] = ()
    warnings: tuple[warnings.WarningMessage, ...] = ()

    def replay(self) -> Predictor:
        for record in self.log_records:
            logging.getLogger(record.name).handle(record)
        for caught in self.warnings:
            warnings.showwarning(caught.message, caught.category, caught.filename, caught.lineno)
        return self.predictor


def model_environment(job: ResolvedJob) -> dict[str, str]:
    """The variables the model's and the job's ``environment`` set (exported before loading)."""
    return {var.name: var.value for var in [*job.model.environment, *job.spec.environment]}


def load_model(job: ResolvedJob, layout: Layout, scratch: Path, local: Path | None = None) -> Predictor:
    """The job's predictor (from ``local`` when the model was fetched there already); a scoring
    script's custom outputs are uploaded after each mini-batch."""
    from kbt.flavors import load_predictor  # noqa: PLC0415 (avoids import cycle)
    from kbt.runner.model_fetch import fetch_model  # noqa: PLC0415 (avoids import cycle)

    environment = model_environment(job)
    if local is None:
        local = fetch_model(job.model, scratch, s3_settings(job.spec))
    outputs = custom_outputs(job, layout, scratch / "outputs")
    summary_only = job.spec.transformOutput.outputAction == OutputAction.SUMMARY_ONLY
    ctx = LoadContext(
        job.model,
        local,
        scratch,
        outputs.folder,
        environment,
        mini_batch_mode(job.spec, job.model),
        summary_only,
    )
    predictor = load_predictor(ctx)
    if job.model.flavor == Flavor.CUSTOM:  # only scripts see AZUREML_BI_OUTPUT_PATH
        predictor = SyncedPredictor(predictor, outputs)
    # The model and the imported frameworks live until the shard ends: take them out of the
    # cyclic GC's sight so its full collections do not walk them again for every mini-batch.
    gc.freeze()
    return predictor


def default_sinks(layout: Layout, index: int) -> list[ProgressSink]:
    sinks: list[ProgressSink] = [FileSink(layout.store, layout.progress_key(index))]
    settings = RunnerSettings.from_env()
    config_map, namespace = settings.progress_configmap, settings.namespace
    if config_map and namespace:
        try:
            sinks.append(KubernetesSink(namespace, config_map))
        except Exception as exc:
            log.warning("progress ConfigMap unavailable", error=str(exc))
    return sinks


def run_shard(
    job: ResolvedJob,
    index: int,
    *,
    shards: int | None = None,
    split_bytes: int | None = None,
    predictor: Predictor | PreloadedModel | None = None,
    sinks: list[ProgressSink] | None = None,
    stop: threading.Event | None = None,
    progress_interval: float | None = None,
) -> ShardResult:
    """Process shard ``index`` of ``shards`` (default: the job's shard count), with ``predictor``
    instead of loading the job's model when given."""
    started = time.monotonic()
    total = shards or job.spec.shards
    if not 0 <= index < total:
        raise ConfigError(f"shard index {index} is outside 0..{total - 1}")
    layout = layout_for(job)
    stop = stop or threading.Event()
    stats = ShardStats(index)
    archive = LogArchive(layout.store, layout.log_key(index))
    interval = progress_interval or RunnerSettings.from_env().progress_interval
    book = DoneBook(partial(_items_done, stats))
    reporter = Reporter(
        stats,
        [*default_sinks(layout, index), *(sinks or [])],
        interval,
        on_tick=_all(_every(LOG_FLUSH_SECONDS, archive.flush), book.flush_due),
    )
    scratch = scratch_dir()
    with archive:
        reporter.start()
        try:
            result = _run(
                job,
                index,
                total,
                layout,
                scratch,
                stats=stats,
                book=book,
                stop=stop,
                predictor=predictor,
                split_bytes=split_bytes,
                started=started,
            )
            stats.state = "completed"
            return result
        except BaseException as exc:
            stats.state = "stopped" if exit_code_for(exc) == ExitCode.STOPPED else "failed"
            stats.message = one_line(exc)
            log.error("shard failed", shard=index, reason=stats.message, exit_code=int(exit_code_for(exc)))
            raise
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
            reporter.stop()
            _quietly(archive.flush, "could not archive the shard log")


def _run(
    job: ResolvedJob,
    index: int,
    total: int,
    layout: Layout,
    scratch: Path,
    *,
    stats: ShardStats,
    book: DoneBook,
    stop: threading.Event,
    predictor: Predictor | PreloadedModel | None,
    split_bytes: int | None,
    started: float,
) -> ShardResult:
    plan, _ = current_plan(job, layout, total, split_bytes)
    layout = layout.for_plan(plan)
    book.bind(layout)
    items = plan.for_shard(index)
    markers = done_markers(layout)
    stats.items_total, stats.bytes_total = len(items), sum(item.weight for item in items)
    for item in items:
        if item.ordinal in markers:
            stats.items_done += 1
            stats.bytes_done += item.weight
            stats.records_processed += markers[item.ordinal]["records"]
            stats.records_failed += markers[item.ordinal]["failed"]
    todo = [item for item in items if item.ordinal not in markers]
    log.info(
        "shard starting", shard=index, shards=total, items=len(items), todo=len(todo), plan=plan.fingerprint
    )
    input_store, _ = open_location(plan.input_store or "/", s3_settings(job.spec))
    if todo:
        stats.state = "loading"
        if isinstance(predictor, PreloadedModel):
            model = predictor.replay()
        else:
            model = predictor or load_model(job, layout, scratch)
        stats.device = str(getattr(model, "device", "cpu"))
        stats.state, stats.run_started = "running", time.monotonic()
        pipeline = Pipeline(job, model, input_store, layout, stats=stats, scratch=scratch, stop=stop)
        try:
            pipeline.run(todo, book.add)
        except BaseException:
            _quietly(book.flush, "could not store the last done-markers")  # their outputs are stored
            raise
        book.flush()
    seconds = time.monotonic() - started
    shard_marker = {
        "index": index,
        "records": stats.records_processed,
        "failed": stats.records_failed,
        "items": len(items),
        "device": stats.device,
        "startedAt": stats.started_at,
        "finishedAt": utc_now(),
        "seconds": round(seconds, 3),
    }
    layout.store.put(layout.shard_done_key(index), json.dumps(shard_marker, sort_keys=True).encode())
    stats.state = "finalizing"
    finalized = all_shards_done(layout, plan) and finalize(job, layout, plan, scratch)
    log.info(
        "shard done",
        shard=index,
        records=stats.records_processed,
        failed=stats.records_failed,
        seconds=round(seconds, 1),
        finalized=finalized,
    )
    return ShardResult(index, stats.records_processed, stats.records_failed, seconds, finalized)


def _items_done(stats: ShardStats, done: list[tuple[WorkItem, Marker]]) -> None:
    """Count items whose markers are stored; one log line per group of them."""
    stats.items_done += len(done)
    stats.bytes_done += sum(item.weight for item, _ in done)
    log.info(
        "work items done",
        items=len(done),
        first=done[0][0].label,
        last=done[-1][0].label,
        records=sum(marker["records"] for _, marker in done),
        failed=sum(marker["failed"] for _, marker in done),
    )


def _all(*actions: Callable[[], None]) -> Callable[[], None]:
    def run_all() -> None:
        for action in actions:
            action()

    return run_all


def _every(seconds: float, action: Callable[[], None]) -> Callable[[], None]:
    last = [time.monotonic()]

    def tick() -> None:
        if time.monotonic() - last[0] >= seconds:
            last[0] = time.monotonic()
            action()

    return tick


def _quietly(action: Callable[[], None], failure: str) -> None:
    try:
        action()
    except Exception as exc:
        log.warning(failure, error=str(exc))


def write_termination_message(message: str) -> None:
    """The one-line reason for the pod status (KBT_TERMINATION_LOG overrides the path)."""
    path = RunnerSettings.from_env().termination_log
    try:
        with open(path, "w") as handle:
            handle.write(message[:4000] + "\n")
    except OSError:
        pass


def _shard_from_env() -> int:
    """JOB_COMPLETION_INDEX, mapped through KBT_SHARD_MAP (retry Jobs run only some shards)."""
    try:
        return shard_index(os.environ)
    except ShardMapError as exc:
        raise ConfigError(str(exc)) from None


def shard_main(
    job_path: Path,
    index: int | None,
    extra_sinks: list[ProgressSink] | None = None,
    shards: int | None = None,
    split_bytes: int | None = None,
    *,
    preloaded: PreloadedModel | None = None,
) -> int:
    """Process entry point of a shard; returns the exit code (see kbt.api.exitcodes)."""
    kbt_log.configure()
    keep_freed_memory()
    stop = threading.Event()

    def on_sigterm(signum: int, _: Any) -> None:
        log.warning("SIGTERM received: stopping after the current mini-batch")
        stop.set()

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, on_sigterm)
    try:
        job = ResolvedJob.load(job_path)
        shard = index if index is not None else _shard_from_env()
        result = run_shard(
            job,
            shard,
            shards=shards,
            split_bytes=split_bytes,
            predictor=preloaded,
            sinks=extra_sinks,
            stop=stop,
        )
    except BaseException as exc:
        if isinstance(exc, KeyboardInterrupt):
            exc = RuntimeError("interrupted")
        code = exit_code_for(exc)
        message = one_line(exc)
        if code == ExitCode.UNEXPECTED:
            log.exception("unexpected error", reason=message)
        write_termination_message(message)
        print(f"kbt shard: {message}", file=sys.stderr)
        return int(code)
    write_termination_message(f"ok: {result.records} records, {result.failed} failed")
    return int(ExitCode.OK)
