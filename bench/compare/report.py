"""Turn measurements into bench/results/latest.md (tables, goal verdicts) and PNG plots."""

from __future__ import annotations

import math
import os
import platform
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

GOALS: dict[str, dict[str, float]] = {  # workload -> contender -> minimum kbt-run speed ratio
    "tabular": {"http": 5.0, "ray": 1.0, "ceiling": 0.7},
    "mnist": {"ray": 1.0, "ceiling": 0.8},
    "resnet50": {"ray": 1.0, "ceiling": 0.8},
    "text": {"ray": 1.0, "ceiling": 0.8},
}
# The HTTP server and the ceiling load their model before the clock starts; kbt's own timings
# include its model load. `<kbt>-loaded` is kbt's time after the load (from its progress reports),
# the like-for-like figure for those two.
LOADED_SUFFIX = "-loaded"
LOADED_GOALS = ("http", "ceiling")
FLAT_MEMORY = 1.5  # kbt peak RSS at 100x input may be at most this multiple of the 1x RSS
LABELS = {
    "kbt-run": "kbt run --workers N",
    "kbt-shards": "kbt shard x N (Job pods)",
    "kbt-run-loaded": "kbt run, after model load",
    "kbt-shards-loaded": "kbt shard x N, after model load",
    "ceiling": "ceiling: predict loop in memory",
    "http": "HTTP /invocations",
    "ray": "Ray Data map_batches",
    "pandas": "plain pandas script",
}


@dataclass(frozen=True)
class Row:
    workload: str
    variant: str
    contender: str
    runs: int
    median_s: float
    low_s: float
    high_s: float
    throughput: float  # records per second at the median
    rss_mb: float
    records_ok: bool
    error: str


def summarize(measurement: dict[str, Any]) -> Row:
    seconds: list[float] = measurement["seconds"]
    expected = measurement["expected_records"]
    median = statistics.median(seconds) if seconds else float("nan")
    return Row(
        workload=measurement["workload"],
        variant=measurement["variant"],
        contender=measurement["contender"],
        runs=len(seconds),
        median_s=median,
        low_s=min(seconds, default=float("nan")),
        high_s=max(seconds, default=float("nan")),
        throughput=expected / median if seconds else 0.0,
        rss_mb=max(measurement["peak_rss_mb"], default=float("nan")),
        records_ok=measurement["records"] == expected,
        error=measurement["error"],
    )


def _find(rows: Sequence[Row], workload: str, variant: str, contender: str) -> Row | None:
    """The contender's row for this variant; the ceiling falls back to the workload's first one."""
    for row in rows:
        if (row.workload, row.variant, row.contender) == (workload, variant, contender) and row.runs:
            return row
    if contender == "ceiling":
        return next((r for r in rows if r.workload == workload and r.contender == contender and r.runs), None)
    return None


def ratio(rows: Sequence[Row], row: Row, kbt: str = "kbt-run") -> float | None:
    """How many times faster kbt is than `row` (throughput ratio); None if either is missing."""
    mine = _find(rows, row.workload, row.variant, kbt)
    if mine is None or not row.runs or not row.throughput:
        return None
    return mine.throughput / row.throughput


def _fmt(value: float | None, pattern: str = "{:.2f}") -> str:
    return "–" if value is None or math.isnan(value) else pattern.format(value)


def results_table(rows: Sequence[Row], workload: str) -> list[str]:
    lines = [
        "| input | contender | runs | median s | spread s (min–max) | records/s | peak RSS MiB "
        "| kbt run ÷ this | ok |",
        "|---|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for row in (r for r in rows if r.workload == workload):
        status = (
            f"FAILED: {row.error[:120]}"
            if row.error
            else ("yes" if row.records_ok else "record count differs")
        )
        lines.append(
            f"| {row.variant} | {LABELS.get(row.contender, row.contender)} | {row.runs} "
            f"| {_fmt(row.median_s)} "
            f"| {_fmt(row.low_s)}–{_fmt(row.high_s)} | {_fmt(row.throughput, '{:,.0f}')} "
            f"| {_fmt(row.rss_mb, '{:,.0f}')} "
            f"| {_fmt(ratio(rows, row), '{:.2f}x')} | {status} |"
        )
    return lines


def goal_lines(rows: Sequence[Row]) -> list[str]:
    lines = ["| workload | input | goal | measured | met |", "|---|---|---|---:|---|"]
    for workload, goals in GOALS.items():
        for variant in dict.fromkeys(r.variant for r in rows if r.workload == workload):
            for contender, target in goals.items():
                kbts = ["kbt-run", *(["kbt-run" + LOADED_SUFFIX] if contender in LOADED_GOALS else [])]
                for kbt in kbts:
                    other = _find(rows, workload, variant, contender)
                    value = None if other is None else ratio(rows, other, kbt)
                    verdict = "–" if value is None else ("MET" if value >= target else "MISSED")
                    who = "kbt" if kbt == "kbt-run" else "kbt after model load"
                    lines.append(
                        f"| {workload} | {variant} | {who} ≥ {target}x {contender} "
                        f"| {_fmt(value, '{:.2f}x')} | {verdict} |"
                    )
    kbt_scale = [
        r
        for r in rows
        if r.workload == "scale" and r.contender == "kbt-run" and r.runs and "rows" in r.variant
    ]
    if len(kbt_scale) >= 2:
        growth = kbt_scale[-1].rss_mb / kbt_scale[0].rss_mb
        verdict = "MET" if growth <= FLAT_MEMORY else "MISSED"
        lines.append(
            f"| scale | {kbt_scale[0].variant} → {kbt_scale[-1].variant} | kbt peak RSS ≤ {FLAT_MEMORY}x "
            f"as input grows 100x | {growth:.2f}x | {verdict} |"
        )
    return lines


def plot(rows: Sequence[Row], out_dir: Path) -> list[Path]:
    import matplotlib  # noqa: PLC0415 (heavy: only when plotting)

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415 (heavy: only when plotting)

    written: list[Path] = []
    for workload in dict.fromkeys(r.workload for r in rows if r.workload != "scale"):
        chosen = [r for r in rows if r.workload == workload and r.runs]
        if not chosen:
            continue
        figure, axis = plt.subplots(figsize=(9, 0.35 * len(chosen) + 1.5))
        labels = [f"{r.variant}: {r.contender}" for r in chosen]
        errors = [
            [r.throughput - r.throughput * r.median_s / r.high_s for r in chosen],
            [r.throughput * r.median_s / r.low_s - r.throughput for r in chosen],
        ]
        colors = ["tab:green" if r.contender.startswith("kbt") else "tab:gray" for r in chosen]
        axis.barh(labels, [r.throughput for r in chosen], xerr=errors, color=colors)
        axis.invert_yaxis()
        axis.set_xlabel("records per second (median, bars: min–max)")
        axis.set_title(f"{workload}: throughput")
        figure.tight_layout()
        path = out_dir / f"{workload}.png"
        figure.savefig(path, dpi=110)
        plt.close(figure)
        written.append(path)
    scale = [r for r in rows if r.workload == "scale" and r.runs]
    if scale:
        figure, (size_axis, rss_axis, worker_axis) = plt.subplots(1, 3, figsize=(14, 4))
        for contender in dict.fromkeys(r.contender for r in scale):
            by_size = [r for r in scale if r.contender == contender and "rows" in r.variant]
            by_workers = [r for r in scale if r.contender == contender and r.variant.endswith("workers")]
            if by_size:
                sizes = [int(r.variant.split("(")[1].split()[0].replace(",", "")) for r in by_size]
                size_axis.plot(sizes, [r.throughput for r in by_size], marker="o", label=contender)
                rss_axis.plot(sizes, [r.rss_mb for r in by_size], marker="o", label=contender)
            if by_workers:
                workers = [int(r.variant.split()[0]) for r in by_workers]
                worker_axis.plot(workers, [r.throughput for r in by_workers], marker="o", label=contender)
        for axis, title, ylabel in (
            (size_axis, "throughput vs input rows", "records/s"),
            (rss_axis, "peak RSS vs input rows", "MiB"),
            (worker_axis, "throughput vs workers", "records/s"),
        ):
            axis.set_title(title)
            axis.set_ylabel(ylabel)
            axis.legend()
            axis.grid(alpha=0.3)
        size_axis.set_xscale("log")
        rss_axis.set_xscale("log")
        worker_axis.set_xlabel("workers")
        size_axis.set_xlabel("rows")
        rss_axis.set_xlabel("rows")
        figure.tight_layout()
        path = out_dir / "scaling.png"
        figure.savefig(path, dpi=110)
        plt.close(figure)
        written.append(path)
    return written


def write_report(data: dict[str, Any], out_dir: Path, command: str, elapsed_s: float) -> Path:
    rows = [summarize(m) for m in data["measurements"]]
    plots = plot(rows, out_dir)
    plan = data["plan"]
    lines = [
        "# kbt benchmark: kbt vs HTTP invocations, Ray Data, pandas and the in-memory ceiling",
        "",
        f"Command: `{command}` — took {elapsed_s / 60:.1f} min. Machine: {platform.machine()}, "
        f"{_cpus()} CPUs, Python {platform.python_version()}.",
        "",
        f"Sizes: {plan['rows']:,} tabular rows in {plan['files']} files; "
        f"{plan['mnist_images']:,} MNIST PNGs; "
        f"{plan['resnet_images']:,} ResNet-50 JPEGs; {plan['docs']:,} billsum documents. "
        f"{plan['repeats']} repetitions per contender ({plan['scale_repeats']} in the scale workload), "
        f"contender order rotated each repetition; {plan['workers']} workers unless stated.",
        "",
        "What is timed: **kbt** the whole `kbt run` / shard processes (start-up and model load included); "
        "**ceiling** only the predict loop over mini-batches already decoded in memory; **pandas** the "
        "script from model load to the last write; **HTTP** the client (read, payloads of at most "
        "maxPayloadInMB, N requests in flight, write) against an already running server; **Ray** the "
        "Dataset (read, map_batches on an ActorPoolStrategy of N actors, write) after `ray.init`. "
        "Peak RSS is the whole process tree (the model server's included for HTTP).",
        "",
        "Servers: " + "; ".join(f"{w}: `{d}`" for w, d in data.get("servers", {}).items()),
        "",
        "## Goals (kbt run throughput ÷ contender throughput, same run)",
        "",
        *goal_lines(rows),
        "",
    ]
    for workload in dict.fromkeys(r.workload for r in rows):
        lines += [f"## {workload}", "", *results_table(rows, workload), ""]
        if (out_dir / f"{workload}.png").exists():
            lines += [f"![{workload}]({workload}.png)", ""]
    if (out_dir / "scaling.png") in plots:
        lines += ["![scaling](scaling.png)", ""]
    path = out_dir / "latest.md"
    path.write_text("\n".join(lines))
    return path


def _cpus() -> int:
    return len(os.sched_getaffinity(0))
