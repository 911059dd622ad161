"""One matplotlib PNG per workload: kbt's time against each baseline's, labelled with the ratio."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.compare.summary import Row, label, ratio


def _pyplot() -> Any:
    import matplotlib  # noqa: PLC0415 (heavy: only when plotting)

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415 (heavy: only when plotting)

    return plt


def _time_bars(plt: Any, rows: Sequence[Row], all_rows: Sequence[Row], title: str, timeout_s: float) -> Any:
    """Horizontal bars of median seconds (whiskers: min–max), kbt green, each baseline labelled
    with kbt's ratio against it."""
    figure, axis = plt.subplots(figsize=(10, 0.42 * len(rows) + 1.6))
    names = [f"{r.variant}: {label(r)}" for r in rows]
    medians = [r.median_s for r in rows]
    whiskers = [[r.median_s - r.low_s for r in rows], [r.high_s - r.median_s for r in rows]]
    colors = ["tab:green" if r.contender.startswith("kbt") else "tab:gray" for r in rows]
    axis.barh(names, medians, xerr=whiskers, color=colors)
    first = rows[0].workload == "first-prediction"
    for index, row in enumerate(rows):
        measured = ratio(all_rows, row, timeout_s)
        if measured.value is None:
            text = f"{row.median_s:.1f} s"
        elif first:
            text = f"{row.median_s:.1f} s; kbt ÷ this: {measured.text()}"
        else:
            text = f"{row.median_s:.1f} s; kbt speed-up {measured.text()}"
        axis.annotate(text, (row.high_s, index), xytext=(4, 0), textcoords="offset points", va="center")
    axis.invert_yaxis()
    axis.set_xlim(0, max(r.high_s for r in rows) * 1.6)
    axis.set_xlabel("seconds, fresh process start to exit (median; whiskers min–max)")
    axis.set_title(title)
    figure.tight_layout()
    return figure


def _memory_plot(plt: Any, rows: Sequence[Row]) -> Any:
    figure, axis = plt.subplots(figsize=(7, 4))
    for contender in dict.fromkeys(r.contender for r in rows):
        chosen = [r for r in rows if r.contender == contender]
        sizes = [int(r.variant.split("(")[1].split()[0].replace(",", "")) for r in chosen]
        axis.plot(sizes, [r.rss_mb for r in chosen], marker="o", label=label(chosen[0]))
    axis.set_xscale("log")
    axis.set_xlabel("input rows")
    axis.set_ylabel("peak RSS of the process tree, MiB")
    axis.set_ylim(0, max(r.rss_mb for r in rows) * 1.2)
    axis.set_title("peak memory against input size")
    axis.grid(alpha=0.3)
    axis.legend()
    figure.tight_layout()
    return figure


def plot_workloads(rows: Sequence[Row], out_dir: Path, timeout_s: float) -> list[Path]:
    plt = _pyplot()
    written: list[Path] = []
    for workload in dict.fromkeys(r.workload for r in rows):
        chosen = [r for r in rows if r.workload == workload and r.runs]
        if not chosen:
            continue
        if workload == "scale":
            figure = _memory_plot(plt, chosen)
        else:
            kbt = "kbt run" if workload != "first-prediction" else "kbt run vs minimal script"
            title = f"{workload}: {kbt}, time (lower is better)"
            figure = _time_bars(plt, chosen, rows, title, timeout_s)
        path = out_dir / f"{workload}.png"
        figure.savefig(path, dpi=110)
        plt.close(figure)
        written.append(path)
    return written
