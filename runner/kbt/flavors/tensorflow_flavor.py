"""TensorFlow/Keras models: ``.keras`` (and ``.h5``) files, and SavedModel directories.

Keras 3 cannot ``keras.models.load_model`` a SavedModel, so SavedModels are loaded with
``tf.saved_model.load`` and scored through their ``serving_default`` signature; SavedModels
written by Keras 2 with optimizer state (which TF's object loader can no longer revive) are
loaded from their serving graph instead. Input is the decoded image tensor, the frame's values,
or (for string inputs) the texts; a model with several named inputs takes frame columns of the
same names. Tensors are reshaped to the model's input shape when only the layout differs
(e.g. (N, 28, 28, 1) images for a (None, 28, 28) input).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf

from kbt.flavors.backoff import predict_with_backoff
from kbt.flavors.base import BatchRejected, LoadContext, ModelInput, ModelLoadError, ModelOutput
from kbt.flavors.device import keras_dtype_policy, tensorflow_device
from kbt.flavors.errors import InputSchemaError
from kbt.flavors.loading import add_code_paths, find_model_file, model_directory
from kbt.flavors.outputs import array_rows, named_arrays_frame
from kbt.log import get_logger

log = get_logger(__name__)

KERAS_SUFFIXES = (".keras", ".h5", ".hdf5")
WHAT = "the TensorFlow model"


@dataclass(frozen=True)
class InputSpec:
    name: str
    shape: tuple[int | None, ...]  # including the batch dimension
    dtype: tf.DType


def _fit_shape(values: np.ndarray, spec: InputSpec) -> np.ndarray:
    expected = spec.shape[1:]
    if values.shape[1:] == expected or not expected:
        return values
    known = [int(size) for size in expected if size is not None]
    if len(known) == len(expected) and int(np.prod(values.shape[1:])) == int(np.prod(known)):
        return values.reshape((values.shape[0], *known))
    raise InputSchemaError(
        f"{WHAT} input {spec.name!r} expects per-record shape {expected}, got {values.shape[1:]}"
    )


def _single_input(batch: ModelInput, spec: InputSpec) -> Any:
    if spec.dtype == tf.string:
        if batch.texts is None:
            raise InputSchemaError(f"{WHAT} input {spec.name!r} takes text; use content type text/plain")
        return tf.constant(batch.texts)
    if batch.tensor is not None:
        values = batch.tensor
    elif batch.frame is not None:
        try:
            values = batch.frame.to_numpy(dtype=np.float32)
        except ValueError as exc:
            raise InputSchemaError(f"{WHAT} takes numeric input: {exc}") from exc
    else:
        raise InputSchemaError(f"{WHAT} needs tabular, image or text input, got {batch.content_type}")
    return tf.constant(_fit_shape(np.asarray(values), spec), dtype=spec.dtype)


def model_inputs(batch: ModelInput, specs: list[InputSpec]) -> dict[str, Any]:
    """The keyword inputs for the model: one tensor, or one per named input from frame columns."""
    if len(specs) == 1:
        return {specs[0].name: _single_input(batch, specs[0])}
    if batch.frame is None:
        names = ", ".join(spec.name for spec in specs)
        raise InputSchemaError(f"{WHAT} has several inputs ({names}): give tabular input with those columns")
    missing = [spec.name for spec in specs if spec.name not in batch.frame.columns]
    if missing:
        raise InputSchemaError(
            f"{WHAT} needs column(s) {', '.join(map(repr, missing))} which the input lacks "
            f"(input columns: {', '.join(map(str, batch.frame.columns))})"
        )
    return {
        spec.name: tf.constant(_fit_shape(batch.frame[spec.name].to_numpy(), spec), dtype=spec.dtype)
        for spec in specs
    }


def rows(outputs: Any, records: int) -> ModelOutput:
    if isinstance(outputs, Mapping):
        arrays = {str(name): np.asarray(value) for name, value in outputs.items()}
        if len(arrays) == 1:
            return array_rows(next(iter(arrays.values())), records, WHAT)
        return named_arrays_frame(arrays, records, WHAT)
    if isinstance(outputs, list | tuple):
        return named_arrays_frame(
            {f"output_{i}": np.asarray(v) for i, v in enumerate(outputs)}, records, WHAT
        )
    return array_rows(np.asarray(outputs), records, WHAT)


@dataclass
class TensorFlowPredictor:
    call: Callable[[dict[str, Any]], Any]
    inputs: list[InputSpec]
    device: str
    rows_independent: bool = False  # the call is the device batch

    def predict(self, batch: ModelInput) -> ModelOutput:
        return predict_with_backoff(self._forward, batch)

    def _forward(self, batch: ModelInput) -> ModelOutput:
        feed = model_inputs(batch, self.inputs)
        try:
            outputs = self.call(feed)
        except (tf.errors.InvalidArgumentError, ValueError, TypeError) as exc:
            shapes = {name: tuple(value.shape) for name, value in feed.items()}
            raise BatchRejected(
                f"{WHAT} failed on inputs {shapes} from {batch.records[0].source}: {exc}"
            ) from exc
        return rows(outputs, len(batch))


def _load_keras(path: Path, policy: str | None, device: str) -> TensorFlowPredictor:
    import keras

    if policy:
        keras.config.set_dtype_policy(policy)
    model = keras.saving.load_model(path, compile=False)
    specs = [
        InputSpec(str(tensor.name).split(":")[0], tuple(tensor.shape), tf.as_dtype(tensor.dtype))
        for tensor in model.inputs
    ]

    def call(feed: dict[str, Any]) -> Any:
        return model.predict_on_batch(next(iter(feed.values())) if len(feed) == 1 else feed)

    return TensorFlowPredictor(call, specs, device)


def _restore_saved_model(path: Path) -> Any:
    try:
        return tf.saved_model.load(str(path))
    except Exception as first_error:  # Keras 2 SavedModels with optimizer slots Keras 3 cannot revive
        from tensorflow.python.saved_model import load_v1_in_v2

        log.info("tf.saved_model.load failed: loading the serving graph instead", error=str(first_error))
        try:
            return load_v1_in_v2.load(str(path), tags=["serve"])
        except Exception as exc:
            raise ModelLoadError(f"cannot load SavedModel {path}: {first_error}") from exc


def _load_saved_model(path: Path, device: str) -> TensorFlowPredictor:
    restored = _restore_saved_model(path)
    signature = restored.signatures.get("serving_default")
    if signature is None:
        found = ", ".join(restored.signatures) or "none"
        raise ModelLoadError(f"SavedModel {path} has no serving_default signature (signatures: {found})")
    specs = [
        InputSpec(name, tuple(spec.shape), spec.dtype)
        for name, spec in signature.structured_input_signature[1].items()
    ]

    def call(feed: dict[str, Any]) -> Any:
        return {name: value.numpy() for name, value in signature(**feed).items()}

    return TensorFlowPredictor(call, specs, device)


def load(ctx: LoadContext) -> TensorFlowPredictor:
    device = tensorflow_device(ctx.spec)
    model_dir = model_directory(ctx.local_path)
    add_code_paths(ctx.spec, model_dir)
    try:
        if ctx.local_path.is_dir() and (ctx.local_path / "saved_model.pb").is_file():
            if keras_dtype_policy(ctx.spec, device):
                log.info(
                    "precision ignored for a SavedModel: its graph fixes dtypes", precision=ctx.spec.precision
                )
            predictor = _load_saved_model(ctx.local_path, device)
        else:
            path = find_model_file(ctx.local_path, (*KERAS_SUFFIXES, "saved_model.pb"), "TensorFlow")
            if path.name == "saved_model.pb":
                predictor = _load_saved_model(path.parent, device)
            else:
                predictor = _load_keras(path, keras_dtype_policy(ctx.spec, device), device)
    except ModelLoadError:
        raise
    except Exception as exc:
        raise ModelLoadError(
            f"cannot load TensorFlow model {ctx.local_path}: {type(exc).__name__}: {exc}"
        ) from exc
    log.info("loaded TensorFlow model", path=str(ctx.local_path), device=device)
    return predictor
