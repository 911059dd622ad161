"""Runner throughput: `kbt run --workers 2` vs an in-process baseline on a 1M-row heart CSV.

Trains the heart classifier of examples/heart-classifier (scikit-learn + XGBoost, MLflow
format), writes a heart-style CSV of ``--rows`` rows (sampled from the training features), then:

* baseline: in this process, model already loaded: ``pd.read_csv`` -> ``model.predict`` ->
  write one prediction per line;
* kbt: ``kbt run job.yaml --workers 2`` (CSV split into ``--split-mb`` work items).

Prints records/s of both, the ratio (goal >= 0.7) for kbt's pipeline rate (after model load,
from the shards' progress reports) and for its end-to-end wall time, and peak RSS.

    .venv/bin/python bench/runner_bench.py [--rows 1000000] [--workers 2] [--split-mb 8]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from kbt.datasets import DatasetNotFoundError, dataset_root

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "examples" / "heart-classifier"


def build_model(work: Path, training: Path) -> tuple[Path, pd.DataFrame]:
    sys.path[:0] = [str(EXAMPLE)]
    import prepare  # noqa: PLC0415 (example's training code, needs sys.path)

    features, labels = prepare.load_training(training)
    pipeline, _ = prepare.train(features, labels)
    model_dir = work / "model"
    prepare.save_model(pipeline, features, model_dir)
    return model_dir, features


def write_rows(features: pd.DataFrame, rows: int, path: Path) -> None:
    rng = np.random.default_rng(0)
    sample = features.iloc[rng.integers(0, len(features), rows)]
    sample.to_csv(path, index=False)


def baseline(model_dir: Path, data: Path, out: Path) -> float:
    import mlflow.pyfunc  # noqa: PLC0415 (heavy: mlflow costs seconds)

    model = mlflow.pyfunc.load_model(str(model_dir))
    started = time.perf_counter()
    frame = pd.read_csv(data, dtype={"thal": str})
    predictions = np.asarray(model.predict(frame))
    out.write_text("\n".join(map(str, predictions.tolist())) + "\n")
    return time.perf_counter() - started


def descendants(root: int) -> list[int]:
    """``root`` and every process below it (from /proc)."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            parents[int(stat.parent.name)] = int(fields[1])
        except (OSError, IndexError, ValueError):
            continue
    found, frontier = [root], [root]
    while frontier:
        frontier = [pid for pid, parent in parents.items() if parent in frontier]
        found.extend(frontier)
    return found


def peak_rss_mib(pid: int) -> float:
    """VmHWM (peak resident set) of a live process, in MiB; 0 when it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def kbt_job(data: Path, model_dir: Path, output: Path) -> dict[str, object]:
    return {
        "apiVersion": "kbt.dev/v1alpha1",
        "kind": "BatchTransformJob",
        "metadata": {"name": "runner-bench"},
        "spec": {
            "model": {
                "uri": str(model_dir),
                "flavor": "mlflow",
                "environment": [{"name": "MLFLOW_ALLOW_PICKLE_DESERIALIZATION", "value": "true"}],
            },
            "transformInput": {
                "contentType": "text/csv",
                "splitType": "Line",
                "dataSource": {"s3DataSource": {"s3Uri": f"{data.parent}/"}},
            },
            "transformOutput": {"s3OutputPath": str(output)},
            "transformResources": {"instanceType": "ml.m5.large"},
            "miniBatchSize": 5000,
            "maxPayloadInMB": 0,
        },
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--split-mb", type=float, default=8.0)
    args = parser.parse_args()
    try:
        training = dataset_root("heart") / "heart" / "train" / "heart.csv"
    except DatasetNotFoundError as exc:
        raise SystemExit(f"bench/runner_bench.py: {exc}") from None
    work = Path(tempfile.mkdtemp(prefix="kbt-runner-bench-"))
    model_dir, features = build_model(work, training)
    data = work / "data" / "heart.csv"
    data.parent.mkdir()
    write_rows(features, args.rows, data)
    print(f"data: {data} ({data.stat().st_size / 2**20:.1f} MiB, {args.rows} rows); model: {model_dir}")

    base_seconds = baseline(model_dir, data, work / "baseline.out")
    base_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    base_rate = args.rows / base_seconds

    manifest = work / "job.yaml"
    manifest.write_text(yaml.safe_dump(kbt_job(data, model_dir, work / "out")))
    kbt = Path(sys.executable).with_name("kbt")
    started = time.perf_counter()
    command = [
        str(kbt),
        "run",
        str(manifest),
        "--workers",
        str(args.workers),
        "--split-size-mb",
        str(args.split_mb),
    ]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    kbt_rss = 0.0
    while process.poll() is None:
        kbt_rss = max(kbt_rss, max((peak_rss_mib(pid) for pid in descendants(process.pid)), default=0.0))
        time.sleep(0.5)
    _, stderr = process.communicate()
    wall = time.perf_counter() - started
    if process.returncode != 0:
        print(stderr[-3000:], file=sys.stderr)
        return process.returncode
    progress = [
        json.loads(p.read_text()) for p in sorted((work / "out" / "_kbt" / "progress").glob("*.json"))
    ]
    pipeline_rate = sum(p["recordsPerSecond"] for p in progress)
    records = sum(p["recordsProcessed"] for p in progress)
    same = (work / "baseline.out").read_text().split() == (work / "out" / "heart.csv.out").read_text().split()

    print(
        f"baseline (in-process read_csv -> predict -> write): {base_rate:12,.0f} records/s  "
        f"({base_seconds:.1f} s)"
    )
    print(f"kbt run --workers {args.workers} pipeline (after model load):   {pipeline_rate:12,.0f} records/s")
    print(
        f"kbt run --workers {args.workers} end to end (incl. startup):    "
        f"{records / wall:12,.0f} records/s  ({wall:.1f} s)"
    )
    print(f"ratio pipeline/baseline: {pipeline_rate / base_rate:.2f}   (goal >= 0.7)")
    print(f"ratio end-to-end/baseline: {records / wall / base_rate:.2f}")
    print(f"peak RSS: baseline {base_rss:.0f} MiB, largest kbt process {kbt_rss:.0f} MiB")
    print(f"predictions identical to the baseline: {same}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
