"""``kbt run``'s forked workers: fork each worker from this process instead of spawning it.

A worker forked after the model's load (``preload``) shares the loaded model and the imported
frameworks copy-on-write instead of importing and loading them again. Only models
``kbt.flavors.fork_safe`` accepts are preloaded. Any other worker is forked before its load
while this process has imported none of ``FRAMEWORKS`` (``may_fork_unloaded``): the child then
imports the framework and loads the model itself, as a spawned worker does, without a new
interpreter re-importing kbt; otherwise workers are spawned. A worker that loads its own model
may be forked before the job is planned and held at a ``Gate`` after its load. A forked worker
is otherwise the worker ``kbt run`` spawns: the same ``python -m kbt.runner`` arguments (``sys.argv``) and
environment (``kbt.runner.__main__.main``), progress lines on stdout, its log on stderr (the
shard's log file, which repeats a preload's log records and warnings), the shard's exit code.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
import traceback
import warnings
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO, NoReturn

import structlog

from kbt import log as kbt_log
from kbt.api.exitcodes import ExitCode
from kbt.api.models import Flavor
from kbt.api.resolved import ResolvedJob
from kbt.flavors import fork_safe
from kbt.runner import __main__ as runner_entry
from kbt.runner.inputs import s3_settings
from kbt.runner.model_fetch import fetch_model
from kbt.runner.shard import PreloadedModel, load_model, scratch_dir
from kbt.runner.state import Layout, layout_for

# Flavors that may be fork-safe: only their models are fetched to ask ``fork_safe``.
CANDIDATE_FLAVORS = (Flavor.SKLEARN, Flavor.XGBOOST, Flavor.MLFLOW)

# Frameworks that start threads or a device context at import or load (or import such ones):
# once one is imported here, a child forked from this process could hang, so workers are spawned.
FRAMEWORKS = ("torch", "tensorflow", "keras", "jax", "transformers", "xgboost", "mlflow", "onnxruntime")


class _Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@contextmanager
def _captured_log() -> Iterator[list[logging.LogRecord]]:
    """Log records of the block, routed as in a worker but kept instead of written; this
    process's logging configuration is restored afterwards."""
    root = logging.getLogger()
    handlers, level, config = root.handlers[:], root.level, structlog.get_config()
    kbt_log.configure()
    capture = _Capture()
    root.handlers = [capture]
    try:
        yield capture.records
    finally:
        root.handlers = handlers
        root.setLevel(level)
        structlog.configure(**config)


def preload(
    job: ResolvedJob, layout: Layout, scratch: Path, environment: Mapping[str, str]
) -> PreloadedModel | None:
    """The job's model loaded here, for forked workers; None when workers must load it themselves.

    ``environment`` is the workers' environment: the load runs under it, as in a worker.
    """
    if job.model.flavor not in CANDIDATE_FLAVORS:
        return None
    saved = dict(os.environ)
    os.environ.update(environment)
    try:
        local = fetch_model(job.model, scratch, s3_settings(job.spec))
        if not fork_safe(job.model, local):
            return None
        return _load_quietly(job, layout, scratch, local)
    except Exception:  # the workers load the model themselves and report the error as usual
        return None
    finally:
        os.environ.clear()
        os.environ.update(saved)


def _load_quietly(job: ResolvedJob, layout: Layout, scratch: Path, local: Path | None) -> PreloadedModel:
    """The job's model, loaded with its log records and warnings kept for the shard to replay
    where it would have loaded the model itself (its log reads as a spawned worker's)."""
    with _captured_log() as records, warnings.catch_warnings(record=True) as caught:
        predictor = load_model(job, layout, scratch, local)
    return PreloadedModel(predictor, tuple(records), tuple(caught))


def loads_early(job: ResolvedJob) -> bool:
    """Whether workers may be forked before the job is planned, to import their framework and
    load the model while this process lists the inputs and plans: models no worker shares
    (not ``CANDIDATE_FLAVORS``), and not scoring scripts (their init() may expect a planned job),
    while ``may_fork_unloaded``."""
    return job.model.flavor not in (*CANDIDATE_FLAVORS, Flavor.CUSTOM) and may_fork_unloaded()


class Gate:
    """Holds a worker forked before its job was planned (``loads_early``): the worker loads its
    model, then waits until this process opens the gate (the plan is stored) or shuts it
    (planning failed: the worker exits)."""

    def __init__(self) -> None:
        self._read, self._write = os.pipe()
        _UNOPENED.add(self)

    def open(self) -> None:
        self._release(b"1")

    def shut(self) -> None:
        self._release(b"0")

    def _release(self, word: bytes) -> None:
        _UNOPENED.discard(self)
        try:
            os.write(self._write, word)
        except BrokenPipeError:  # the worker died while loading: its exit code tells
            pass
        finally:
            os.close(self._write)

    @staticmethod
    def in_child() -> None:
        """In a new worker: let go of every gate's write end (each worker waits on its own gate;
        holding another's would keep that one from ever reading the end of a dead parent)."""
        for gate in _UNOPENED:
            os.close(gate._write)

    def in_parent(self) -> None:
        os.close(self._read)

    def wait(self) -> bool:
        """In the worker: True once the gate opens, False when it was shut."""
        opened = os.read(self._read, 1) == b"1"  # b"" once the parent died
        os.close(self._read)
        return opened


_UNOPENED: set[Gate] = set()  # gates of this process not yet opened or shut


def _early_load(job_path: Path, scratch: Path) -> PreloadedModel | None:
    """In a worker forked before planning: its model, or None (the shard then loads it itself
    and reports any error as usual)."""
    try:
        job = ResolvedJob.load(job_path)
        return _load_quietly(job, layout_for(job), scratch, None)
    except Exception:
        return None


def may_fork_unloaded() -> bool:
    """Whether a worker forked from this process, to load its model itself, is as safe as a
    spawned one: this process has not imported any of ``FRAMEWORKS``."""
    return not any(name in sys.modules for name in FRAMEWORKS)


class ForkedProcess:
    """A forked worker, polled like ``subprocess.Popen``: ``returncode`` is negative for a signal."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def wait(self) -> int:
        if self.returncode is None:
            _, status = os.waitpid(self.pid, 0)
            self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode


def fork_worker(
    argv: Sequence[str],
    environment: Mapping[str, str],
    log_path: Path,
    preloaded: PreloadedModel | None,
    gate: tuple[Gate, Path] | None = None,
) -> tuple[ForkedProcess, IO[str]]:
    """Fork a worker running ``python -m kbt.runner argv`` with ``preloaded`` (None: the worker
    loads the model; only when ``may_fork_unloaded``); returns it and its stdout (stderr goes to
    ``log_path``). With ``gate`` (the gate and the job file), the worker loads the job's model
    first and starts the shard once the gate opens."""
    if preloaded is None and not may_fork_unloaded():
        raise RuntimeError(f"cannot fork a worker: this process imported one of {', '.join(FRAMEWORKS)}")
    read_end, write_end = os.pipe()
    log_fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        os.close(read_end)
        Gate.in_child()
        _worker(argv, environment, write_end, log_fd, preloaded, gate=gate)
    os.close(write_end)
    os.close(log_fd)
    if gate is not None:
        gate[0].in_parent()
    return ForkedProcess(pid), os.fdopen(read_end, "r")


def _worker(
    argv: Sequence[str],
    environment: Mapping[str, str],
    stdout: int,
    stderr: int,
    preloaded: PreloadedModel | None,
    *,
    gate: tuple[Gate, Path] | None,
) -> NoReturn:
    code = int(ExitCode.UNEXPECTED)
    early_scratch: Path | None = None
    try:
        os.dup2(stdout, 1)
        os.dup2(stderr, 2)
        os.close(stdout)
        os.close(stderr)
        # New stream objects: another thread of the parent may have held the old ones' locks.
        sys.stdout = open(1, "w", buffering=1, closefd=False)  # noqa: SIM115 (lives until _exit)
        sys.stderr = open(2, "w", buffering=1, closefd=False)  # noqa: SIM115 (lives until _exit)
        os.environ.clear()
        os.environ.update(environment)
        # As ``python -m kbt.runner argv`` sees them (libraries may read sys.argv; -m puts the
        # working directory first on sys.path, where model code may be).
        sys.argv = [str(runner_entry.__file__), *argv]
        if os.getcwd() not in sys.path:
            sys.path.insert(0, os.getcwd())
        planned = True
        if gate is not None:
            early_scratch = scratch_dir()
            preloaded = _early_load(gate[1], early_scratch)
            planned = gate[0].wait()  # shut: planning failed, and the parent reports it
        code = runner_entry.main(list(argv), preloaded=preloaded) if planned else int(ExitCode.STOPPED)
    except BaseException:
        traceback.print_exc()
    finally:
        if early_scratch is not None:
            shutil.rmtree(early_scratch, ignore_errors=True)
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)
