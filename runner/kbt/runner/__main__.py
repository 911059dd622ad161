"""The shard command line: ``kbt shard`` and ``python -m kbt.runner`` (what ``kbt run`` starts).

``kbt shard --job /etc/kbt/job.json`` is the pod command (the shard index comes from
``JOB_COMPLETION_INDEX``); ``kbt run`` starts ``python -m kbt.runner`` with ``--index``,
``--shards`` and ``--split-bytes``, which skips importing the rest of the ``kbt`` CLI. Both run
``shard_main``; with ``KBT_PROGRESS_STREAM=1`` the progress reports also go to stdout as
``KBT-PROGRESS {json}`` lines for the parent.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from kbt.runner.progress import ProgressSink, StreamSink
from kbt.runner.shard import PreloadedModel, shard_main
from kbt.settings import RunnerSettings


def parser(prog: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description=(
            "Run one shard of a resolved job; the exit code and termination message say why it stopped."
        ),
    )
    parser.add_argument(
        "--job", type=Path, required=True, help="ResolvedJob JSON (the operator mounts /etc/kbt/job.json)."
    )
    parser.add_argument("--index", type=int, help="Shard index (default: JOB_COMPLETION_INDEX).")
    parser.add_argument("--shards", type=int, help="Shards of the plan (default: the job's shard count).")
    parser.add_argument(
        "--split-bytes", type=int, help="Split objects larger than this (default: KBT_SPLIT_SIZE_MB)."
    )
    return parser


def main(
    argv: Sequence[str] | None = None,
    prog: str = "python -m kbt.runner",
    preloaded: PreloadedModel | None = None,
) -> int:
    """Run the shard the arguments name; ``preloaded``: a forked ``kbt run`` worker's model."""
    args = parser(prog).parse_args(argv)
    sinks: list[ProgressSink] = [StreamSink(sys.stdout)] if RunnerSettings.from_env().progress_stream else []
    return shard_main(
        args.job, args.index, sinks, shards=args.shards, split_bytes=args.split_bytes, preloaded=preloaded
    )


if __name__ == "__main__":
    sys.exit(main())
