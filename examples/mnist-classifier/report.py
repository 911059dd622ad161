"""Accuracy of an MNIST job: predictions.csv (appendRow) against labels.csv.

The job writes one ``predictions.csv`` row per image, in input order: file (``includeSource``),
class and probability (the Model's ``classify: {topK: 1}``). Prints them with the true label per
image, then the accuracy.

    python examples/mnist-classifier/report.py examples/mnist-classifier/work/predictions/
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

LABELS = Path(__file__).resolve().parent / "labels.csv"
COLUMNS = ["file", "class", "probability"]


def classify(predictions_dir: Path) -> pd.DataFrame:
    """file, class (most probable digit) and its probability, one row per scored image."""
    return pd.read_csv(predictions_dir / "predictions.csv", header=None, names=COLUMNS)


def score(predicted: pd.DataFrame, labels: pd.DataFrame) -> pd.DataFrame:
    """predicted joined with the true label of each file, and whether the class is right."""
    missing = sorted(set(labels["file"]) - set(predicted["file"]))
    if missing:
        raise ValueError(f"no prediction for {', '.join(missing)}")
    table = predicted.merge(labels, on="file", how="inner")
    return table.assign(correct=table["class"] == table["label"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("predictions", type=Path, help="the job's output folder")
    args = parser.parse_args()
    table = score(classify(args.predictions), pd.read_csv(LABELS))
    print(table.to_string(index=False))
    print(f"accuracy: {table['correct'].mean():.2f} ({int(table['correct'].sum())}/{len(table)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
