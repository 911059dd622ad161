"""Pick the device and numeric precision a model runs with.

CUDA is used when the framework sees a GPU and ``spec.device`` allows it (``auto`` or ``cuda``);
``device: cuda`` without a visible GPU is a load error rather than a silent slowdown. fp16/bf16
apply on GPU only: on CPU models run in fp32 (half precision is slower there, and lossy).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from kbt.api.models import DevicePreference, ModelSpec, Precision
from kbt.flavors.base import ModelLoadError
from kbt.log import get_logger

if TYPE_CHECKING:
    import torch

log = get_logger(__name__)

NVIDIA_PROC = Path("/proc/driver/nvidia/gpus")


def choose_device(spec: ModelSpec, gpus: int, framework: str) -> str:
    if spec.device == DevicePreference.CPU:
        return "cpu"
    if gpus > 0:
        return "cuda:0"
    if spec.device == DevicePreference.CUDA:
        raise ModelLoadError(f"model asks for device cuda but {framework} sees no GPU on this node")
    return "cpu"


def torch_device(spec: ModelSpec) -> str:
    """``cuda:0`` or ``cpu`` for a PyTorch model (transformers included)."""
    import torch

    return choose_device(spec, torch.cuda.device_count() if torch.cuda.is_available() else 0, "torch")


def tensorflow_device(spec: ModelSpec) -> str:
    """``cuda:0`` or ``cpu`` for TensorFlow; with ``device: cpu`` GPUs are hidden from TF."""
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if spec.device == DevicePreference.CPU and gpus:
        tf.config.set_visible_devices([], "GPU")
    return choose_device(spec, len(gpus), "tensorflow")


def driver_device(spec: ModelSpec) -> str:
    """``cuda:0`` or ``cpu`` judged by the NVIDIA driver alone (frameworks that import no CUDA
    runtime themselves, such as XGBoost), so no heavy framework is imported to decide."""
    gpus = len(list(NVIDIA_PROC.iterdir())) if NVIDIA_PROC.is_dir() else 0
    return choose_device(spec, gpus, "the NVIDIA driver")


def torch_dtype(spec: ModelSpec, device: str) -> torch.dtype:
    """The parameter dtype: fp16/bf16 when asked for and on GPU, else fp32."""
    import torch

    if spec.precision == Precision.FP32:
        return torch.float32
    if not device.startswith("cuda"):
        log.info("precision ignored on CPU: running in fp32", precision=spec.precision)
        return torch.float32
    return torch.float16 if spec.precision == Precision.FP16 else torch.bfloat16


def keras_dtype_policy(spec: ModelSpec, device: str) -> str | None:
    """A Keras mixed-precision policy name for GPU runs, or None to keep the model's own."""
    if spec.precision == Precision.FP32 or not device.startswith("cuda"):
        return None
    return "mixed_float16" if spec.precision == Precision.FP16 else "mixed_bfloat16"
