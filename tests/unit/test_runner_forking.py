"""What lets ``kbt run`` fork a worker before its load, and the thread share each worker gets."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import types
from pathlib import Path

import pytest

from kbt.api import podenv
from kbt.runner import forking, local
from kbt.runner.forking import Gate


def test_the_kbt_run_process_imports_no_framework() -> None:
    code = (
        "import sys, kbt.cli, kbt.cli_run, kbt.runner.local\n"
        "from kbt.runner.forking import FRAMEWORKS, may_fork_unloaded\n"
        "assert may_fork_unloaded(), [name for name in FRAMEWORKS if name in sys.modules]\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_no_fork_before_loading_once_a_framework_is_imported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "torch", types.ModuleType("torch"))
    assert not forking.may_fork_unloaded()
    with pytest.raises(RuntimeError, match="imported one of torch"):
        forking.fork_worker(["--job", "x"], {}, tmp_path / "shard.log", None)


def test_several_workers_share_the_cores_unless_the_user_set_threads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(os, "sched_getaffinity", lambda _: set(range(8)))
    for name in podenv.THREAD_LIMITS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    single = local._worker_environment(tmp_path / "t", 1)
    assert [name for name in podenv.THREAD_LIMITS if name in single] == ["OMP_NUM_THREADS"]
    shared = local._worker_environment(tmp_path / "t", 2)
    assert {name: shared[name] for name in podenv.THREAD_LIMITS} == {
        "OMP_NUM_THREADS": "3",  # the user's
        "MKL_NUM_THREADS": "4",
        "TF_NUM_INTRAOP_THREADS": "4",
        "TF_NUM_INTEROP_THREADS": "4",
    }
    assert local._worker_environment(tmp_path / "t", 16)["MKL_NUM_THREADS"] == "1"


def _child_waits_on(gate: Gate) -> int:
    """Fork a child that waits on ``gate`` and exits 1 when it opened, 0 when it was shut."""
    pid = os.fork()
    if pid == 0:
        Gate.in_child()
        os._exit(int(gate.wait()))
    gate.in_parent()
    return pid


@pytest.mark.parametrize(("release", "code"), [("open", 1), ("shut", 0)])
def test_a_gate_tells_its_worker_whether_the_plan_is_there(release: str, code: int) -> None:
    gate = Gate()
    pid = _child_waits_on(gate)
    getattr(gate, release)()
    assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == code


def test_opening_the_gate_of_a_worker_that_died_is_not_an_error() -> None:
    gate = Gate()
    pid = os.fork()
    if pid == 0:
        os._exit(0)  # dies before it waits
    gate.in_parent()
    os.waitpid(pid, 0)
    gate.open()  # the pipe has no reader any more


def _exit_code_within(pid: int, seconds: float) -> int | None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.02)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    return None


def test_a_dead_parent_lets_every_waiting_worker_go() -> None:
    first, second = Gate(), Gate()
    waiting = _child_waits_on(first)
    holder = _child_waits_on(second)  # forked with first's write end, which it must let go
    forking._UNOPENED.discard(first)
    os.close(first._write)  # as when this process dies: the end of the pipe, no word
    assert _exit_code_within(waiting, 10) == 0
    second.open()
    assert _exit_code_within(holder, 10) == 1
