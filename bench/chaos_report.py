"""Run kbt's fault-injection and bad-input suites at full strength and print a summary table.

`make chaos` calls this. It runs pytest over the chaos suites (shard kills, S3 faults, operator
kills, disk full, out of memory) with the full trial counts, plus the bad-input, fuzz and security
tests, then prints per fault suite: trials, failed trials, output records lost and duplicated
(against a fault-free run), and the outcome counts of the other tests. Exit status is pytest's.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SUITES = [
    "tests/chaos",
    "tests/integration/test_badinput_*.py",
    "tests/unit/test_fuzz_*.py",
    "tests/unit/test_security_*.py",
    "tests/integration/test_security_*.py",
]


def _targets() -> list[str]:
    found: list[str] = []
    for pattern in SUITES:
        found += sorted(str(p.relative_to(REPO)) for p in REPO.glob(pattern))
    return found


def trial_table(results_file: Path) -> list[tuple[str, int, int, int, int]]:
    """(suite, trials, failures, lost, duplicated) per suite, from the trial JSON lines."""
    totals: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    if results_file.exists():
        for line in results_file.read_text().splitlines():
            trial = json.loads(line)
            row = totals[trial["suite"]]
            row[0] += 1
            row[1] += 0 if trial["ok"] else 1
            row[2] += trial["lost"]
            row[3] += trial["duplicated"]
    return [(suite, v[0], v[1], v[2], v[3]) for suite, v in sorted(totals.items())]


def outcome_counts(junit_file: Path) -> dict[str, dict[str, int]]:
    """passed/failed/skipped/xfailed counts per test file group, from pytest's JUnit XML."""
    outcomes: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    if not junit_file.exists():
        return outcomes
    for case in ET.parse(junit_file).iter("testcase"):
        parts = case.get("classname", "?").split(".")
        module_end = next((i for i, part in enumerate(parts) if part.startswith("test_")), len(parts) - 1)
        group = "/".join(parts[: module_end + 1])
        children = {child.tag: child for child in case}
        if "failure" in children or "error" in children:
            outcome = "failed"
        elif "skipped" in children:
            message = children["skipped"].get("type", "") + children["skipped"].get("message", "")
            outcome = "xfailed" if "xfail" in message else "skipped"
        else:
            outcome = "passed"
        outcomes[group][outcome] += 1
    return outcomes


def render(rows: list[tuple[str, int, int, int, int]], outcomes: dict[str, dict[str, int]]) -> str:
    header = f"{'fault suite':<28}{'trials':>8}{'failures':>10}{'data lost':>11}{'data duplicated':>17}"
    lines = ["", header, "-" * len(header)]
    lines += [
        f"{suite:<28}{trials:>8}{failed:>10}{lost:>11}{dup:>17}" for suite, trials, failed, lost, dup in rows
    ]
    if not rows:
        lines.append("(no trials recorded)")
    lines += ["", f"{'test group':<40}{'passed':>8}{'failed':>8}{'xfailed':>9}{'skipped':>9}"]
    for group, counts in sorted(outcomes.items()):
        lines.append(
            f"{group:<40}{counts['passed']:>8}{counts['failed']:>8}{counts['xfailed']:>9}{counts['skipped']:>9}"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="Use the normal test suite's trial counts.")
    parser.add_argument("pytest_args", nargs="*", help="Extra pytest arguments (after --).")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="kbt-chaos-") as tmp:
        results, junit = Path(tmp) / "trials.jsonl", Path(tmp) / "junit.xml"
        env = {**os.environ, "KBT_CHAOS_RESULTS": str(results), "KBT_CHAOS_FULL": "0" if args.quick else "1"}
        command = [
            sys.executable, "-m", "pytest", "-n", "2", "--dist", "loadgroup", "-p", "no:cacheprovider",
            f"--junitxml={junit}", "-o", "junit_family=xunit1", *_targets(), *args.pytest_args,
        ]  # fmt: skip
        returncode = subprocess.call(command, cwd=REPO, env=env)
        print(render(trial_table(results), outcome_counts(junit)))
    return returncode


if __name__ == "__main__":
    sys.exit(main())
