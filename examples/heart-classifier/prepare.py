"""Train the heart-disease classifier as an MLflow model and stage the example inputs.

The model is a scikit-learn Pipeline (category guard, one-hot categoricals, scaled numerics,
XGBoost) saved with ``mlflow.sklearn.save_model`` and a signature. Inputs are the four unlabeled
CSV files, copied to ``work/data/`` or, with ``--s3-endpoint``, uploaded with the model to
``s3://data/heart/`` and ``s3://models/heart/``.

    python examples/heart-classifier/prepare.py [--s3-endpoint http://127.0.0.1:9000]
"""

from __future__ import annotations

import argparse
import logging
import shutil
import sys
import warnings
from pathlib import Path

import mlflow.sklearn
import pandas as pd
from mlflow.models import infer_signature
from sklearn.compose import ColumnTransformer
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from xgboost import XGBClassifier

HERE = Path(__file__).resolve().parent
# category_guard must pickle under its own module name, the name MLflow imports it by at load.
sys.path[:0] = [str(HERE), str(HERE.parent)]

from category_guard import KnownCategories  # noqa: E402

from staging import copy_files, dataset, run, upload_tree  # noqa: E402

WORK = HERE / "work"
CATEGORICAL = ["sex", "cp", "fbs", "restecg", "exang", "slope", "ca", "thal"]
NUMERIC = ["age", "trestbps", "chol", "thalach", "oldpeak"]
THAL_CATEGORIES = ("fixed", "normal", "reversible")
TARGET = "target"
# Types skops may rebuild besides scikit-learn's own (saved in MLmodel, checked again at load).
SKOPS_TRUSTED_TYPES = [
    "category_guard.KnownCategories",
    "xgboost.core.Booster",
    "xgboost.sklearn.XGBClassifier",
]


def load_training(path: Path) -> tuple[pd.DataFrame, pd.Series]:
    """Features and labels; rows with a `thal` outside the documented categories are dropped."""
    frame = pd.read_csv(path, dtype={"thal": str})
    dirty = ~frame["thal"].isin(THAL_CATEGORIES)
    for row, value in frame.loc[dirty, "thal"].items():
        print(f"training data: dropping {path.name} data row {row}: thal={value!r} is not a category")
    clean = frame.loc[~dirty].reset_index(drop=True)
    return clean.drop(columns=[TARGET]), clean[TARGET].astype(int)


def build_pipeline() -> Pipeline:
    encode = ColumnTransformer(
        [
            ("categorical", OneHotEncoder(handle_unknown="error"), CATEGORICAL),
            ("numeric", StandardScaler(), NUMERIC),
        ]
    )
    classifier = XGBClassifier(n_estimators=100, max_depth=3, learning_rate=0.1, random_state=0, n_jobs=1)
    return Pipeline([("guard", KnownCategories(CATEGORICAL)), ("encode", encode), ("classify", classifier)])


def train(features: pd.DataFrame, labels: pd.Series) -> tuple[Pipeline, float]:
    """Hold-out accuracy of a pipeline fit on 80 %, and the pipeline refit on all rows."""
    x_fit, x_test, y_fit, y_test = train_test_split(
        features, labels, test_size=0.2, random_state=0, stratify=labels
    )
    holdout = build_pipeline().fit(x_fit, y_fit)
    accuracy = float((holdout.predict(x_test) == y_test).mean())
    return build_pipeline().fit(features, labels), accuracy


def save_model(pipeline: Pipeline, features: pd.DataFrame, model_dir: Path) -> None:
    shutil.rmtree(model_dir, ignore_errors=True)
    with warnings.catch_warnings():
        # MLflow hints that integer columns cannot hold missing values: intended here, a record
        # with a missing integer is rejected by the signature instead of being scored.
        warnings.filterwarnings("ignore", message="Hint: Inferred schema contains integer")
        signature = infer_signature(features, pipeline.predict(features))
    logging.getLogger("mlflow.utils.environment").setLevel(logging.ERROR)  # "pip version" noise
    mlflow.sklearn.save_model(
        pipeline,
        str(model_dir),
        signature=signature,
        code_paths=[str(HERE / "category_guard.py")],
        pip_requirements=["scikit-learn", "xgboost", "pandas"],
        skops_trusted_types=SKOPS_TRUSTED_TYPES,
    )


def stage_inputs(data_dir: Path) -> list[Path]:
    return copy_files(sorted((dataset("heart") / "unlabeled").glob("heart-unlabeled-*.csv")), data_dir)


def prepare(work: Path = WORK, s3_endpoint: str | None = None) -> float:
    """Train, save to work/model, stage inputs to work/data (and S3); returns hold-out accuracy."""
    features, labels = load_training(dataset("heart") / "train" / "heart.csv")
    pipeline, accuracy = train(features, labels)
    save_model(pipeline, features, work / "model")
    stage_inputs(work / "data")
    if s3_endpoint:
        upload_tree(work / "data", "s3://data/heart/", s3_endpoint)
        upload_tree(work / "model", "s3://models/heart/", s3_endpoint)
    return accuracy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--s3-endpoint", help="also upload inputs and model to this S3 endpoint")
    args = parser.parse_args()
    accuracy = prepare(s3_endpoint=args.s3_endpoint)
    print(f"hold-out accuracy: {accuracy:.3f}")
    print(f"model: {WORK / 'model'}   inputs: {WORK / 'data'}")


if __name__ == "__main__":
    run(main)
