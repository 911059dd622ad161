"""``python -m bench.compare``: run the comparison benchmark and write bench/results/."""

from __future__ import annotations

import argparse
import json
import shlex
import signal
import sys
import tempfile
import time
from pathlib import Path

from bench.compare.harness import Harness
from bench.compare.plan import CONTENDERS, WORKLOADS, choose_plan
from bench.compare.report import write_report

RESULTS = Path(__file__).resolve().parents[1] / "results"


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.compare", description=__doc__)
    parser.add_argument(
        "--quick", action="store_true", help="tiny sizes, one repetition (also KBT_BENCH_QUICK=1)"
    )
    parser.add_argument("--rows", type=int, help="tabular rows, e.g. 10000000 (default 1,000,000)")
    parser.add_argument("--mnist-images", type=int, help="MNIST PNGs (default 20,000)")
    parser.add_argument("--resnet-images", type=int, help="ResNet-50 JPEGs (default 96)")
    parser.add_argument("--docs", type=int, help="billsum documents (default 400)")
    parser.add_argument("--repeats", type=int, help="repetitions per contender (default 3)")
    parser.add_argument("--workers", type=int, help="workers / actors / requests in flight (default 2)")
    parser.add_argument(
        "--local-tabular",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="also score the tabular files from local disk (default: on, off with --quick)",
    )
    parser.add_argument("--workloads", help=f"comma-separated subset of {','.join(WORKLOADS)}")
    parser.add_argument("--contenders", help=f"comma-separated subset of {','.join(CONTENDERS)}")
    parser.add_argument(
        "--work-dir", type=Path, help="where data, models and outputs go (default: a temp dir)"
    )
    parser.add_argument("--results-dir", type=Path, default=RESULTS, help="where latest.md and PNGs go")
    return parser.parse_args(argv)


def _subset(text: str | None, known: tuple[str, ...], what: str) -> tuple[str, ...] | None:
    if text is None:
        return None
    chosen = tuple(part.strip() for part in text.split(",") if part.strip())
    unknown = [c for c in chosen if c not in known]
    if unknown:
        raise SystemExit(f"unknown {what}: {', '.join(unknown)} (known: {', '.join(known)})")
    return chosen


def _exit_on_sigterm(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)  # unwinds the context managers: servers and moto stop


def main(argv: list[str] | None = None) -> Path:
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    args = parse_args(sys.argv[1:] if argv is None else argv)
    plan = choose_plan(
        args.quick,
        rows=args.rows,
        mnist_images=args.mnist_images,
        resnet_images=args.resnet_images,
        docs=args.docs,
        repeats=args.repeats,
        workers=args.workers,
        local_tabular=args.local_tabular,
        workloads=_subset(args.workloads, WORKLOADS, "workloads"),
        contenders=_subset(args.contenders, CONTENDERS, "contenders"),
    )
    args.results_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="kbt-bench-") as scratch:
        harness = Harness(plan, args.work_dir or Path(scratch))
        harness.run()
        harness.save(args.results_dir / "latest.json")
    data = json.loads((args.results_dir / "latest.json").read_text())
    command = "python -m bench.compare " + shlex.join(sys.argv[1:] if argv is None else argv)
    report = write_report(data, args.results_dir, command, time.perf_counter() - started)
    print(f"wrote {report}")
    return report


if __name__ == "__main__":
    main()
