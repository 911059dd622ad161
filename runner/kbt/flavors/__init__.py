"""Model flavors: ``load_predictor`` imports only the module of the flavor asked for.

The runner fetches the model once per shard (``kbt.runner.model_fetch``), builds a
``LoadContext`` with the local path it gets, then calls ``load_predictor(ctx)``; the predictor's
``predict`` takes one ``ModelInput`` per mini-batch. Heavy frameworks are imported inside each
flavor module only.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from typing import Protocol, cast

from kbt.api.models import Flavor, ModelSpec
from kbt.flavors.base import BatchRejected, LoadContext, ModelLoadError, Predictor
from kbt.flavors.errors import DeviceOutOfMemoryError, InputSchemaError, RecordsRejected
from kbt.flavors.loading import is_mlflow_uri

__all__ = [
    "BatchRejected",
    "DeviceOutOfMemoryError",
    "InputSchemaError",
    "ModelLoadError",
    "RecordsRejected",
    "fork_safe",
    "is_mlflow_uri",
    "load_predictor",
]

FLAVOR_MODULES: dict[Flavor, str] = {
    Flavor.MLFLOW: "kbt.flavors.mlflow_flavor",
    Flavor.SKLEARN: "kbt.flavors.sklearn_flavor",
    Flavor.XGBOOST: "kbt.flavors.xgboost_flavor",
    Flavor.PYTORCH: "kbt.flavors.pytorch_flavor",
    Flavor.TENSORFLOW: "kbt.flavors.tensorflow_flavor",
    Flavor.TRANSFORMERS: "kbt.flavors.transformers_flavor",
    Flavor.CUSTOM: "kbt.flavors.custom_flavor",
}


class _FlavorModule(Protocol):
    def load(self, ctx: LoadContext) -> Predictor: ...


def load_predictor(ctx: LoadContext) -> Predictor:
    """Load the model of ``ctx`` with its flavor's loader; ``ctx.environment`` is exported first
    (model code may read it at import time). Raises ``ModelLoadError`` with the reason."""
    os.environ.update(ctx.environment)
    flavor = ctx.spec.flavor
    try:
        module = cast(_FlavorModule, importlib.import_module(FLAVOR_MODULES[flavor]))
    except ImportError as exc:
        raise ModelLoadError(
            f"flavor {flavor.value!r} needs a package this runner image lacks: {exc}; "
            "set the model's image to one with that framework installed"
        ) from exc
    return module.load(ctx)


def fork_safe(spec: ModelSpec, local_path: Path) -> bool:
    """Whether ``kbt run`` may fork its workers from a process that loaded this model.

    Yes for scikit-learn, XGBoost on CPU and the MLflow models kbt loads itself
    (``mlflow_direct``): they start no threads and no device context while loading. No for
    TensorFlow (its runtime threads start at import and do not survive a fork), torch and
    transformers (a fork after torch's thread pool started, or with a CUDA context, hangs or fails
    in the child), XGBoost asked to use a GPU, scoring scripts (user code; its ``init()`` runs once
    per worker, as on Azure) and MLflow models mlflow loads.
    """
    from kbt.flavors.device import driver_device
    from kbt.flavors.mlflow_direct import direct_flavor, read_mlmodel

    if spec.flavor == Flavor.MLFLOW:
        if not local_path.parts or not (local_path / "MLmodel").is_file():
            return False  # a registry URI: only mlflow can fetch it
        try:
            return direct_flavor(read_mlmodel(local_path)) is not None
        except ModelLoadError:
            return False
    if spec.flavor == Flavor.XGBOOST:
        return driver_device(spec) == "cpu"
    return spec.flavor == Flavor.SKLEARN
