"""Small, fast batch jobs for the chaos and bad-input suites: CSV inputs, a custom scoring script.

``make_job`` writes a model folder (an Azure-style ``score.py``), and returns the ResolvedJob a
shard process reads; ``output_files`` reads back what a job wrote (local folder or S3 prefix),
leaving out the runner's own bookkeeping so two runs can be compared byte for byte.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chaos.bad_inputs import good_csv
from kbt.api.models import BatchTransformJob, Model
from kbt.api.resolved import ResolvedJob, resolve_job

SCORE_PY = """\
def init():
    pass


def run(mini_batch):
    return (mini_batch["f0"] * 2 + mini_batch["f1"] - mini_batch["f2"]).tolist()
"""
BOOKKEEPING = ("_kbt/", "_manifest.json")
REPO = Path(__file__).resolve().parents[2]


def write_model(root: Path, script: str = SCORE_PY) -> Path:
    """A custom-flavor model folder holding `score.py`."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "score.py").write_text(script)
    return root


def write_small_inputs(root: Path) -> dict[str, int]:
    """Several small CSV objects and one big enough to be split at 8 KiB; returns rows per object."""
    rows = {"a.csv": 40, "b.csv": 3, "nested/c.csv": 25, "big.csv": 2500}
    start = 0
    for name, count in rows.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(good_csv(count, start=start))
        start += count
    return rows


def job_document(name: str, input_uri: str, output_uri: str, model_dir: Path, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "kbt.dev/v1alpha1",
        "kind": "BatchTransformJob",
        "metadata": {"name": name, "namespace": "chaos", "uid": f"uid-{name}"},
        "spec": {
            "model": {"uri": str(model_dir), "flavor": "custom", "scoringScript": "score.py"},
            "transformInput": {
                "contentType": "text/csv",
                "splitType": "Line",
                "dataSource": {"s3DataSource": {"s3Uri": input_uri}},
            },
            "transformOutput": {"s3OutputPath": output_uri},
            "transformResources": {"instanceCount": 1, "instanceType": "ml.m5.large"},
            "miniBatchSize": 50,
            "errorThreshold": -1,  # Azure-style: bad records go to _errors/, never fail the job
            **spec,
        },
    }


def make_job(path: Path, doc: dict[str, Any], models: dict[str, Model] | None = None) -> ResolvedJob:
    """Resolve `doc` and write it to `path` as a shard process reads it."""
    resolved = resolve_job(BatchTransformJob.model_validate(doc), models or {})
    resolved.dump(path)
    return resolved


@dataclass
class ShardRun:
    returncode: int
    termination: str
    log: str
    peak_rss_mib: float = 0.0  # the shard process's own peak resident set


def run_shard_process(
    job_path: Path,
    index: int,
    shards: int,
    split_bytes: int,
    env: dict[str, str] | None = None,
    timeout: float = 120,
) -> ShardRun:
    """`python -m kbt.runner` for one shard, as `kbt run` starts it; its exit code, reason and peak RSS."""
    termination = job_path.with_name(f"termination-{index}-{os.getpid()}.txt")
    termination.unlink(missing_ok=True)
    full_env = {
        **os.environ,
        "KBT_TERMINATION_LOG": str(termination),
        "KBT_LOG_FORMAT": "json",
        **(env or {}),
    }
    full_env.pop("JOB_COMPLETION_INDEX", None)
    command = [sys.executable, "-m", "kbt.runner", "--job", str(job_path), "--index", str(index),
               "--shards", str(shards), "--split-bytes", str(split_bytes)]  # fmt: skip
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=full_env,
        cwd=job_path.parent,
    )
    output: list[str] = []
    reader = threading.Thread(target=lambda: output.append(process.stdout.read() if process.stdout else ""))
    reader.start()
    peak = _PeakRss(process.pid)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        raise
    finally:
        peak.stop()
        reader.join()
    reason = termination.read_text().strip() if termination.exists() else ""
    return ShardRun(process.returncode, reason, "".join(output), peak.mib)


class _PeakRss(threading.Thread):
    """Samples a child's VmHWM while it runs. Not ru_maxrss: that starts at the forking parent's
    RSS (kept across exec), so a big test process would be counted as the shard's."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.status, self.mib, self._done = Path(f"/proc/{pid}/status"), 0.0, threading.Event()
        self.start()

    def run(self) -> None:
        while not self._done.wait(0.05):
            try:
                line = next(x for x in self.status.read_text().splitlines() if x.startswith("VmHWM:"))
            except (OSError, StopIteration):
                continue  # exiting or a zombie: the last sample stands
            self.mib = max(self.mib, int(line.split()[1]) / 1024)

    def stop(self) -> None:
        self._done.set()
        self.join()


def local_output_files(root: Path) -> dict[str, bytes]:
    """Relative path -> bytes of every file a job wrote under `root`, bookkeeping left out."""
    found = {}
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root).as_posix()
        if path.is_file() and not relative.startswith(BOOKKEEPING):
            found[relative] = path.read_bytes()
    return found


def s3_output_files(client: Any, bucket: str, prefix: str) -> dict[str, bytes]:
    """Like `local_output_files` for an S3 prefix (which ends with '/')."""
    found = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            relative = item["Key"][len(prefix) :]
            if not relative.startswith(BOOKKEEPING):
                found[relative] = client.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
    return found
