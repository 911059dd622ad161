"""Train the heart classifier (same model as examples/heart-classifier) and stage Parquet inputs.

The four unlabeled CSV files become Parquet files in ``work/data/`` (``thal`` kept as a string
column, dirty values included), the MLflow model goes to ``work/model/``; with
``--s3-endpoint`` both are uploaded to ``s3://data/heart-parquet/`` and ``s3://models/heart-parquet/``.

    python examples/heart-classifier-parquet/prepare.py [--s3-endpoint URL]
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from staging import dataset, fresh_dir, run, upload_tree  # noqa: E402

WORK = HERE / "work"


def heart_example() -> ModuleType:
    """examples/heart-classifier/prepare.py, which trains and saves the model."""
    path = HERE.parent / "heart-classifier" / "prepare.py"
    spec = importlib.util.spec_from_file_location("heart_classifier_prepare", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def stage_parquet(sources: list[Path], data_dir: Path) -> list[Path]:
    """One Parquet file per CSV, same rows and columns; `thal` stays text even where it is `1`."""
    fresh_dir(data_dir)
    staged = []
    for source in sources:
        target = data_dir / f"{source.stem}.parquet"
        pd.read_csv(source, dtype={"thal": str}).to_parquet(target, index=False)
        staged.append(target)
    return staged


def prepare(work: Path = WORK, s3_endpoint: str | None = None) -> float:
    """Train and save the model, stage Parquet inputs (and upload them); returns hold-out accuracy."""
    heart = heart_example()
    features, labels = heart.load_training(dataset("heart") / "train" / "heart.csv")
    pipeline, accuracy = heart.train(features, labels)
    heart.save_model(pipeline, features, work / "model")
    stage_parquet(sorted((dataset("heart") / "unlabeled").glob("*.csv")), work / "data")
    if s3_endpoint:
        upload_tree(work / "data", "s3://data/heart-parquet/", s3_endpoint)
        upload_tree(work / "model", "s3://models/heart-parquet/", s3_endpoint)
    return float(accuracy)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--s3-endpoint", help="also upload inputs and model to this S3 endpoint")
    args = parser.parse_args()
    accuracy = prepare(s3_endpoint=args.s3_endpoint)
    print(f"hold-out accuracy: {accuracy:.3f}")
    print(f"model: {WORK / 'model'}   inputs: {WORK / 'data'}")


if __name__ == "__main__":
    run(main)
