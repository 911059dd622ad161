"""Shared loading chores: telling MLflow URIs apart, finding the model file in a directory,
codePaths, importing classes. (Fetching the model to a local path is the runner's job:
``kbt.runner.model_fetch``.)"""

from __future__ import annotations

import importlib
import importlib.abc
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

from kbt.api.models import ModelSpec
from kbt.flavors.base import ModelLoadError

MLFLOW_SCHEMES = ("runs:/", "models:/")


def is_mlflow_uri(uri: str) -> bool:
    """True for URIs only an MLflow tracking server can resolve."""
    return uri.startswith(MLFLOW_SCHEMES)


def model_directory(local_path: Path) -> Path:
    """The directory holding the model: the path itself, or the folder of a single-file model."""
    return local_path if local_path.is_dir() else local_path.parent


def find_model_file(local_path: Path, suffixes: tuple[str, ...], flavor: str) -> Path:
    """``local_path`` if it is a file, else the one file in that directory (searched recursively)
    whose name ends in one of ``suffixes``. Errors list what was found instead."""
    if local_path.is_file():
        return local_path
    if (local_path / "MLmodel").is_file():
        raise ModelLoadError(f"{local_path} is an MLflow model directory: use flavor mlflow")
    candidates = sorted(p for p in local_path.rglob("*") if p.is_file() and p.name.endswith(suffixes))
    if len(candidates) == 1:
        return candidates[0]
    wanted = ", ".join(suffixes)
    if not candidates:
        found = sorted(str(p.relative_to(local_path)) for p in local_path.rglob("*") if p.is_file())[:10]
        raise ModelLoadError(
            f"no {flavor} model file ({wanted}) in {local_path}; found: {', '.join(found) or 'nothing'}"
        )
    names = ", ".join(str(p.relative_to(local_path)) for p in candidates)
    raise ModelLoadError(f"several {flavor} model files in {local_path} ({names}): point uri at one")


def add_code_paths(spec: ModelSpec, model_dir: Path | None) -> list[Path]:
    """Put ``spec.codePaths`` (relative ones resolved against the model directory first, then the
    working directory) and the model directory itself at the front of ``sys.path``."""
    paths: list[Path] = []
    for entry in spec.codePaths:
        path = Path(entry).expanduser()
        if not path.is_absolute() and model_dir is not None and (model_dir / path).exists():
            path = model_dir / path
        if not path.exists():
            raise ModelLoadError(f"codePaths entry {entry!r} does not exist")
        paths.append(path.resolve())
    if model_dir is not None:
        paths.append(model_dir.resolve())
    for path in reversed(paths):
        if str(path) not in sys.path:
            sys.path.insert(0, str(path))
    return paths


def import_attribute(reference: str, what: str) -> Any:
    """Import ``module:Name`` (e.g. a modelClass), with errors that say which part failed."""
    module_name, _, attribute = reference.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ModelLoadError(
            f"{what} {reference!r}: cannot import module {module_name!r} ({exc}); ship it in the "
            "model directory or list its folder in codePaths"
        ) from exc
    try:
        return getattr(module, attribute)
    except AttributeError as exc:
        raise ModelLoadError(f"{what} {reference!r}: module {module_name!r} has no {attribute!r}") from exc


# scikit-learn's array-API shim for torch: not an estimator module, but importing it imports torch.
SKLEARN_TORCH_SHIM = "sklearn.externals.array_api_compat.torch"


class _SkipModule(importlib.abc.MetaPathFinder):
    def __init__(self, name: str) -> None:
        self.name = name

    def find_spec(self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None) -> None:
        if fullname == self.name:
            raise ImportError(f"{fullname} is not needed to load the model")


@contextmanager
def without_torch_shim() -> Iterator[None]:
    """Within the block, importing scikit-learn's torch shim fails (other modules are unaffected).

    scikit-learn's estimator walk (``all_estimators()``) imports every scikit-learn module, the
    torch shim included: seconds of start-up when torch is installed (as in the runner images).
    The walk ignores modules that fail to import and the shim holds no estimator, so the walk
    finds the same estimators; the shim stays importable after the block.
    """
    if "torch" in sys.modules:
        yield
        return
    finder = _SkipModule(SKLEARN_TORCH_SHIM)
    sys.meta_path.insert(0, finder)
    try:
        yield
    finally:
        sys.meta_path.remove(finder)
