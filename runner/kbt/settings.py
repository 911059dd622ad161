"""The runner's settings: every ``KBT_*`` variable a shard process reads, parsed in one place.

``RunnerSettings.from_env()`` reads ``os.environ`` (names in ``kbt.api.podenv``) into a frozen
record and names the variable of a bad value. It is cheap and reads the environment as it is when
asked, so a ``kbt run`` worker or a test that sets a variable sees it. The shard index
(``JOB_COMPLETION_INDEX``/``KBT_SHARD_MAP``) is read by ``kbt.api.shardmap.shard_index``, and
``KBT_S3_ATTEMPTS`` by ``kbt.storage.settings`` (``kbt.api.models`` imports that module, so it
cannot import this one).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from kbt.api import podenv
from kbt.api.exitcodes import TERMINATION_LOG

Number = TypeVar("Number", int, float)


class SettingsError(ValueError):
    """A ``KBT_*`` variable has a value kbt cannot use."""


def env_number(
    env: Mapping[str, str],
    name: str,
    default: Number,
    kind: type[Number],
    *,
    error: type[SettingsError] = SettingsError,
    expected: str = "",
) -> Number:
    """Variable ``name`` as a non-negative ``kind``, ``default`` when unset or empty (also used by
    the operator's configuration, with its own ``error``); ``expected`` describes a good value."""
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = kind(raw)
    except ValueError:
        expected = expected or ("an integer" if kind is int else "a number")
        raise error(f"{name}={raw!r}: expected {expected}") from None
    if value < 0:
        raise error(f"{name}={raw!r}: must not be negative")
    return value


@dataclass(frozen=True)
class RunnerSettings:
    log_format: str = "console"  # KBT_LOG_FORMAT: console | json (checked by kbt.log.configure)
    log_level: str = "INFO"  # KBT_LOG_LEVEL
    scratch_dir: Path | None = None  # KBT_SCRATCH_DIR
    progress_configmap: str | None = None  # KBT_PROGRESS_CONFIGMAP (set in pods)
    namespace: str | None = None  # KBT_NAMESPACE (set in pods)
    progress_interval: float = 5.0  # KBT_PROGRESS_INTERVAL, seconds
    progress_stream: bool = False  # KBT_PROGRESS_STREAM=1 (kbt run workers)
    termination_log: Path = Path(TERMINATION_LOG)  # KBT_TERMINATION_LOG
    split_size_mb: float = 64.0  # KBT_SPLIT_SIZE_MB

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> RunnerSettings:
        env = os.environ if env is None else env
        scratch = env.get(podenv.SCRATCH_DIR, "").strip()
        return cls(
            log_format=(env.get(podenv.LOG_FORMAT, "").strip() or "console").lower(),
            log_level=(env.get(podenv.LOG_LEVEL, "").strip() or "INFO").upper(),
            scratch_dir=Path(scratch) if scratch else None,
            progress_configmap=env.get(podenv.PROGRESS_CONFIGMAP) or None,
            namespace=env.get(podenv.NAMESPACE) or None,
            progress_interval=env_number(env, podenv.PROGRESS_INTERVAL, 5.0, float),
            progress_stream=env.get(podenv.PROGRESS_STREAM) == "1",
            termination_log=Path(env.get(podenv.TERMINATION_LOG) or TERMINATION_LOG),
            split_size_mb=env_number(env, podenv.SPLIT_SIZE_MB, 64.0, float),
        )
