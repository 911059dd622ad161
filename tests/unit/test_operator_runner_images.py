"""The operator's runner images: defaults, KBT_RUNNER_* settings and the flavor -> family map."""

from __future__ import annotations

from importlib.metadata import version

from kbt.api.models import Flavor
from kbt_operator.config import OperatorConfig
from kbt_operator.runner_images import FLAVOR_FAMILY, RunnerFamily, RunnerImages

TAG = version("kbt")


def test_defaults_are_the_project_images_tagged_with_kbts_version() -> None:
    images = OperatorConfig.from_env({}).runner_images
    assert images.default == f"kbt/runner:{TAG}" and images.gpu == f"kbt/runner-cuda:{TAG}"
    assert dict(images.families) == {
        RunnerFamily.TABULAR: f"kbt/runner-tabular:{TAG}",
        RunnerFamily.TORCH: f"kbt/runner-torch:{TAG}",
        RunnerFamily.TF: f"kbt/runner-tf:{TAG}",
    }


def test_one_runner_image_set_serves_every_job_unless_a_family_names_its_own() -> None:
    images = RunnerImages.from_env(
        {"KBT_RUNNER_IMAGE": "acme/kbt:2", "KBT_RUNNER_TORCH_IMAGE": " acme/kbt-torch:2 "}
    )
    assert images.default == images.gpu == "acme/kbt:2"
    assert images.families[RunnerFamily.TORCH] == "acme/kbt-torch:2"
    assert images.families[RunnerFamily.TABULAR] == images.families[RunnerFamily.TF] == "acme/kbt:2"


def test_every_family_and_the_gpu_image_have_their_own_variable() -> None:
    env = {
        "KBT_RUNNER_TABULAR_IMAGE": "r/tab:1",
        "KBT_RUNNER_TORCH_IMAGE": "r/torch:1",
        "KBT_RUNNER_TF_IMAGE": "r/tf:1",
        "KBT_RUNNER_GPU_IMAGE": "r/cuda:1",
    }
    images = RunnerImages.from_env(env)
    assert [images.families[family] for family in RunnerFamily] == ["r/tab:1", "r/torch:1", "r/tf:1"]
    assert images.gpu == "r/cuda:1" and images.default == f"kbt/runner:{TAG}"
    assert "tabular=r/tab:1" in images.summary() and "gpu=r/cuda:1" in images.summary()


def test_every_built_in_flavor_but_custom_has_a_family() -> None:
    assert set(FLAVOR_FAMILY) == set(Flavor) - {Flavor.CUSTOM}
