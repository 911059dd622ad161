"""scikit-learn estimators and pipelines from skops, joblib or pickle files.

Input is the tabular frame (or, for image/tensor input, one flattened row per record). When
the estimator recorded its feature names, columns are selected and ordered by them: a missing
column is an ``InputSchemaError``, extra columns (ids, labels) are ignored.
``predictMethod: predict_proba`` returns one column per class, named after the class.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd

from kbt.flavors.base import BatchRejected, LoadContext, ModelInput, ModelLoadError, ModelOutput
from kbt.flavors.errors import InputSchemaError
from kbt.flavors.loading import add_code_paths, find_model_file, model_directory
from kbt.flavors.outputs import array_rows
from kbt.flavors.skops_loading import load_skops
from kbt.log import get_logger

log = get_logger(__name__)

MODEL_SUFFIXES = (".skops", ".joblib", ".pkl", ".pickle", ".sav")


def load_estimator(path: Path) -> Any:
    """Unpickle a skops/joblib/pickle file. Every type a skops file names is trusted because the
    job's owner chose this model (the same trust a pickle gets); types beyond scikit-learn's
    estimators are logged."""
    if path.suffix == ".skops":
        return load_skops(path, trusted=None)
    try:
        return joblib.load(path)
    except Exception as exc:
        raise ModelLoadError(f"cannot unpickle {path}: {type(exc).__name__}: {exc}") from exc


def feature_frame(batch: ModelInput, features: list[str] | None, what: str) -> pd.DataFrame | np.ndarray:
    """The model's input matrix: frame columns in the fitted order, or flattened tensors."""
    if batch.frame is not None:
        if features is None:
            return batch.frame
        missing = [name for name in features if name not in batch.frame.columns]
        if missing:
            raise InputSchemaError(
                f"{what} needs column(s) {', '.join(map(repr, missing))} which the input lacks "
                f"(input columns: {', '.join(map(str, batch.frame.columns))})"
            )
        return batch.frame[features]
    if batch.tensor is not None:
        return batch.tensor.reshape(len(batch), -1)
    raise InputSchemaError(f"{what} needs tabular or image input, got content type {batch.content_type}")


@dataclass
class SklearnPredictor:
    estimator: Any
    method: str
    device: str = "cpu"
    features: list[str] | None = field(default=None)
    rows_independent: bool = True

    def predict(self, batch: ModelInput) -> ModelOutput:
        inputs = feature_frame(batch, self.features, "the scikit-learn model")
        try:
            values = np.asarray(getattr(self.estimator, self.method)(inputs))
        except (ValueError, TypeError, KeyError) as exc:
            first = batch.records[0] if batch.records else None
            where = f" (mini-batch from {first.source} record {first.index})" if first else ""
            raise BatchRejected(f"the scikit-learn model rejected the input{where}: {exc}") from exc
        if self.method == "predict_proba" and values.ndim == 2 and hasattr(self.estimator, "classes_"):
            return pd.DataFrame(values, columns=[str(c) for c in self.estimator.classes_])
        return array_rows(values, len(batch), "the scikit-learn model")


def predictor_for(estimator: Any, method: str, where: Path) -> SklearnPredictor:
    """Wrap a loaded estimator, checking it offers ``method``."""
    if not callable(getattr(estimator, method, None)):
        raise ModelLoadError(f"{type(estimator).__name__} from {where} has no {method}() method")
    names = getattr(estimator, "feature_names_in_", None)
    return SklearnPredictor(estimator, method, features=None if names is None else [str(n) for n in names])


def load(ctx: LoadContext) -> SklearnPredictor:
    path = find_model_file(ctx.local_path, MODEL_SUFFIXES, "scikit-learn")
    add_code_paths(ctx.spec, model_directory(ctx.local_path))
    return predictor_for(load_estimator(path), ctx.spec.predictMethod, path)
