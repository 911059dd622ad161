"""``python -m kbt.runner --job job.json --index N``: the shard process ``kbt run`` starts.

It runs exactly what ``kbt shard`` runs (``shard_main``); with ``KBT_PROGRESS_STREAM=1`` it also
writes its progress reports as ``KBT-PROGRESS {json}`` lines on stdout for the parent.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from kbt.runner.progress import ProgressSink, StreamSink
from kbt.runner.shard import shard_main


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m kbt.runner")
    parser.add_argument("--job", type=Path, required=True)
    parser.add_argument("--index", type=int)
    parser.add_argument("--shards", type=int)
    parser.add_argument("--split-bytes", type=int)
    args = parser.parse_args()
    sinks: list[ProgressSink] = (
        [StreamSink(sys.stdout)] if os.environ.get("KBT_PROGRESS_STREAM") == "1" else []
    )
    return shard_main(args.job, args.index, sinks, shards=args.shards, split_bytes=args.split_bytes)


if __name__ == "__main__":
    sys.exit(main())
