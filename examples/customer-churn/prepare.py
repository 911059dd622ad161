"""Generate a synthetic churn dataset, train an XGBoost booster, stage unlabeled batches.

Deterministic (seeded): 4000 customers with eight features and a churn label drawn from a
logistic model of those features. 2500 train the booster (``binary:logistic``, saved as native
JSON); the other 1500 are written SageMaker-style (CSV, no header, features only) as three
files of 500 rows, their labels kept aside in ``work/labels/`` for ``report.py``. With
``--s3-endpoint`` the inputs go to ``s3://churn/batch-transform/input/`` and the model to
``s3://churn/model/``, the locations ``tf-batch.yaml`` and ``model.yaml`` name.

    python examples/customer-churn/prepare.py --s3-endpoint http://127.0.0.1:5000
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import xgboost as xgb

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from staging import fresh_dir, upload_tree  # noqa: E402

WORK = HERE / "work"
FEATURES = [
    "tenure_months",
    "monthly_charges",
    "total_charges",
    "contract_one_year",
    "contract_two_year",
    "support_calls",
    "paperless_billing",
    "senior",
]
CUSTOMERS = 4000
TRAIN = 2500
BATCH_FILES = 3
INPUT_URI = "s3://churn/batch-transform/input/"
MODEL_URI = "s3://churn/model/"


def synthetic_customers(count: int, seed: int = 7) -> tuple[pd.DataFrame, np.ndarray]:
    """Features and churn labels (1 = churned): short tenure, high charges, month-to-month
    contracts and many support calls raise the odds."""
    rng = np.random.default_rng(seed)
    tenure = rng.integers(1, 73, count)
    monthly = np.round(rng.uniform(18, 120, count), 2)
    contract = rng.choice(3, count, p=[0.55, 0.25, 0.20])
    calls = rng.poisson(1.5, count)
    paperless = rng.integers(0, 2, count)
    senior = (rng.random(count) < 0.16).astype(int)
    features = pd.DataFrame(
        {
            "tenure_months": tenure,
            "monthly_charges": monthly,
            "total_charges": np.round(tenure * monthly * rng.uniform(0.9, 1.1, count), 2),
            "contract_one_year": (contract == 1).astype(int),
            "contract_two_year": (contract == 2).astype(int),
            "support_calls": calls,
            "paperless_billing": paperless,
            "senior": senior,
        }
    )
    logit = (
        -1.0
        - 0.05 * tenure
        + 0.025 * monthly
        - 1.2 * (contract == 1)
        - 2.2 * (contract == 2)
        + 0.45 * calls
        + 0.4 * paperless
        + 0.3 * senior
    )
    labels = (rng.random(count) < 1 / (1 + np.exp(-logit))).astype(int)
    return features, labels


def train(features: pd.DataFrame, labels: np.ndarray, model_path: Path) -> None:
    """A native booster over unnamed columns, as SageMaker's XGBoost container scores them."""
    params = {"objective": "binary:logistic", "max_depth": 4, "eta": 0.1, "seed": 0, "nthread": 1}
    booster = xgb.train(params, xgb.DMatrix(features.to_numpy(), label=labels), num_boost_round=150)
    fresh_dir(model_path.parent)
    booster.save_model(model_path)


def stage_batches(features: pd.DataFrame, labels: np.ndarray, work: Path) -> None:
    data_dir, labels_dir = fresh_dir(work / "data"), fresh_dir(work / "labels")
    for number, rows in enumerate(np.array_split(np.arange(len(features)), BATCH_FILES)):
        name = f"customers-{number}.csv"
        features.iloc[rows].to_csv(data_dir / name, header=False, index=False)
        pd.DataFrame({"churned": labels[rows]}).to_csv(labels_dir / name, index=False)


def prepare(work: Path = WORK, s3_endpoint: str | None = None) -> None:
    features, labels = synthetic_customers(CUSTOMERS)
    train(features.iloc[:TRAIN], labels[:TRAIN], work / "model" / "xgboost-model.json")
    stage_batches(features.iloc[TRAIN:].reset_index(drop=True), labels[TRAIN:], work)
    if s3_endpoint:
        upload_tree(work / "data", INPUT_URI, s3_endpoint)
        upload_tree(work / "model", MODEL_URI, s3_endpoint)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--s3-endpoint", help="S3 endpoint to upload inputs and model to")
    args = parser.parse_args()
    prepare(s3_endpoint=args.s3_endpoint)
    print(f"model: {WORK / 'model'}   inputs: {WORK / 'data'}   labels: {WORK / 'labels'}")


if __name__ == "__main__":
    main()
