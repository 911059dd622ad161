"""In-pod start-up: a heart shard in kbt/runner-tabular vs a minimal script in the same image.

The shard runs exactly as the operator's shard pod would (`tests/image/shard_pods`: the Job
builder's command, env, user, read-only root filesystem and volumes, `docker run --network host`)
on a one-record input, against a loopback S3 (moto on 127.0.0.1). The baseline is the smallest
program that does the same work in the same container: import MLflow, load the same model from
the same S3, predict the one record, print it. Both are timed from `docker run` to the first
prediction (the shard's `.out` object appearing in S3; the baseline's printed line) and to the
container's exit; median of --repeat runs, then the ratio (goal: shard <= 1.2x the baseline).

    make bench-image        # rebuilds kbt/runner-tabular first (layer cache), then runs this
    .venv/bin/python bench/image_bench.py [--image kbt/runner-tabular:VERSION] [--repeat 3]
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

import boto3
from moto.server import ThreadedMotoServer

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "heart-classifier"
sys.path[:0] = [str(REPO / "tests" / "image"), str(EXAMPLE)]
import demo  # noqa: E402 (the example's manifest, needs sys.path)
import prepare  # noqa: E402 (the example's training code, needs sys.path)
from shard_pods import S3_SECRET, ShardPod, shard_pod, with_output  # noqa: E402 (tests/image)

DOCKER = os.environ.get("DOCKER", "docker")
ONE_RECORD_PREFIX = "heart-one/"
GOAL_RATIO = 1.2
POLL_SECONDS = 0.02
# The baseline: what any program serving this model in this image must do, and nothing more.
MINIMAL_SCRIPT = """
import io, sys
import mlflow.pyfunc, pandas
model = mlflow.pyfunc.load_model("s3://models/heart/")
record = pandas.read_csv(io.StringIO(sys.argv[1]), dtype={"thal": str})
print(model.predict(record).tolist(), flush=True)
"""


@dataclass(frozen=True)
class Timing:
    first_prediction: float
    exit: float


def free_port() -> int:
    return int(demo.free_port())


def s3_client(endpoint: str) -> Any:
    return boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")


def stage(endpoint: str, work: Path) -> tuple[list[dict[str, Any]], str]:
    """Model and inputs on the loopback S3; returns the one-record manifest and its CSV text."""
    prepare.prepare(work=work, s3_endpoint=endpoint)
    first = sorted((work / "data").glob("*.csv"))[0].read_text().splitlines()
    one_record = "\n".join(first[:2]) + "\n"  # header and the first record
    client = s3_client(endpoint)
    client.put_object(Bucket="data", Key=f"{ONE_RECORD_PREFIX}one.csv", Body=one_record.encode())
    client.create_bucket(Bucket="results")
    job, model = demo.job_manifest(endpoint)
    job["spec"]["transformInput"]["dataSource"]["s3DataSource"]["s3Uri"] = f"s3://data/{ONE_RECORD_PREFIX}"
    return [job, model], one_record


def timed_run(arguments: Sequence[str], prediction_written: Callable[[list[str]], bool]) -> Timing:
    """Run `docker run ARGUMENTS`; time to `prediction_written(output lines so far)`, and to exit."""
    started = time.perf_counter()
    process = subprocess.Popen(
        [DOCKER, "run", *arguments], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    output: list[str] = []

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            output.append(line)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    seen: float | None = None
    while seen is None and process.poll() is None:
        if prediction_written(output):
            seen = time.perf_counter() - started
        else:
            time.sleep(POLL_SECONDS)
    process.wait()
    ended = time.perf_counter() - started
    reader.join()
    if seen is None and prediction_written(output):
        seen = ended  # written between the last poll and the exit
    if process.returncode != 0 or seen is None:
        raise SystemExit(
            f"image_bench: `docker run` of {arguments[-1][:80]!r} exited {process.returncode} "
            f"without a prediction:\n{''.join(output)[-3000:]}"
        )
    return Timing(first_prediction=seen, exit=ended)


def shard_run(endpoint: str, manifest: list[dict[str, Any]], image: str, work: Path, run: int) -> Timing:
    prefix = f"shard-{run}"
    pod = shard_pod(with_output(manifest, prefix), {"KBT_RUNNER_TABULAR_IMAGE": image}, work / prefix)
    check_one_shard(pod, image)
    client = s3_client(endpoint)

    def written(_: list[str]) -> bool:
        listing = client.list_objects_v2(Bucket="results", Prefix=f"{prefix}/")
        return any(item["Key"].endswith(".out") for item in listing.get("Contents", []))

    return timed_run(pod.run_arguments(0), written)


def baseline_run(manifest: list[dict[str, Any]], one_record: str, image: str, work: Path, run: int) -> Timing:
    """The minimal script in the shard pod's container (same user, env, volumes), its command swapped."""
    prefix = f"baseline-{run}"
    pod = shard_pod(with_output(manifest, prefix), {"KBT_RUNNER_TABULAR_IMAGE": image}, work / prefix)

    def printed(output: list[str]) -> bool:
        return any(line.startswith("[") for line in output)

    return timed_run(pod.run_arguments(0, ["python", "-c", MINIMAL_SCRIPT, one_record]), printed)


def check_one_shard(pod: ShardPod, image: str) -> None:
    if pod.completions != 1 or pod.image != image:
        raise SystemExit(f"image_bench: expected 1 shard of {image}, got {pod.completions} of {pod.image}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image", default=f"kbt/runner-tabular:{version('kbt')}")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    inspect = subprocess.run([DOCKER, "image", "inspect", args.image], capture_output=True, check=False)
    if inspect.returncode != 0:
        raise SystemExit(f"image_bench: image {args.image} is not built (make image-runner-tabular)")
    os.environ.update({**S3_SECRET, "AWS_DEFAULT_REGION": "us-east-1"})
    port = free_port()
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # moto's server logs every request
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    try:
        with tempfile.TemporaryDirectory(prefix="kbt-image-bench-") as folder:
            work = Path(folder)
            print(f"staging the heart model and a one-record input on {endpoint} ...", flush=True)
            manifest, one_record = stage(endpoint, work / "heart")
            shard, baseline = [], []
            for run in range(args.repeat):
                shard.append(shard_run(endpoint, manifest, args.image, work, run))
                baseline.append(baseline_run(manifest, one_record, args.image, work, run))
                print(
                    f"run {run + 1}/{args.repeat}: shard {shard[-1].first_prediction:.2f} s "
                    f"(exit {shard[-1].exit:.2f} s), minimal script {baseline[-1].first_prediction:.2f} s "
                    f"(exit {baseline[-1].exit:.2f} s)",
                    flush=True,
                )
    finally:
        server.stop()
    report(args.image, shard, baseline)
    return 0


def report(image: str, shard: list[Timing], baseline: list[Timing]) -> None:
    print(f"\n{image}, from docker run, median of {len(shard)}:")
    first = statistics.median(t.first_prediction for t in shard)
    first_baseline = statistics.median(t.first_prediction for t in baseline)
    exit_ = statistics.median(t.exit for t in shard)
    exit_baseline = statistics.median(t.exit for t in baseline)
    verdict = "met" if first <= GOAL_RATIO * first_baseline else "NOT met"
    print(
        f"  first prediction: kbt shard {first:.2f} s, minimal script {first_baseline:.2f} s, "
        f"ratio {first / first_baseline:.2f}x (goal <= {GOAL_RATIO}x: {verdict})"
    )
    print(
        f"  container exit:   kbt shard {exit_:.2f} s, minimal script {exit_baseline:.2f} s, "
        f"ratio {exit_ / exit_baseline:.2f}x"
    )


if __name__ == "__main__":
    sys.exit(main())
