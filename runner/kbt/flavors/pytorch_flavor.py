"""PyTorch models: TorchScript, ``torch.export`` programs (.pt2), state_dicts with a modelClass,
and whole pickled modules.

The model runs in eval mode under ``torch.inference_mode`` on the chosen device (fp16/bf16 on
GPU when asked). Input is ``ModelInput.tensor`` (decoded images) or the frame's values as
float32; the model's raw output comes back as rows: (N,) one value, (N, k) k columns per record.
Softmax and the like are the model's business. Out-of-memory batches are retried in halves.
"""

from __future__ import annotations

import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from kbt.api.models import ModelSpec
from kbt.flavors.backoff import predict_with_backoff
from kbt.flavors.base import BatchRejected, LoadContext, ModelInput, ModelLoadError, ModelOutput
from kbt.flavors.device import torch_device, torch_dtype
from kbt.flavors.errors import InputSchemaError
from kbt.flavors.loading import add_code_paths, find_model_file, import_attribute, model_directory
from kbt.flavors.outputs import array_rows, named_arrays_frame
from kbt.log import get_logger

log = get_logger(__name__)

MODEL_SUFFIXES = (".pt2", ".pt", ".pth", ".ts", ".torchscript", ".safetensors", ".bin")
WHAT = "the PyTorch model"


def input_tensor(batch: ModelInput, dtype: torch.dtype, device: str) -> torch.Tensor:
    """The batch as a tensor on ``device``: images as decoded, tabular rows as float values."""
    if batch.tensor is not None:
        values = batch.tensor
    elif batch.frame is not None:
        import pandas as pd

        text_columns = [
            str(c) for c, kind in batch.frame.dtypes.items() if not pd.api.types.is_numeric_dtype(kind)
        ]
        if text_columns:
            raise InputSchemaError(
                f"{WHAT} takes numeric input; column(s) {', '.join(text_columns)} are not numeric"
            )
        values = batch.frame.to_numpy(dtype=np.float32)
    else:
        raise InputSchemaError(f"{WHAT} needs tabular or image input, got content type {batch.content_type}")
    tensor = torch.from_numpy(np.require(values, requirements=["C", "W"]))
    if tensor.is_floating_point() or tensor.dtype == torch.uint8:
        tensor = tensor.to(dtype)
    return tensor.to(device)


def output_rows(output: Any, records: int) -> ModelOutput:
    if isinstance(output, torch.Tensor):
        return array_rows(output.detach().float().cpu().numpy(), records, WHAT)
    if isinstance(output, dict):
        named = output
    elif isinstance(output, list | tuple):
        named = {f"output_{i}": value for i, value in enumerate(output)}
    else:
        raise BatchRejected(
            f"{WHAT} returned {type(output).__name__}; expected a tensor, tuple or dict of tensors"
        )
    arrays = {}
    for name, value in named.items():
        if not isinstance(value, torch.Tensor):
            raise BatchRejected(f"{WHAT} output {name!r} is a {type(value).__name__}, not a tensor")
        arrays[str(name)] = value.detach().float().cpu().numpy()
    return named_arrays_frame(arrays, records, WHAT)


@dataclass
class TorchPredictor:
    module: Callable[..., Any]
    device: str
    dtype: torch.dtype
    rows_independent: bool = False  # the call is the device batch

    def predict(self, batch: ModelInput) -> ModelOutput:
        return predict_with_backoff(self._forward, batch, self._release_memory)

    def _forward(self, batch: ModelInput) -> ModelOutput:
        inputs = input_tensor(batch, self.dtype, self.device)
        with torch.inference_mode():
            try:
                output = self.module(inputs)
            except (RuntimeError, ValueError, TypeError, IndexError) as exc:
                if "out of memory" in str(exc).lower():
                    raise
                raise BatchRejected(
                    f"{WHAT} failed on input of shape {tuple(inputs.shape)} ({inputs.dtype}) from "
                    f"{batch.records[0].source}: {type(exc).__name__}: {exc}"
                ) from exc
        return output_rows(output, len(batch))

    def _release_memory(self) -> None:
        if self.device.startswith("cuda"):
            torch.cuda.empty_cache()


def _is_torchscript(path: Path) -> bool:
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        return any("/code/__torch__" in name for name in archive.namelist())


def _read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    loaded = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(loaded, dict) and isinstance(loaded.get("state_dict"), dict):
        loaded = loaded["state_dict"]  # a training checkpoint
    if not isinstance(loaded, dict):
        raise ModelLoadError(f"{path} holds a {type(loaded).__name__}, not a state_dict")
    return loaded


def _from_state_dict(path: Path, class_reference: str, class_args: dict[str, Any]) -> torch.nn.Module:
    model_class = import_attribute(class_reference, "modelClass")
    try:
        module = model_class(**class_args)
    except TypeError as exc:
        raise ModelLoadError(f"modelClass {class_reference}(**modelClassArgs) failed: {exc}") from exc
    try:
        module.load_state_dict(_read_state_dict(path))
    except RuntimeError as exc:  # missing/unexpected keys or shape mismatches, all listed by torch
        raise ModelLoadError(f"state_dict {path.name} does not fit {class_reference}: {exc}") from exc
    return module  # type: ignore[no-any-return]


def _load_module(path: Path, spec: ModelSpec) -> Callable[..., Any]:
    if path.suffix == ".pt2":
        return torch.export.load(path).module()
    if spec.modelClass:
        return _from_state_dict(path, spec.modelClass, spec.modelClassArgs)
    if _is_torchscript(path):
        return torch.jit.load(path, map_location="cpu")  # type: ignore[no-untyped-call,no-any-return]
    loaded = torch.load(path, map_location="cpu", weights_only=False)
    if isinstance(loaded, torch.nn.Module):
        return loaded
    if isinstance(loaded, dict):
        raise ModelLoadError(
            f"{path.name} is a state_dict: set modelClass (module:Class) so kbt can build the network"
        )
    raise ModelLoadError(f"{path.name} holds a {type(loaded).__name__}, not a PyTorch model")


def _parameter_dtype(module: torch.nn.Module) -> torch.dtype:
    """The dtype inputs are cast to: the model's first floating parameter's (fp32 if none)."""
    floating = (p.dtype for p in module.parameters() if p.is_floating_point())
    return next(floating, torch.float32)


def load(ctx: LoadContext) -> TorchPredictor:
    path = find_model_file(ctx.local_path, MODEL_SUFFIXES, "PyTorch")
    add_code_paths(ctx.spec, model_directory(ctx.local_path))
    try:
        module = _load_module(path, ctx.spec)
    except ModelLoadError:
        raise
    except Exception as exc:
        raise ModelLoadError(f"cannot load PyTorch model {path}: {type(exc).__name__}: {exc}") from exc
    device = torch_device(ctx.spec)
    dtype = torch_dtype(ctx.spec, device)
    if isinstance(module, torch.nn.Module):
        if path.suffix != ".pt2":  # exported programs are traced in eval mode and refuse .eval()
            module.eval()
        module.to(device)
        if dtype != torch.float32:
            module.to(dtype)
        dtype = _parameter_dtype(module)
    log.info("loaded PyTorch model", file=path.name, device=device, dtype=str(dtype))
    return TorchPredictor(module, device, dtype)
