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
from bench.compare.plan import CONTENDERS, DEFAULT_CONTENDERS, FIRST_FLAVORS, WORKLOADS, choose_plan
from bench.compare.report import write_report

RESULTS = Path(__file__).resolve().parents[1] / "results"


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.compare", description=__doc__)
    parser.add_argument(
        "--quick", action="store_true", help="tiny sizes, one repetition (also KBT_BENCH_QUICK=1)"
    )
    parser.add_argument("--rows", type=int, help="tabular rows (default 1,000,000)")
    parser.add_argument(
        "--big-rows", type=int, help="large tabular run, kbt vs pandas (default 10,000,000; 0: skip)"
    )
    parser.add_argument("--example-rows", type=int, help="rows for the heart example job (default 1,000,000)")
    parser.add_argument("--mnist-images", type=int, help="MNIST PNGs (default 5,000)")
    parser.add_argument("--resnet-images", type=int, help="ResNet-50 JPEGs (default 32)")
    parser.add_argument("--docs", type=int, help="billsum documents (default 96)")
    parser.add_argument(
        "--repeats", type=int, help="end-to-end repetitions per contender (default 3; the long runs: 2)"
    )
    parser.add_argument("--first-repeats", type=int, help="time-to-first-prediction repetitions (default 5)")
    parser.add_argument("--workers", type=int, help="workers / actors / requests in flight (default 2)")
    parser.add_argument(
        "--s3",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="also score the tabular CSV from moto S3",
    )
    parser.add_argument(
        "--timeout", type=float, help="stop a contender run after this many seconds (default 600)"
    )
    parser.add_argument("--workloads", help=f"comma-separated subset of {','.join(WORKLOADS)}")
    parser.add_argument(
        "--contenders",
        help=f"comma-separated subset of {','.join(CONTENDERS)} (default {','.join(DEFAULT_CONTENDERS)})",
    )
    parser.add_argument("--first-flavors", help=f"comma-separated subset of {','.join(FIRST_FLAVORS)}")
    parser.add_argument(
        "--work-dir", type=Path, help="where data, models and outputs go (default: a temp dir)"
    )
    parser.add_argument(
        "--results-dir",
        type=Path,
        help="where latest.md, latest.json and the PNGs go (default bench/results, "
        "bench/results/quick with --quick, so a smoke run leaves the full results alone)",
    )
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
        big_rows=args.big_rows,
        example_rows=args.example_rows,
        mnist_images=args.mnist_images,
        resnet_images=args.resnet_images,
        docs=args.docs,
        repeats=args.repeats,
        first_repeats=args.first_repeats,
        workers=args.workers,
        s3=args.s3,
        run_timeout_s=args.timeout,
        workloads=_subset(args.workloads, WORKLOADS, "workloads"),
        contenders=_subset(args.contenders, CONTENDERS, "contenders"),
        first_flavors=_subset(args.first_flavors, FIRST_FLAVORS, "first-prediction flavors"),
    )
    results_dir: Path = args.results_dir or (RESULTS / "quick" if plan.quick else RESULTS)
    results_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="kbt-bench-") as scratch:
        harness = Harness(plan, args.work_dir or Path(scratch))
        harness.run()
        harness.save(results_dir / "latest.json")
    data = json.loads((results_dir / "latest.json").read_text())
    command = "python -m bench.compare " + shlex.join(sys.argv[1:] if argv is None else argv)
    report = write_report(data, results_dir, command, time.perf_counter() - started)
    print(f"wrote {report}")
    return report


if __name__ == "__main__":
    main()
