"""Which runner image a shard pod runs: one image per framework family, picked by the model's flavor.

The project builds a CPU runner per family (``make images-runners``: kbt/runner-tabular,
kbt/runner-torch, kbt/runner-tf), an all-in-one CPU runner (kbt/runner, every framework) and a
GPU runner (kbt/runner-cuda). A shard pod gets, first match wins:

1. the model's ``image`` (``spec.model.image`` or the Model resource's);
2. the GPU runner image on GPU instance types (it has every framework);
3. the image of the flavor's family (``FLAVOR_FAMILY``);
4. the all-in-one runner image: scoring scripts (flavor ``custom``) may import anything.

MLflow models go to the tabular image: their framework is written in the model's MLmodel file,
which the operator never reads (it does not touch model data). An MLflow model of another
framework names its image, e.g. ``image: kbt/runner-torch:<version>``.

Operator settings (``config``): ``KBT_RUNNER_IMAGE`` (all-in-one), ``KBT_RUNNER_TABULAR_IMAGE``,
``KBT_RUNNER_TORCH_IMAGE``, ``KBT_RUNNER_TF_IMAGE``, ``KBT_RUNNER_GPU_IMAGE``. Unset, each is
the project's image tagged with kbt's version, except where ``KBT_RUNNER_IMAGE`` is set: then
the unset ones are that image (one image serves every job, as before there were families).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from importlib.metadata import PackageNotFoundError, version

from kbt.api.models import Flavor, ModelSpec

DEFAULT_IMAGE_VARIABLE = "KBT_RUNNER_IMAGE"
GPU_IMAGE_VARIABLE = "KBT_RUNNER_GPU_IMAGE"


class RunnerFamily(StrEnum):
    """A CPU runner image with one framework family; the value names it (kbt/runner-<value>)."""

    TABULAR = "tabular"
    TORCH = "torch"
    TF = "tf"

    @property
    def variable(self) -> str:
        return f"KBT_RUNNER_{self.name}_IMAGE"


FLAVOR_FAMILY: Mapping[Flavor, RunnerFamily] = {
    Flavor.SKLEARN: RunnerFamily.TABULAR,
    Flavor.XGBOOST: RunnerFamily.TABULAR,
    Flavor.MLFLOW: RunnerFamily.TABULAR,
    Flavor.PYTORCH: RunnerFamily.TORCH,
    Flavor.TRANSFORMERS: RunnerFamily.TORCH,
    Flavor.TENSORFLOW: RunnerFamily.TF,
}


def project_image(repository: str) -> str:
    """`repository` tagged with kbt's version, the tag `make images` gives the images it builds."""
    try:
        tag = version("kbt")
    except PackageNotFoundError:
        tag = "latest"
    return f"{repository}:{tag}"


@dataclass(frozen=True)
class RunnerImages:
    """The operator's runner images; a family without an image of its own gets `default`."""

    default: str
    gpu: str
    families: Mapping[RunnerFamily, str] = field(default_factory=dict)

    def for_model(self, model: ModelSpec, *, gpu: bool) -> str:
        if model.image:
            return model.image
        if gpu:
            return self.gpu
        family = FLAVOR_FAMILY.get(model.flavor)
        return self.families.get(family, self.default) if family else self.default

    def summary(self) -> str:
        """One line naming every image, for the operator's start-up log."""
        families = ", ".join(f"{family}={self.families.get(family, self.default)}" for family in RunnerFamily)
        return f"{families}, all-in-one={self.default}, gpu={self.gpu}"

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> RunnerImages:
        def setting(variable: str) -> str:
            return env.get(variable, "").strip()

        explicit_default = setting(DEFAULT_IMAGE_VARIABLE)

        def image(variable: str, repository: str) -> str:
            return setting(variable) or explicit_default or project_image(repository)

        return cls(
            default=image(DEFAULT_IMAGE_VARIABLE, "kbt/runner"),
            gpu=image(GPU_IMAGE_VARIABLE, "kbt/runner-cuda"),
            families={family: image(family.variable, f"kbt/runner-{family}") for family in RunnerFamily},
        )
