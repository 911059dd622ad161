"""What the images install: docker/requirements.py (requirements from pyproject.toml), that the
operator image's short list really is everything `python -m kbt_operator` imports, and that
`make` tags the images as the chart expects them.

The last test runs the operator's imports in a Python that can see only the distributions the
operator image installs (the Dockerfile's `requirements.py ... operator --core ...` line and
their dependencies), so a new import the image lacks fails here, without Docker.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
import tomllib
from importlib.metadata import PackageNotFoundError, packages_distributions, requires
from pathlib import Path
from typing import Any

import pytest
import yaml
from packaging.requirements import Requirement

from harness.scripts import load_script
from kbt.api.models import Flavor
from kbt_operator.runner_images import FLAVOR_FAMILY, RunnerFamily

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "docker" / "Dockerfile"


requirements_py = load_script(REPO / "docker" / "requirements.py")
PROJECT: dict[str, Any] = tomllib.loads((REPO / "pyproject.toml").read_text())


def _names(lines: list[str]) -> list[str]:
    return [Requirement(line).name.lower() for line in lines]


def test_all_expands_self_references_once_each() -> None:
    lines = requirements_py.requirements(PROJECT, ["all"])
    names = _names(lines)
    assert len(names) == len(set(names)), names
    extras = PROJECT["project"]["optional-dependencies"]
    for extra in ("mlflow", "sklearn", "xgboost", "torch", "operator"):
        assert set(_names(extras[extra])) <= set(names), extra
    assert not any(line.startswith("kbt[") for line in lines)
    assert _names(PROJECT["project"]["dependencies"]) == names[: len(PROJECT["project"]["dependencies"])]


def test_core_subset_keeps_the_version_specs_of_pyproject() -> None:
    core = {Requirement(line).name.lower(): line for line in PROJECT["project"]["dependencies"]}
    lines = requirements_py.requirements(PROJECT, ["operator"], ["pydantic", "pyyaml"])
    assert lines[:2] == [core["pydantic"], core["pyyaml"]]
    assert "pandas" not in _names(lines) and "kopf" in _names(lines)


def test_runners_add_kubernetes_from_the_operator_extra() -> None:
    operator = {
        Requirement(line).name.lower(): line
        for line in PROJECT["project"]["optional-dependencies"]["operator"]
    }
    lines = requirements_py.requirements(PROJECT, ["mlflow", "sklearn"], extra_names=["kubernetes"])
    assert lines[-1] == operator["kubernetes"] and "kopf" not in _names(lines)
    assert re.search(r"--also kubernetes\b", DOCKERFILE.read_text()), (
        "the runner images must install kubernetes"
    )
    with pytest.raises(SystemExit, match="no extra of kbt requires nope"):
        requirements_py.requirements(PROJECT, [], extra_names=["nope"])


def test_unknown_names_are_refused_with_what_is_known() -> None:
    with pytest.raises(SystemExit, match=r"not core dependencies of kbt: kopf \(known: pydantic, "):
        requirements_py.requirements(PROJECT, ["operator"], ["kopf"])
    with pytest.raises(SystemExit, match=r"no extra 'tabular' \(known: mlflow, "):
        requirements_py.requirements(PROJECT, ["tabular"])


def test_torch_build_asks_for_the_cpu_wheel() -> None:
    lines = requirements_py.with_torch_build(requirements_py.requirements(PROJECT, ["torch"]), "cpu")
    (torch,) = [line for line in lines if line.startswith("torch")]
    assert re.fullmatch(r"torch==[0-9.]+\+cpu", torch)


def test_xgboost_build_asks_for_the_cuda_free_package_with_the_same_specifier() -> None:
    lines = requirements_py.requirements(PROJECT, ["xgboost", "sklearn"])
    (xgboost,) = [line for line in lines if line.startswith("xgboost")]
    cpu = requirements_py.with_xgboost_build(lines, "cpu")
    assert f"xgboost-cpu{xgboost.removeprefix('xgboost')}" in cpu and xgboost not in cpu
    assert [line for line in cpu if not line.startswith("xgboost")] == [
        line for line in lines if not line.startswith("xgboost")
    ]


# The extra that serves each flavor, where it is not named like the flavor.
FLAVOR_EXTRA = {Flavor.PYTORCH: "torch"}


def test_each_runner_family_image_installs_the_frameworks_of_its_flavors() -> None:
    makefile = (REPO / "Makefile").read_text()
    for family in RunnerFamily:
        match = re.search(rf"^RUNNER_FRAMEWORKS_{family} := (?P<extras>\S+)$", makefile, re.M)
        assert match, f"Makefile: no RUNNER_FRAMEWORKS_{family} for the runner-{family} image"
        flavors = [flavor for flavor, of in FLAVOR_FAMILY.items() if of == family]
        missing = {FLAVOR_EXTRA.get(f, str(f)) for f in flavors} - set(match["extras"].split(","))
        assert not missing, f"kbt/runner-{family} serves {flavors} but lacks the extras {missing}"


def _operator_image_requirements() -> list[str]:
    match = re.search(r"requirements\.py \S+ (?P<extras>\S+) --core (?P<core>\S+) > ", DOCKERFILE.read_text())
    assert match, (
        "docker/Dockerfile: no `requirements.py PYPROJECT EXTRAS --core NAMES` line for the operator"
    )
    return requirements_py.requirements(PROJECT, match["extras"].split(","), match["core"].split(","))


def _closure(lines: list[str]) -> set[str]:
    """Distributions pip installs for `lines` (as installed in this environment), names normalized."""
    seen: set[str] = set()
    pending = [Requirement(line) for line in lines]
    while pending:
        requirement = pending.pop()
        name = re.sub(r"[-_.]+", "-", requirement.name).lower()
        if name in seen:
            continue
        seen.add(name)
        try:
            dependencies = requires(requirement.name) or []
        except PackageNotFoundError:
            continue
        for text in dependencies:
            dependency = Requirement(text)
            environments = [{"extra": extra} for extra in requirement.extras] or [{"extra": ""}]
            if dependency.marker is None or any(dependency.marker.evaluate(env) for env in environments):
                pending.append(dependency)
    return seen


def test_operator_image_installs_everything_the_operator_imports() -> None:
    allowed = _closure(_operator_image_requirements()) | {"kbt"}
    hidden = sorted(
        {
            module
            for module, dists in packages_distributions().items()
            if not any(re.sub(r"[-_.]+", "-", d).lower() in allowed for d in dists)
        }
    )
    probe = textwrap.dedent(
        f"""
        import importlib.abc, sys
        HIDDEN = set({json.dumps(hidden)})
        class NotInImage(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name.partition(".")[0] in HIDDEN:
                    raise ModuleNotFoundError(f"No module named {{name!r}} (not in the operator image)")
                return None
        sys.meta_path.insert(0, NotInImage())
        import kbt_operator.__main__, kbt_operator.handlers
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, f"the operator image would lack a package:\n{result.stderr[-3000:]}"


def test_make_tags_images_with_the_charts_app_version() -> None:
    chart = yaml.safe_load((REPO / "charts" / "kbt" / "Chart.yaml").read_text())
    commands = subprocess.run(
        ["make", "-n", "--no-print-directory", "image-operator", "image-runner-tabular"],
        cwd=REPO,
        env={key: value for key, value in os.environ.items() if key != "IMAGE_TAG"},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    tags = re.findall(r" -t (kbt/[a-z-]+):(\S+)", commands)
    assert [name for name, _ in tags] == ["kbt/operator", "kbt/runner-tabular"]
    assert {tag for _, tag in tags} == {str(chart["appVersion"])}
