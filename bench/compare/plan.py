"""Benchmark sizes and goals: the full run (`make bench`, under 20 min on 2 cores) and `--quick`."""

from __future__ import annotations

import os
from dataclasses import dataclass, replace

WORKLOADS = ("first-prediction", "tabular", "heart-example", "mnist", "resnet50", "text", "scale")
CONTENDERS = ("kbt-run", "kbt-shards", "pandas", "ray", "http")
DEFAULT_CONTENDERS = ("kbt-run", "pandas", "ray", "http")
FIRST_FLAVORS = ("sklearn", "xgboost", "mlflow-sklearn", "torch", "keras", "hf")

# Minimum speed-up of `kbt run` over each baseline (baseline time ÷ kbt time), per goal group.
SPEEDUP_GOALS: dict[str, dict[str, float]] = {
    "tabular": {"pandas": 1.5, "ray": 3.0},
    "tabular-big": {"pandas": 2.0},
    "heart-example": {"pandas": 1.5},
    "mnist": {"pandas": 1.0, "ray": 2.0},
    "resnet50": {"pandas": 1.0, "ray": 2.0},
    "text": {"pandas": 1.0, "ray": 2.0},
}
FIRST_PREDICTION_GOAL = 1.2  # kbt run time ÷ minimal script time, at most
FLAT_MEMORY = 1.5  # kbt peak RSS at 100x input may be at most this multiple of the 1x RSS


@dataclass(frozen=True)
class Plan:
    quick: bool = False
    rows: int = 1_000_000  # tabular rows (the 100x point of the scale workload)
    big_rows: int = 10_000_000  # second tabular size, kbt against pandas only (0: skip)
    example_rows: int = 1_000_000  # rows the heart example job scores
    files: int = 8  # tabular input files
    mnist_images: int = 5_000
    resnet_images: int = 32
    docs: int = 96
    repeats: int = 3  # end-to-end repetitions per contender (the tables give the median)
    first_repeats: int = 5  # time-to-first-prediction repetitions (median: ~1.5 s runs vary by 20%)
    single_repeats: int = 2  # repetitions of the long runs: big tabular, heart example, scale
    workers: int = 2
    tabular_batch: int = 5_000
    image_batch: int = 256
    resnet_batch: int = 16
    text_batch: int = 8
    first_flavors: tuple[str, ...] = FIRST_FLAVORS
    ray_workloads: tuple[str, ...] = ("tabular", "mnist", "resnet50", "text")
    http_workloads: tuple[str, ...] = ("tabular",)  # one image per request is impractical at size
    s3: bool = False  # also score the tabular CSV from a moto S3
    run_timeout_s: float = 600  # a contender run past this is stopped and reported as such
    workloads: tuple[str, ...] = WORKLOADS
    contenders: tuple[str, ...] = DEFAULT_CONTENDERS


QUICK = Plan(
    quick=True,
    rows=3_000,
    big_rows=0,
    example_rows=3_000,
    files=2,
    mnist_images=60,
    resnet_images=4,
    docs=4,
    repeats=1,
    first_repeats=1,
    single_repeats=1,
    tabular_batch=500,
    image_batch=32,
    resnet_batch=4,
    text_batch=4,
    ray_workloads=(),  # Ray's start alone is 15-20 s: the smoke run keeps HTTP as the one extra baseline
    run_timeout_s=120,
)


def choose_plan(quick: bool, **overrides: object) -> Plan:
    """The full or quick plan (KBT_BENCH_QUICK=1 also selects quick), with overrides applied."""
    quick = quick or os.environ.get("KBT_BENCH_QUICK", "") not in ("", "0")
    base = QUICK if quick else Plan()
    return replace(base, **{k: v for k, v in overrides.items() if v is not None})  # type: ignore[arg-type]
