"""The "time to first prediction" cases: one model per flavor and a one-record input for it.

Each case is scored twice, both as fresh processes: ``kbt run`` on a job whose input folder
holds the one record, and bench/compare/first_prediction.py (import the framework, load the
same model, predict the record). The models are small and built here (no downloads): the
heart features for scikit-learn, XGBoost and MLflow, the seed MNIST MLP and Keras SavedModel,
and the benchmark's random BART.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from bench.compare.models import GENERATION, dataset, heart_training_frame

HEART_NUMERIC = ["age", "sex", "cp", "trestbps", "chol", "fbs", "restecg", "thalach", "exang", "oldpeak"]


@dataclass(frozen=True)
class FirstCase:
    flavor: str  # key of first_prediction.SCRIPTS
    label: str  # how the report names it
    workload: str  # kbt_jobs.model_spec key
    model_dir: Path
    input_dir: Path  # holds exactly one record
    input_format: str  # csv or png

    @property
    def record(self) -> Path:
        return next(p for p in self.input_dir.iterdir() if p.is_file())


NEEDS = {  # datasets each flavor's model or record is made from
    "sklearn": "heart",
    "xgboost": "heart",
    "mlflow-sklearn": "heart",
    "torch": "mnist",
    "keras": "mnist",
    "hf": "billsum",
}

LABELS = {
    "sklearn": "scikit-learn RandomForest (joblib)",
    "xgboost": "XGBoost booster (json)",
    "mlflow-sklearn": "MLflow sklearn+XGBoost pipeline (heart example, skops)",
    "torch": "PyTorch MNIST MLP (state_dict)",
    "keras": "Keras MNIST (SavedModel)",
    "hf": "Transformers BART summarizer (random, small)",
}


def _numeric_heart() -> tuple[pd.DataFrame, pd.Series]:
    frame = heart_training_frame()
    return frame[HEART_NUMERIC], frame["target"]


def build_sklearn(model_dir: Path) -> None:
    import joblib  # noqa: PLC0415 (heavy: only when building this model)
    from sklearn.ensemble import RandomForestClassifier  # noqa: PLC0415 (heavy: only when building)

    features, labels = _numeric_heart()
    model_dir.mkdir(parents=True, exist_ok=True)
    forest = RandomForestClassifier(n_estimators=50, max_depth=6, random_state=0).fit(features, labels)
    joblib.dump(forest, model_dir / "model.joblib")


def build_xgboost(model_dir: Path) -> None:
    import xgboost as xgb  # noqa: PLC0415 (heavy: only when building this model)

    features, labels = _numeric_heart()
    model_dir.mkdir(parents=True, exist_ok=True)
    classifier = xgb.XGBClassifier(n_estimators=50, max_depth=4, random_state=0).fit(features, labels)
    classifier.get_booster().save_model(model_dir / "model.json")


def _write_heart_record(input_dir: Path, numeric_only: bool) -> None:
    frame = heart_training_frame().drop(columns=["target"]).head(1)
    (frame[HEART_NUMERIC] if numeric_only else frame).to_csv(input_dir / "record.csv", index=False)


def _write_bill_record(input_dir: Path) -> None:
    from bench.compare.datasets import billsum_texts  # noqa: PLC0415 (avoids an import cycle)

    pd.DataFrame({"text": billsum_texts()[:1]}).to_csv(input_dir / "record.csv", index=False)


def build_cases(work: Path, model_dirs: dict[str, Path], flavors: tuple[str, ...]) -> list[FirstCase]:
    """Models and one-record inputs under `work` for `flavors`; heart/mnist/bart are the shared
    benchmark models in `model_dirs` (built already)."""
    cases: list[FirstCase] = []
    for flavor in flavors:
        input_dir = work / "inputs" / flavor
        shutil.rmtree(input_dir, ignore_errors=True)
        input_dir.mkdir(parents=True)
        input_format = "csv"
        if flavor in ("sklearn", "xgboost"):
            model_dir, workload = work / "models" / flavor, f"heart-{flavor}"
            if not (model_dir / ".done").exists():
                (build_sklearn if flavor == "sklearn" else build_xgboost)(model_dir)
                (model_dir / ".done").touch()
            _write_heart_record(input_dir, numeric_only=True)
        elif flavor == "mlflow-sklearn":
            model_dir, workload = model_dirs["heart"], "heart"
            _write_heart_record(input_dir, numeric_only=False)
        elif flavor in ("torch", "keras"):
            model_dir = model_dirs["mnist"] if flavor == "torch" else dataset("mnist") / "keras-savedmodel"
            workload, input_format = ("mnist" if flavor == "torch" else "mnist-keras"), "png"
            shutil.copy(dataset("mnist") / "images" / "7.png", input_dir / "7.png")
        else:
            model_dir, workload = model_dirs["bart"], "bart"
            (model_dir / "bench-generation.json").write_text(json.dumps(GENERATION))
            _write_bill_record(input_dir)
        cases.append(FirstCase(flavor, LABELS[flavor], workload, model_dir, input_dir, input_format))
    return cases
