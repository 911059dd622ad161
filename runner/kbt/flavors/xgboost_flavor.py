"""XGBoost native boosters (JSON/UBJ, ``Booster.load_model``) scored with ``inplace_predict``.

Pickled scikit-learn-API models (``XGBClassifier`` in a joblib/pickle/skops file) go through the
sklearn flavor's loader. For a native booster, ``predictMethod`` follows XGBClassifier:
``predict`` gives class labels for classification objectives (the objective's raw output for
regression/ranking), ``predict_proba`` one probability column per class.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import xgboost as xgb

from kbt.flavors import sklearn_flavor
from kbt.flavors.base import BatchRejected, LoadContext, ModelInput, ModelLoadError, ModelOutput, Predictor
from kbt.flavors.device import choose_device, driver_device
from kbt.flavors.loading import add_code_paths, find_model_file, model_directory
from kbt.flavors.outputs import array_rows

NATIVE_SUFFIXES = (".json", ".ubj", ".ubjson")
MODEL_SUFFIXES = NATIVE_SUFFIXES + sklearn_flavor.MODEL_SUFFIXES
BINARY_OBJECTIVES = ("binary:logistic", "binary:logitraw", "binary:hinge")
MULTICLASS_OBJECTIVES = ("multi:softprob", "multi:softmax")


@dataclass
class BoosterPredictor:
    booster: xgb.Booster
    objective: str
    method: str
    device: str
    rows_independent: bool = True

    def predict(self, batch: ModelInput) -> ModelOutput:
        names = self.booster.feature_names
        features = None if names is None else list(names)
        inputs = sklearn_flavor.feature_frame(batch, features, "the XGBoost model")
        try:
            raw = np.asarray(self.booster.inplace_predict(inputs, validate_features=False))
        except (ValueError, TypeError, xgb.core.XGBoostError) as exc:
            first = batch.records[0]
            raise BatchRejected(
                f"the XGBoost model rejected the input (mini-batch from {first.source} record "
                f"{first.index}): {exc}"
            ) from exc
        return self._shape(raw, len(batch))

    def _shape(self, raw: np.ndarray, records: int) -> ModelOutput:
        if self.objective in BINARY_OBJECTIVES and self.objective != "binary:hinge":
            probability = raw if self.objective == "binary:logistic" else 1 / (1 + np.exp(-raw))
            if self.method == "predict_proba":
                return pd.DataFrame({"0": 1 - probability, "1": probability})
            return array_rows((probability > 0.5).astype(np.int64), records, "the XGBoost model")
        if self.objective == "multi:softprob":
            if self.method == "predict_proba":
                return pd.DataFrame(raw, columns=[str(i) for i in range(raw.shape[1])])
            return array_rows(raw.argmax(axis=1), records, "the XGBoost model")
        if self.objective == "multi:softmax":
            return array_rows(raw.astype(np.int64), records, "the XGBoost model")
        return array_rows(raw, records, "the XGBoost model")


def _objective(booster: xgb.Booster) -> str:
    config: dict[str, Any] = json.loads(booster.save_config())
    return str(config["learner"]["objective"]["name"])


def load(ctx: LoadContext) -> Predictor:
    path = find_model_file(ctx.local_path, MODEL_SUFFIXES, "XGBoost")
    add_code_paths(ctx.spec, model_directory(ctx.local_path))
    if not path.name.endswith(NATIVE_SUFFIXES):
        return sklearn_flavor.predictor_for(sklearn_flavor.load_estimator(path), ctx.spec.predictMethod, path)
    booster = xgb.Booster()
    try:
        booster.load_model(str(path))
    except xgb.core.XGBoostError as exc:
        raise ModelLoadError(f"{path} is not an XGBoost model: {exc}") from exc
    objective = _objective(booster)
    if ctx.spec.predictMethod == "predict_proba" and not objective.startswith(("binary:", "multi:")):
        raise ModelLoadError(f"predictMethod predict_proba needs a classifier; {path.name} has {objective}")
    if ctx.spec.predictMethod == "predict_proba" and objective in ("multi:softmax", "binary:hinge"):
        raise ModelLoadError(f"objective {objective} of {path.name} outputs labels, not probabilities")
    cuda_build = bool(xgb.build_info().get("USE_CUDA"))
    device = driver_device(ctx.spec) if cuda_build else choose_device(ctx.spec, 0, "this XGBoost build")
    booster.set_param({"device": "cuda" if device.startswith("cuda") else "cpu"})
    return BoosterPredictor(booster, objective, ctx.spec.predictMethod, device)
