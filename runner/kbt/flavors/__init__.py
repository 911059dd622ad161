"""Model flavors: ``load_predictor`` imports only the module of the flavor asked for.

The runner fetches the model once per shard (``kbt.runner.model_fetch``), builds a
``LoadContext`` with the local path it gets, then calls ``load_predictor(ctx)``; the predictor's
``predict`` takes one ``ModelInput`` per mini-batch. Heavy frameworks are imported inside each
flavor module only.
"""

from __future__ import annotations

import importlib
import os
from typing import Protocol, cast

from kbt.api.models import Flavor
from kbt.flavors.base import BatchRejected, LoadContext, ModelLoadError, Predictor
from kbt.flavors.errors import DeviceOutOfMemoryError, InputSchemaError, RecordsRejected
from kbt.flavors.loading import is_mlflow_uri

__all__ = [
    "BatchRejected",
    "DeviceOutOfMemoryError",
    "InputSchemaError",
    "ModelLoadError",
    "RecordsRejected",
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
