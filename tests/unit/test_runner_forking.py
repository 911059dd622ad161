"""What lets ``kbt run`` fork a worker before its load, and the thread share each worker gets."""

from __future__ import annotations

import os
import subprocess
import sys
import types
from pathlib import Path

import pytest

from kbt.api import podenv
from kbt.runner import forking, local


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
