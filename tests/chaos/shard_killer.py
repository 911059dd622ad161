"""Kill shards with SIGKILL at seeded random points, rerun them, and report what each trial left.

Run as ``python -m chaos.shard_killer SPEC.json`` (``tests/`` on ``sys.path``). The process
imports the runner once and then forks every shard process from itself, so a trial costs a fork,
not an interpreter start. Per trial it plans a fresh output folder, starts every shard at once,
kills one of them (the *victim*) either right before or right after its k-th storage write (a
crash between an output and its done-marker, mid-finalization, ...) or after a random delay
(mid-read, mid-predict), lets the others finish, reruns the victim until it exits, and writes
one JSON result line per trial. The test compares each trial's outputs with a clean run's.
"""

from __future__ import annotations

import json
import os
import random
import signal
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from kbt.api.resolved import ResolvedJob
from kbt.runner.shard import shard_main
from kbt.storage import LocalStore

WRITE_METHODS = ("put", "put_file", "compose", "delete")


@dataclass
class TrialResult:
    trial: int
    output: str
    victim: int
    mode: str  # "write" (k-th storage write) or "time"
    point: str  # where the kill was aimed
    killed: bool  # whether the victim actually died by SIGKILL
    exit_codes: list[int]  # final exit code of every shard (after reruns)


def _count_writes(counter_file: Path, kill_at: int | None, after: bool) -> None:
    """Wrap the local store's writes: count them, and SIGKILL this process at write `kill_at`."""
    state = {"writes": 0}

    def wrap(name: str) -> None:
        original = getattr(LocalStore, name)

        def wrapper(self: LocalStore, *args: Any, **kwargs: Any) -> Any:
            state["writes"] += 1
            counter_file.write_text(str(state["writes"]))
            if kill_at == state["writes"] and not after:
                os.kill(os.getpid(), signal.SIGKILL)
            result = original(self, *args, **kwargs)
            if kill_at == state["writes"] and after:
                os.kill(os.getpid(), signal.SIGKILL)
            return result

        setattr(LocalStore, name, wrapper)

    for name in WRITE_METHODS:
        wrap(name)


def _fork_shard(
    job: Path,
    index: int,
    shards: int,
    split: int,
    counter: Path,
    kill_at: int | None = None,
    after: bool = False,
) -> int:
    pid = os.fork()
    if pid == 0:  # the shard process
        code = 1
        try:
            os.environ["KBT_TERMINATION_LOG"] = str(counter.with_suffix(".termination"))
            _count_writes(counter, kill_at, after)
            code = shard_main(job, index, shards=shards, split_bytes=split)
        finally:
            os._exit(code)
    return pid


def _wait(pid: int) -> int:
    """Exit code, or -signal when killed."""
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def _job_for(base: ResolvedJob, output: Path, work: Path) -> Path:
    job = base.model_copy(deep=True)
    job.spec.transformOutput.s3OutputPath = str(output) + "/"
    path = work / "job.json"
    job.dump(path)
    return path


def clean_run(base: ResolvedJob, root: Path, shards: int, split: int) -> tuple[list[int], list[float]]:
    """Every shard once, no faults: write counts and durations per shard."""
    work = root / "clean"
    work.mkdir(parents=True)
    job = _job_for(base, work / "out", work)
    started, pids = time.monotonic(), {}
    for index in range(shards):
        pids[index] = _fork_shard(job, index, shards, split, work / f"writes-{index}")
    durations, codes = [], []
    for pid in pids.values():
        codes.append(_wait(pid))
        durations.append(time.monotonic() - started)
    if any(codes):
        raise SystemExit(f"clean run failed: exit codes {codes}; see {work}")
    return [int((work / f"writes-{i}").read_text()) for i in range(shards)], durations


def trial(
    base: ResolvedJob,
    root: Path,
    number: int,
    seed: int,
    shards: int,
    split: int,
    writes: list[int],
    durations: list[float],
) -> TrialResult:
    rng = random.Random(f"{seed}-{number}")
    work = root / f"trial-{number:03d}"
    work.mkdir(parents=True)
    output = work / "out"
    job = _job_for(base, output, work)
    victim = rng.randrange(shards)
    mode = rng.choice(["write", "time"])
    kill_at, after, delay = None, False, 0.0
    if mode == "write":
        kill_at, after = rng.randint(1, writes[victim]), rng.random() < 0.5
        point = f"{'after' if after else 'before'} write {kill_at}/{writes[victim]}"
    else:
        delay = rng.uniform(0.0, 0.8 * durations[victim])
        point = f"after {delay:.3f}s of {durations[victim]:.3f}s"
    pids = {}
    for index in range(shards):
        counter = work / f"writes-{index}"
        pids[index] = _fork_shard(
            job, index, shards, split, counter, kill_at if index == victim else None, after
        )
    if mode == "time":
        time.sleep(delay)
        os.kill(pids[victim], signal.SIGKILL)
    codes = {index: _wait(pid) for index, pid in pids.items()}
    killed = codes[victim] == -signal.SIGKILL
    for _ in range(3):  # rerun whatever did not finish (a kill after the last write still counts)
        for index in [i for i, code in codes.items() if code != 0]:
            codes[index] = _wait(_fork_shard(job, index, shards, split, work / f"rerun-writes-{index}"))
    return TrialResult(number, str(output), victim, mode, point, killed, [codes[i] for i in range(shards)])


def main() -> int:
    spec = json.loads(Path(sys.argv[1]).read_text())
    root = Path(spec["workdir"])
    base = ResolvedJob.load(Path(spec["job"]))
    shards, split = int(spec["shards"]), int(spec["split_bytes"])
    writes, durations = clean_run(base, root, shards, split)
    with Path(spec["results"]).open("w") as results:
        results.write(json.dumps({"clean": str(root / "clean" / "out"), "writes": writes}) + "\n")
        for number in range(int(spec["trials"])):
            result = trial(base, root, number, int(spec["seed"]), shards, split, writes, durations)
            results.write(json.dumps(asdict(result)) + "\n")
            results.flush()
    return 0


if __name__ == "__main__":
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    sys.exit(main())
