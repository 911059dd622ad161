"""What a benchmark ran on: machine, Python and package versions, and whether bytecode was cached.

Start-up time depends on bytecode: without cached ``.pyc`` files (``uv pip install`` without
``--compile-bytecode``, with ``PYTHONDONTWRITEBYTECODE=1``) every process compiles its modules
from source. The report states which case it measured, from the modules' cache files.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

PACKAGES = {  # report name -> distribution names to try
    "kbt": ("kbt",),
    "torch": ("torch",),
    "tensorflow": ("tensorflow", "tensorflow-cpu"),
    "scikit-learn": ("scikit-learn",),
    "xgboost": ("xgboost",),
    "mlflow": ("mlflow", "mlflow-skinny"),
    "transformers": ("transformers",),
    "ray": ("ray",),
    "pandas": ("pandas",),
    "pyarrow": ("pyarrow",),
}
BYTECODE_PROBES = ("kbt", "kbt.runner.pipeline", "pandas", "sklearn", "torch", "mlflow", "transformers")


def _version(names: tuple[str, ...]) -> str:
    for name in names:
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return "not installed"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory_gib() -> float:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 1024**2
    except OSError:
        pass
    return float("nan")


def bytecode_cached() -> dict[str, bool]:
    """Per probe module (found without importing it): does its compiled ``.pyc`` exist?"""
    cached: dict[str, bool] = {}
    for name in BYTECODE_PROBES:
        try:
            spec = importlib.util.find_spec(name)
        except (ImportError, ValueError):
            continue
        if spec is None or spec.origin is None or not spec.origin.endswith(".py"):
            continue
        cached[name] = Path(importlib.util.cache_from_source(spec.origin)).is_file()
    return cached


def describe_environment() -> dict[str, Any]:
    return {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "cpu": _cpu_model(),
        "cores": os.cpu_count() or 0,
        "usable_cores": len(os.sched_getaffinity(0)),
        "memory_gib": round(_memory_gib(), 1),
        "python": f"{platform.python_version()} ({sys.executable})",
        "packages": {report: _version(names) for report, names in PACKAGES.items()},
        "load_average_1m": round(os.getloadavg()[0], 2),
        "pythondontwritebytecode": os.environ.get("PYTHONDONTWRITEBYTECODE", ""),
        "bytecode_cached": bytecode_cached(),
    }
