"""MLflow models kbt loads with their framework directly, so that mlflow itself is not imported
(importing it costs seconds of every shard's start-up).

The MLmodel file says how a model was saved. scikit-learn models (skops, pickle, cloudpickle) and
XGBoost models are loaded as MLflow's own pyfunc loaders (``mlflow.sklearn._load_pyfunc``,
``mlflow.xgboost._load_pyfunc``) load them, with the same ``MLFLOW_ALLOW_PICKLE_DESERIALIZATION``
gate and skops trusted types, and score through the pyfunc ``predict_fn``; kbt fits inputs to
the signature itself (``mlflow_schema``). ``direct_predict`` returns None for every other model
(custom ``python_function`` models, other flavors, signatures with array or object columns):
the mlflow flavor loads those through ``mlflow.pyfunc``.
"""

from __future__ import annotations

import os
import pickle
import sys
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import yaml

from kbt.flavors.base import ModelLoadError
from kbt.flavors.loading import import_attribute
from kbt.flavors.mlflow_schema import input_schema
from kbt.flavors.skops_loading import load_skops

PredictFunction = Callable[[Any], Any]

SKLEARN_FORMATS = ("skops", "pickle", "cloudpickle")
SKLEARN_PREDICT_FUNCTIONS = (
    "predict",
    "predict_proba",
    "predict_log_proba",
    "predict_joint_log_proba",
    "score",
)
PICKLE_GATE = "MLFLOW_ALLOW_PICKLE_DESERIALIZATION"
GATE_VALUES = {"true": True, "1": True, "false": False, "0": False}


def read_mlmodel(model_dir: Path) -> dict[str, Any]:
    """The parsed MLmodel file of ``model_dir``."""
    try:
        parsed = yaml.safe_load((model_dir / "MLmodel").read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ModelLoadError(f"cannot read {model_dir / 'MLmodel'}: {exc}") from exc
    if not isinstance(parsed, dict) or not isinstance(parsed.get("flavors"), dict):
        raise ModelLoadError(f"{model_dir / 'MLmodel'} has no flavors")
    return parsed


def _pyfunc(mlmodel: dict[str, Any]) -> dict[str, Any]:
    conf = mlmodel["flavors"].get("python_function")
    return conf if isinstance(conf, dict) else {}


def direct_flavor(mlmodel: dict[str, Any]) -> str | None:
    """The framework kbt loads the model with ("sklearn" or "xgboost"), or None: mlflow loads it."""
    schema = input_schema(mlmodel)
    if schema is not None and not (
        len(schema.inputs) == 1 if schema.is_tensor_spec() else schema.only_simple_columns()
    ):
        return None  # several named tensors, array/object/map columns: MLflow converts those itself
    pyfunc, flavors = _pyfunc(mlmodel), mlmodel["flavors"]
    predict_fn = pyfunc.get("predict_fn", "predict")
    sklearn = flavors.get("sklearn") or {}
    if (
        pyfunc.get("loader_module") == "mlflow.sklearn"
        and sklearn.get("serialization_format", "pickle") in SKLEARN_FORMATS
        and predict_fn in SKLEARN_PREDICT_FUNCTIONS
    ):
        return "sklearn"
    xgboost = flavors.get("xgboost") or {}
    if (
        pyfunc.get("loader_module") == "mlflow.xgboost"
        and str(xgboost.get("model_class", "xgboost.core.Booster")).startswith("xgboost.")
        and xgboost.get("data")
        and predict_fn == "predict"
    ):
        return "xgboost"
    return None


def _add_model_code(model_dir: Path, pyfunc: dict[str, Any]) -> None:
    """The model's ``code`` folder first on ``sys.path``, as MLflow puts it."""
    if pyfunc.get("code"):
        code = str(model_dir / pyfunc["code"])
        if code not in sys.path:
            sys.path.insert(0, code)


def _deserialization_allowed() -> bool:
    value = os.environ.get(PICKLE_GATE)
    if value is None:
        return True  # MLflow's default
    if value.lower() not in GATE_VALUES:
        raise ModelLoadError(f"{PICKLE_GATE} must be one of true, false, 1, 0 (any case), got {value!r}")
    return GATE_VALUES[value.lower()]


def _load_sklearn(model_dir: Path, mlmodel: dict[str, Any]) -> PredictFunction:
    conf, pyfunc = mlmodel["flavors"]["sklearn"], _pyfunc(mlmodel)
    if not _deserialization_allowed():
        raise ModelLoadError(
            f"deserializing the model in {model_dir} is disallowed because {PICKLE_GATE} is not 'true': "
            "loading a model can run code from its files (skops models included, their trusted "
            f"types come from the model itself); set {PICKLE_GATE}=true in the model's environment "
            "if you trust it"
        )
    path = model_dir / pyfunc.get("model_path", conf.get("pickled_model", "model.pkl"))
    serialization = conf.get("serialization_format", "pickle")
    if serialization == "skops":
        estimator = load_skops(path, trusted=list(conf.get("skops_trusted_types") or []))
    else:
        try:
            with path.open("rb") as handle:
                if serialization == "cloudpickle":
                    import cloudpickle  # type: ignore[import-untyped]

                    estimator = cloudpickle.load(handle)
                else:
                    estimator = pickle.load(handle)
        except Exception as exc:
            raise ModelLoadError(f"cannot unpickle {path}: {type(exc).__name__}: {exc}") from exc
    predict: PredictFunction = getattr(estimator, pyfunc.get("predict_fn", "predict"))
    return predict


def _load_xgboost(model_dir: Path, mlmodel: dict[str, Any]) -> PredictFunction:
    import xgboost as xgb

    conf = mlmodel["flavors"]["xgboost"]
    module, _, name = str(conf.get("model_class", "xgboost.core.Booster")).rpartition(".")
    model = import_attribute(f"{module}:{name}", "the MLflow XGBoost model_class")()
    try:
        model.load_model(str(model_dir / conf["data"]))
    except xgb.core.XGBoostError as exc:
        raise ModelLoadError(f"{model_dir / conf['data']} is not an XGBoost model: {exc}") from exc
    if isinstance(model, xgb.Booster):
        booster = model

        def predict_booster(data: Any) -> Any:
            return booster.predict(xgb.DMatrix(data), validate_features=True)

        return predict_booster
    return partial(model.predict, validate_features=True)


def direct_predict(model_dir: Path, mlmodel: dict[str, Any]) -> PredictFunction | None:
    """The model's pyfunc predict function, loaded without mlflow; None if mlflow must load it."""
    flavor = direct_flavor(mlmodel)
    if flavor is None:
        return None
    _add_model_code(model_dir, _pyfunc(mlmodel))
    return _load_sklearn(model_dir, mlmodel) if flavor == "sklearn" else _load_xgboost(model_dir, mlmodel)
