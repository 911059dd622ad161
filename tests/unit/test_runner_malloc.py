"""``kbt.runner.malloc``: a shard keeps freed memory for its next model call instead of faulting
it in again; a user's own ``MALLOC_*`` settings are left alone."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from kbt.runner.malloc import keep_freed_memory

# Allocate and free 20 blocks of 4 MiB ten times (a model call's buffers); print the page faults.
CYCLES = """
import resource, sys
from kbt.runner.malloc import keep_freed_memory
applied = keep_freed_memory() if sys.argv[1] == "tuned" else None
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(10):
    blocks = [bytearray(4 << 20) for _ in range(20)]
    del blocks
print(applied, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _faults(mode: str, **env: str) -> tuple[str, int]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("MALLOC_", "GLIBC_TUNABLES"))}
    out = subprocess.run(
        [sys.executable, "-c", CYCLES, mode], env={**clean, **env}, capture_output=True, text=True, check=True
    ).stdout.split()
    return out[0], int(out[1])


def test_freed_blocks_are_kept_for_the_next_call() -> None:
    applied, tuned = _faults("tuned")
    _, default = _faults("default")
    assert applied == "True"
    assert tuned < default / 2  # the default hands the blocks back and faults them in again


def test_a_users_malloc_settings_win(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MALLOC_ARENA_MAX", "2")
    assert keep_freed_memory() is False
    assert _faults("tuned", MALLOC_ARENA_MAX="2")[0] == "False"
