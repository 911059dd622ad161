"""Accuracy of an MNIST job: predictions.csv (appendRow) against labels.csv.

An appendRow ``predictions.csv`` holds one row of ten class probabilities per image, in input
order, without the file name; the job's ``_manifest.json`` (next to it) lists the inputs in that
order, with the records each produced, so rows are matched back to their files here. Prints file,
class, probability, true label per image, then the accuracy.

    python examples/mnist-classifier/report.py examples/mnist-classifier/work/predictions/
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import pandas as pd

LABELS = Path(__file__).resolve().parent / "labels.csv"


def scored_files(manifest: dict[str, Any]) -> list[str]:
    """The input file behind each predictions.csv row: every record of an input that did not fail."""
    files: list[str] = []
    for entry in manifest["inputs"]:
        if entry["failed"] and entry["records"] > 1:
            raise ValueError(f"{entry['name']}: some records failed; rows cannot be matched to files")
        files.extend([entry["name"]] * (entry["records"] - entry["failed"]))
    return files


def classify(predictions_dir: Path) -> pd.DataFrame:
    """file, class (most probable digit) and its probability, one row per scored image."""
    probabilities = pd.read_csv(predictions_dir / "predictions.csv", header=None)
    files = scored_files(json.loads((predictions_dir / "_manifest.json").read_text()))
    if len(files) != len(probabilities):
        raise ValueError(f"predictions.csv has {len(probabilities)} rows for {len(files)} scored images")
    return pd.DataFrame(
        {
            "file": files,
            "class": probabilities.idxmax(axis=1).astype(int),
            "probability": probabilities.max(axis=1),
        }
    )


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
