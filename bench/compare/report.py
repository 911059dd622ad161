"""Turn measurements into latest.md (environment, goal verdicts, tables) and one PNG per workload."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.compare.plan import FLAT_MEMORY
from bench.compare.plots import plot_workloads
from bench.compare.summary import KBT, Ratio, Row, fmt, kbt_row, label, ratio, summarize

TITLES = {
    "tabular": "Tabular end to end (heart MLflow model, CSV)",
    "heart-example": "The heart example job as shipped (miniBatchSize 50, default workers)",
    "mnist": "Images end to end: MNIST MLP (PyTorch) on PNGs",
    "resnet50": "Images end to end: ResNet-50 (PyTorch, random weights) on JPEGs",
    "text": "Text end to end: BART summarizer (Transformers, small random weights)",
}
STARTUP = (
    "Every time is a fresh process from its start to its exit: interpreter start, imports and "
    "model load included"
)


def verdict(row: Row, measured: Ratio) -> str:
    if row.goal is None:
        return "no goal (reference)"
    if measured.value is None:
        return "–"
    if row.workload == "first-prediction":
        return "MET" if measured.value <= row.goal and not measured.bound else "MISSED"
    return "MET" if measured.value >= row.goal and not measured.bound else "MISSED"


def _goal_text(row: Row) -> str:
    if row.goal is None:
        return "–"
    return f"≤ {row.goal}x" if row.workload == "first-prediction" else f"≥ {row.goal}x"


def _status(row: Row) -> str:
    if row.error:
        return f"FAILED: {row.error[:120]}"
    return "yes" if row.records_ok else "record count differs"


def bytecode_short(environment: dict[str, Any]) -> str:
    """ "bytecode cached", "bytecode partly cached" or "no cached bytecode", for every table."""
    cached = environment.get("bytecode_cached", {})
    have = sum(cached.values())
    if cached and have == len(cached):
        return "bytecode cached"
    return "bytecode partly cached" if have else "no cached bytecode"


def bytecode_state(environment: dict[str, Any]) -> str:
    """The header's account: which probed modules have `.pyc` files, and whether new ones are written."""
    cached: dict[str, bool] = environment.get("bytecode_cached", {})
    short = bytecode_short(environment)
    if short == "bytecode cached":
        state = f"{short} (`.pyc` present for {', '.join(cached)})"
    elif short == "bytecode partly cached":
        state = f"{short} (no `.pyc` for {', '.join(name for name, ok in cached.items() if not ok)})"
    else:
        state = f"{short}: every process compiles its modules from source"
    if environment.get("pythondontwritebytecode", "") not in ("", "0"):
        return f"{state}; PYTHONDONTWRITEBYTECODE=1: processes write no new `.pyc`"
    return f"{state}; processes may write `.pyc`"


def first_prediction_table(rows: Sequence[Row], cases: dict[str, str], timeout_s: float) -> list[str]:
    lines = [
        "| flavor | model | kbt run median s (min–max) | minimal script median s (min–max) "
        "| kbt ÷ script | goal | met | ok |",
        "|---|---|---:|---:|---:|---|---|---|",
    ]
    for script in (r for r in rows if r.workload == "first-prediction" and r.contender == "script"):
        kbt = kbt_row(rows, script)
        measured = ratio(rows, script, timeout_s)
        spans = [
            f"{fmt(r.median_s)} ({fmt(r.low_s)}–{fmt(r.high_s)})" if r.runs else f"FAILED: {r.error[:80]}"
            for r in (kbt, script)
            if r is not None
        ]
        ok = "yes" if kbt is not None and kbt.records_ok and script.records_ok else "record count differs"
        lines.append(
            f"| {script.variant} | {cases.get(script.variant, '')} | {' | '.join(spans)} "
            f"| {measured.text()} | {_goal_text(script)} | {verdict(script, measured)} | {ok} |"
        )
    return lines


def end_to_end_table(rows: Sequence[Row], workload: str, timeout_s: float) -> list[str]:
    lines = [
        "| input | contender | runs | median s | spread s (min–max) | records/s | peak RSS MiB "
        "| kbt speed-up (its time ÷ kbt's) | goal | met | ok |",
        "|---|---|---:|---:|---:|---:|---:|---:|---|---|---|",
    ]
    for row in (r for r in rows if r.workload == workload):
        measured = ratio(rows, row, timeout_s)
        lines.append(
            f"| {row.variant} | {label(row)} | {row.runs} | {fmt(row.median_s)} "
            f"| {fmt(row.low_s)}–{fmt(row.high_s)} | {fmt(row.records_per_s, '{:,.0f}')} "
            f"| {fmt(row.rss_mb, '{:,.0f}')} | {measured.text()} "
            f"| {_goal_text(row)} | {'' if row.contender == KBT else verdict(row, measured)} "
            f"| {_status(row)} |"
        )
    return lines


def memory_growth(rows: Sequence[Row]) -> float | None:
    kbt = [r for r in rows if r.workload == "scale" and r.contender == KBT and r.runs]
    return kbt[-1].rss_mb / kbt[0].rss_mb if len(kbt) >= 2 else None


def memory_table(rows: Sequence[Row]) -> list[str]:
    scale = [r for r in rows if r.workload == "scale"]
    lines = [
        "| input | contender | median s | records/s | peak RSS MiB | ok |",
        "|---|---|---:|---:|---:|---|",
    ]
    for row in scale:
        lines.append(
            f"| {row.variant} | {label(row)} | {fmt(row.median_s)} | {fmt(row.records_per_s, '{:,.0f}')} "
            f"| {fmt(row.rss_mb, '{:,.0f}')} | {_status(row)} |"
        )
    growth = memory_growth(rows)
    if growth is not None:
        met = _memory_verdict(growth)
        lines += [
            "",
            f"kbt peak RSS grows {growth:.2f}x from the smallest to the largest input "
            f"(goal ≤ {FLAT_MEMORY}x): {met}.",
        ]
    return lines


def _memory_verdict(growth: float) -> str:
    return "MET" if growth <= FLAT_MEMORY else "MISSED"


def goal_summary(rows: Sequence[Row], timeout_s: float) -> list[str]:
    lines = ["| workload | input | kbt against | goal | measured | met |", "|---|---|---|---|---:|---|"]
    for row in rows:
        if row.goal is None:
            continue
        measured = ratio(rows, row, timeout_s)
        lines.append(
            f"| {row.workload} | {row.variant} | {label(row)} | {_goal_text(row)} "
            f"| {measured.text()} | {verdict(row, measured)} |"
        )
    growth = memory_growth(rows)
    if growth is not None:
        met = _memory_verdict(growth)
        lines.append(
            f"| scale | 1x → 100x rows | its own peak RSS | ≤ {FLAT_MEMORY}x growth | {growth:.2f}x | {met} |"
        )
    return lines


def _load(env: dict[str, Any]) -> str:
    """The 1-minute load average at the start and end of the run: other work makes times noisy."""
    start, end = env.get("load_average_at_start", math.nan), env.get("load_average_1m", math.nan)
    text = f"Load average (1 min) at start / end: {start:.1f} / {end:.1f} on {env['usable_cores']} cores"
    if max(start, end) > env["usable_cores"] / 2:
        return text + ": other processes competed for the CPUs, so the times are noisy."
    return text + "."


def header(data: dict[str, Any], command: str, elapsed_s: float) -> list[str]:
    env, plan = data["environment"], data["plan"]
    packages = ", ".join(f"{name} {version}" for name, version in env["packages"].items())
    mode = (
        "**quick** (smoke-test sizes, one repetition, fewer baselines: the verdicts are not meaningful)"
        if plan["quick"]
        else "full"
    )
    lines = [
        "# kbt benchmark: time to first prediction and end to end, against what a user would run instead",
        "",
        f"- Date: {env['date']}; mode: {mode}; command: `{command}`; took {elapsed_s / 60:.1f} min.",
        f"- Machine: {env['cpu']}, {env['cores']} cores ({env['usable_cores']} usable), "
        f"{env['memory_gib']} GiB memory.",
        f"- Python {env['python']}; {packages}.",
        f"- Bytecode: {bytecode_state(env)}. (`make install` compiles it: `uv pip install "
        "--compile-bytecode`; an environment without `.pyc` files pays about 2 s more per process.)",
        f"- {_load(env)}",
        f"- Sizes: {plan['rows']:,} tabular rows ({plan['big_rows']:,} in the large run) in {plan['files']} "
        f"files, heart example on {plan['example_rows']:,} rows; {plan['mnist_images']:,} MNIST PNGs; "
        f"{plan['resnet_images']:,} JPEGs; {plan['docs']:,} billsum documents. {plan['workers']} workers, "
        f"actors or requests in flight unless stated; contender order rotated each repetition; each "
        "input is read once before its first run (no contender pays alone for a cold page cache); a run "
        f"past {plan['run_timeout_s']:.0f} s is stopped.",
        f"- {STARTUP}. HTTP: the run starts the model server (`mlflow models serve --env-manager local "
        "-w N` for the MLflow model, uvicorn with bench/compare/invocations_server.py otherwise), waits "
        "for /ping, sends the payloads and writes the responses: all included. Ray: `ray.init(num_cpus=2)` "
        "included. Peak RSS is the whole process tree (model server and Ray workers included).",
        "",
    ]
    for what, why in data.get("skipped", {}).items():
        lines.append(f"- Skipped {what}: {why}")
    return lines


def write_report(data: dict[str, Any], out_dir: Path, command: str, elapsed_s: float) -> Path:
    rows = [summarize(m) for m in data["measurements"]]
    timeout_s = float(data["plan"]["run_timeout_s"])
    bytecode = bytecode_short(data["environment"])
    plots = plot_workloads(rows, out_dir, timeout_s)
    lines = [*header(data, command, elapsed_s), "## Goals", "", *goal_summary(rows, timeout_s), ""]
    workloads = list(dict.fromkeys(r.workload for r in rows))
    if "first-prediction" in workloads:
        lines += [
            "## Time to first prediction",
            "",
            f"`kbt run` on a one-record input (local paths, its default workers) against a minimal script "
            f"that imports only the framework, loads the same model and predicts the record. {STARTUP}; "
            f"{bytecode}. Median of {data['plan']['first_repeats']}.",
            "",
            *first_prediction_table(rows, data.get("first_cases", {}), timeout_s),
            "",
        ]
    for workload in (w for w in workloads if w in TITLES):
        lines += [
            f"## {TITLES[workload]}",
            "",
            f"{STARTUP}; {bytecode}.",
            "",
            *end_to_end_table(rows, workload, timeout_s),
            "",
        ]
    if "scale" in workloads:
        lines += [
            "## Peak memory against input size",
            "",
            f"{STARTUP}; {bytecode}.",
            "",
            *memory_table(rows),
            "",
        ]
    lines += [f"![{path.stem}]({path.name})" for path in plots]
    path = out_dir / "latest.md"
    path.write_text("\n".join(lines) + "\n")
    return path
