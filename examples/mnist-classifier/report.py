"""Accuracy of an MNIST predictions.csv against labels.csv (the true digit of each file).

python examples/mnist-classifier/report.py examples/mnist-classifier/work/predictions/predictions.csv
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

LABELS = Path(__file__).resolve().parent / "labels.csv"


def score(predictions: pd.DataFrame, labels: pd.DataFrame) -> pd.DataFrame:
    """One row per labelled file: file, label, class, probability, correct."""
    predictions = predictions.assign(file=predictions["file"].map(lambda f: Path(str(f)).name))
    missing = sorted(set(labels["file"]) - set(predictions["file"]))
    if missing:
        raise ValueError(f"predictions.csv has no prediction for {', '.join(missing)}")
    table = labels.merge(predictions[["file", "class", "probability"]], on="file", how="left")
    return table.assign(correct=table["class"].astype(int) == table["label"].astype(int))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("predictions", type=Path)
    args = parser.parse_args()
    table = score(pd.read_csv(args.predictions), pd.read_csv(LABELS))
    print(table.to_string(index=False))
    print(f"accuracy: {table['correct'].mean():.2f} ({int(table['correct'].sum())}/{len(table)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
