"""Precision and recall of the churn predictions against the held-out labels.

Each ``<input>.out`` holds one prediction per input line, in order (SageMaker's contract), so
line i of ``customers-0.csv.out`` is customer i of ``work/labels/customers-0.csv``.

    python examples/customer-churn/report.py s3://churn/batch-transform/output/   (or a local folder)
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import boto3
import pandas as pd

LABELS = Path(__file__).resolve().parent / "work" / "labels"


@dataclass(frozen=True)
class Scores:
    customers: int
    true_positives: int
    predicted_positive: int
    actual_positive: int

    @property
    def precision(self) -> float:
        return self.true_positives / self.predicted_positive if self.predicted_positive else 0.0

    @property
    def recall(self) -> float:
        return self.true_positives / self.actual_positive if self.actual_positive else 0.0


def read_predictions(path: Path) -> pd.Series:
    """The predicted classes (0/1) of one output file, one per line."""
    values = pd.read_csv(path, header=None).iloc[:, 0]
    unexpected = sorted(set(values) - {0, 1})
    if unexpected:
        raise ValueError(f"{path.name}: expected class labels 0/1, found {unexpected[:5]}")
    return values.astype(int)


def download(s3_uri: str, target: Path) -> Path:
    """Copy the .out objects under an s3:// prefix (boto3's usual configuration) into target."""
    bucket, _, prefix = s3_uri.removeprefix("s3://").partition("/")
    client = boto3.client("s3")
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            if item["Key"].endswith(".out"):
                client.download_file(bucket, item["Key"], str(target / Path(item["Key"]).name))
    return target


def score(outputs: Path, labels_dir: Path = LABELS) -> Scores:
    predicted: list[int] = []
    actual: list[int] = []
    for labels_file in sorted(labels_dir.glob("*.csv")):
        output = outputs / f"{labels_file.name}.out"
        if not output.is_file():
            raise FileNotFoundError(f"no output {output} for input {labels_file.name}")
        truth = pd.read_csv(labels_file)["churned"]
        guess = read_predictions(output)
        if len(guess) != len(truth):
            raise ValueError(f"{output.name}: {len(guess)} predictions for {len(truth)} customers")
        predicted.extend(guess)
        actual.extend(truth)
    pairs = list(zip(predicted, actual, strict=True))
    return Scores(
        customers=len(pairs),
        true_positives=sum(1 for p, a in pairs if p == 1 and a == 1),
        predicted_positive=sum(predicted),
        actual_positive=sum(actual),
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("outputs", help="s3:// prefix or local folder with the <input>.out files")
    parser.add_argument("--labels", type=Path, default=LABELS)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        outputs = (
            download(args.outputs, Path(scratch)) if args.outputs.startswith("s3://") else Path(args.outputs)
        )
        scores = score(outputs, args.labels)
    print(
        f"{scores.customers} customers, {scores.actual_positive} churned: "
        f"precision {scores.precision:.3f}, recall {scores.recall:.3f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
