"""Any MLflow model: scikit-learn and XGBoost ones loaded by kbt without mlflow
(``mlflow_direct``), all others through ``mlflow.pyfunc`` (pytorch, tensorflow, custom, ...).

Local and fetched directories load directly; ``runs:/`` and ``models:/name/version`` or
``models:/name@alias`` URIs are downloaded from the tracking server named by
``MLFLOW_TRACKING_URI`` into scratch first. Inputs are fitted to the model signature (see
``mlflow_schema``) so a bad column or record is reported by name instead of by a stack trace.
MLflow PyTorch models are told the device kbt chose.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from kbt.flavors.base import BatchRejected, LoadContext, ModelInput, ModelLoadError, ModelOutput
from kbt.flavors.device import driver_device
from kbt.flavors.errors import InputSchemaError
from kbt.flavors.loading import add_code_paths, is_mlflow_uri
from kbt.flavors.mlflow_direct import PredictFunction, direct_predict, read_mlmodel
from kbt.flavors.mlflow_schema import Schema, conform_frame, conform_tensor, input_schema
from kbt.flavors.outputs import array_rows, expect_rows
from kbt.log import get_logger

log = get_logger(__name__)

WHAT = "the MLflow model"


@dataclass
class MlflowPredictor:
    model: PredictFunction  # the pyfunc model's predict, or the framework's (mlflow_direct)
    schema: Schema | None
    device: str
    rejects: tuple[type[Exception], ...] = (ValueError, TypeError, KeyError)  # errors that reject the batch
    rows_independent: bool = False  # True for tabular (sklearn, xgboost) MLflow models

    def predict(self, batch: ModelInput) -> ModelOutput:
        data = self._model_input(batch)
        try:
            output = self.model(data)
        except self.rejects as exc:
            first = batch.records[0]
            raise BatchRejected(
                f"{WHAT} rejected the mini-batch starting at {first.source} record {first.index}: {exc}"
            ) from exc
        return _rows(output, len(batch))

    def _model_input(self, batch: ModelInput) -> Any:
        schema = self.schema
        if schema is None:
            if batch.frame is not None:
                return batch.frame
            if batch.tensor is not None:
                return batch.tensor
            if batch.texts is not None:
                return list(batch.texts)
            raise InputSchemaError(f"{WHAT} needs tabular, image or text input, got {batch.content_type}")
        if schema.is_tensor_spec():
            if len(schema.inputs) != 1:
                return batch.frame  # several named tensors: MLflow maps the columns itself
            values = batch.tensor if batch.tensor is not None else None
            if values is None and batch.frame is not None:
                values = batch.frame.to_numpy()
            if values is None:
                raise InputSchemaError(f"{WHAT} takes a tensor; give image or tabular input")
            return conform_tensor(np.asarray(values), schema)
        frame = batch.frame
        if frame is None and batch.texts is not None and len(schema.inputs) == 1:
            frame = pd.DataFrame({schema.input_names()[0] if schema.has_input_names() else 0: batch.texts})
        if frame is None:
            raise InputSchemaError(
                f"{WHAT} has a column schema; give tabular input, not {batch.content_type}"
            )
        return conform_frame(frame, schema, batch.records)


def _rows(output: Any, records: int) -> ModelOutput:
    if isinstance(output, pd.DataFrame | pd.Series | list):
        return expect_rows(output, records, WHAT)
    if isinstance(output, dict):
        return expect_rows(pd.DataFrame(output), records, WHAT)
    return array_rows(np.asarray(output), records, WHAT)


def _local_model_dir(ctx: LoadContext) -> Path:
    if not is_mlflow_uri(ctx.spec.uri):
        return ctx.local_path
    tracking = os.environ.get("MLFLOW_TRACKING_URI", "")
    if not tracking:
        raise ModelLoadError(f"{ctx.spec.uri} is an MLflow URI but MLFLOW_TRACKING_URI is not set")
    target = ctx.scratch_dir / "mlflow-model"
    target.mkdir(parents=True, exist_ok=True)
    import mlflow.artifacts

    try:
        return Path(mlflow.artifacts.download_artifacts(artifact_uri=ctx.spec.uri, dst_path=str(target)))
    except Exception as exc:
        raise ModelLoadError(f"cannot resolve {ctx.spec.uri} at {tracking}: {exc}") from exc


def _load_pyfunc(ctx: LoadContext, model_dir: Path, flavors: dict[str, Any]) -> MlflowPredictor:
    import mlflow.pyfunc
    from mlflow.exceptions import MlflowException

    device = driver_device(ctx.spec) if {"pytorch", "tensorflow", "keras"} & set(flavors) else "cpu"
    config = {"device": device} if "pytorch" in flavors else None
    try:
        model = mlflow.pyfunc.load_model(str(model_dir), model_config=config)
    except Exception as exc:
        raise ModelLoadError(f"cannot load MLflow model {ctx.spec.uri}: {type(exc).__name__}: {exc}") from exc
    schema = input_schema(read_mlmodel(model_dir))
    return MlflowPredictor(model.predict, schema, device, (MlflowException, ValueError, TypeError, KeyError))


def load(ctx: LoadContext) -> MlflowPredictor:
    model_dir = _local_model_dir(ctx)
    if not (model_dir / "MLmodel").is_file():
        raise ModelLoadError(f"{ctx.spec.uri} is not an MLflow model: no MLmodel file in {model_dir}")
    add_code_paths(ctx.spec, model_dir)
    mlmodel = read_mlmodel(model_dir)
    flavors: dict[str, Any] = mlmodel["flavors"]
    try:
        direct = direct_predict(model_dir, mlmodel)
    except ModelLoadError as exc:
        raise ModelLoadError(f"cannot load MLflow model {ctx.spec.uri}: {exc}") from exc
    except Exception as exc:
        raise ModelLoadError(f"cannot load MLflow model {ctx.spec.uri}: {type(exc).__name__}: {exc}") from exc
    if direct is None:
        predictor = _load_pyfunc(ctx, model_dir, flavors)
    else:
        predictor = MlflowPredictor(direct, input_schema(mlmodel), "cpu", rows_independent=True)
    log.info(
        "loaded MLflow model",
        uri=ctx.spec.uri,
        flavors=sorted(flavors),
        device=predictor.device,
        loader="kbt" if direct is not None else "mlflow",
    )
    return predictor
