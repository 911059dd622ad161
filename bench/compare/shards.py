"""Run N ``kbt shard`` processes at once, as an Indexed Job's pods do.

    python -m bench.compare.shards JOB N


Standard library only, so the launcher adds no import time to what the harness measures.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

KBT = str(Path(sys.executable).with_name("kbt"))


def main() -> None:
    job, count = sys.argv[1], int(sys.argv[2])
    shards = [
        subprocess.Popen([KBT, "shard", "--job", job, "--index", str(index)], stdout=sys.stderr)
        for index in range(count)
    ]
    failed = [index for index, shard in enumerate(shards) if shard.wait() != 0]
    if failed:
        raise SystemExit(f"kbt shard failed for indexes {failed}")


if __name__ == "__main__":
    main()
