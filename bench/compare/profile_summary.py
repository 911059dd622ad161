"""Summarise a `py-spy record -f raw` profile: share of samples per process and per function.

    py-spy record --subprocesses -r 50 -f raw -o kbt.raw -- kbt run job.yaml --workers 1
    python -m bench.compare.profile_summary kbt.raw --match kbt/ --match skops/

Inclusive shares: a function counts once per sample whose stack holds it (so callers include
their callees); line numbers are dropped so a function is one entry.
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path

LINE_NUMBER = re.compile(r":\d+\)")


def summarise(path: Path, matches: list[str], top: int) -> list[str]:
    total = 0
    by_process: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        count = int(count_text)
        total += count
        frames = [LINE_NUMBER.sub(")", frame) for frame in stack.split(";")]
        processes = [frame for frame in frames if frame.startswith("process ")]
        by_process[processes[-1][:100] if processes else "?"] += count
        for frame in set(frames):
            if any(m in frame for m in matches) and "importlib" not in frame:
                inclusive[frame] += count
    lines = [f"{total} samples"]
    lines += [f"{n / total:6.1%}  {name}" for name, n in by_process.most_common()]
    lines += [f"{n / total:6.1%}  {name[:150]}" for name, n in inclusive.most_common(top)]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("profile", type=Path)
    parser.add_argument("--match", action="append", default=None, help="path fragment of frames to list")
    parser.add_argument("--top", type=int, default=40)
    args = parser.parse_args()
    print("\n".join(summarise(args.profile, args.match or ["kbt/"], args.top)))


if __name__ == "__main__":
    main()
