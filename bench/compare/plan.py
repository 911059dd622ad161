"""Benchmark sizes: the full run (`make bench`, ~15-20 min on 2 cores) and the quick smoke run."""

from __future__ import annotations

import os
from dataclasses import dataclass, replace

WORKLOADS = ("tabular", "mnist", "resnet50", "text", "scale")
CONTENDERS = ("kbt-run", "kbt-shards", "ceiling", "http", "ray", "pandas")


@dataclass(frozen=True)
class Plan:
    rows: int = 1_000_000  # tabular rows (the 100x point of the scale workload)
    files: int = 8  # tabular input files
    mnist_images: int = 20_000
    resnet_images: int = 96
    docs: int = 400
    repeats: int = 3
    scale_repeats: int = 1
    workers: int = 2
    tabular_batch: int = 5_000
    image_batch: int = 256
    resnet_batch: int = 16
    text_batch: int = 8
    worker_counts: tuple[int, ...] = (1, 2, 4)
    local_tabular: bool = True  # also score the tabular files from local disk
    workloads: tuple[str, ...] = WORKLOADS
    contenders: tuple[str, ...] = CONTENDERS


QUICK = Plan(
    rows=3_000,
    files=2,
    mnist_images=60,
    resnet_images=4,
    docs=8,
    repeats=1,
    tabular_batch=500,
    image_batch=32,
    resnet_batch=4,
    text_batch=4,
    worker_counts=(1, 2),
    local_tabular=False,
)


def choose_plan(quick: bool, **overrides: object) -> Plan:
    """The full or quick plan (KBT_BENCH_QUICK=1 also selects quick), with overrides applied."""
    quick = quick or os.environ.get("KBT_BENCH_QUICK", "") not in ("", "0")
    base = QUICK if quick else Plan()
    return replace(base, **{k: v for k, v in overrides.items() if v is not None})  # type: ignore[arg-type]
