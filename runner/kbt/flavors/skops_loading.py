"""Load skops files fast, with skops' own trust rules.

Importing ``skops.io`` builds its default trusted-type list by walking every scikit-learn module
(``sklearn.utils.discovery.all_estimators``): seconds of start-up, and the walk imports torch
through scikit-learn's array-API shim. kbt imports ``skops.io`` with that walk switched off (the
default list then trusts no scikit-learn estimator) and gives back, per file, the trust skops
would have given: each scikit-learn type the file names is checked to be one the walk lists (a
public, non-abstract ``BaseEstimator`` of a public scikit-learn module); only a name that check
cannot place runs the real walk, once. Every other type must be trusted by the caller: an MLflow
model's ``skops_trusted_types``, or, for a plain ``.skops`` file the job names, every type in it
(the owner chose the model, the trust a pickle gets; the types are logged).
"""

from __future__ import annotations

import importlib
import inspect
import sys
from collections.abc import Collection
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

from kbt.flavors.base import ModelLoadError
from kbt.flavors.loading import without_torch_shim
from kbt.log import get_logger

log = get_logger(__name__)

SKLEARN_PREFIX = "sklearn."
# Module-name parts the walk skips (sklearn.utils.discovery._MODULE_TO_IGNORE).
IGNORED_MODULE_PARTS = frozenset(
    {"tests", "externals", "setup", "conftest", "experimental", "estimator_checks"}
)


def _no_estimators(type_filter: Any = None) -> list[tuple[str, type]]:
    return []


def skops_io() -> ModuleType:
    """``skops.io``, imported without the walk of every scikit-learn estimator (see above)."""
    if "skops.io" in sys.modules:
        return sys.modules["skops.io"]
    import sklearn.utils

    walk = sklearn.utils.all_estimators
    sklearn.utils.all_estimators = _no_estimators  # what skops.io._trusted_types calls on import
    try:
        return importlib.import_module("skops.io")
    finally:
        sklearn.utils.all_estimators = walk


def _public_parents(module_name: str) -> list[str]:
    """The modules the walk visits that may re-export a class of ``module_name``: its ancestors
    (and itself) up to the first private part, below ``sklearn`` itself."""
    parts = module_name.split(".")
    public: list[str] = []
    for end in range(2, len(parts) + 1):
        if parts[end - 1].startswith("_"):
            break
        public.append(".".join(parts[:end]))
    return public


def _listed_by_nearby_module(name: str) -> bool:
    """True when ``name`` is surely in the walk's list: a public, non-abstract estimator class
    exported under its own name by a public scikit-learn module above its own."""
    from sklearn.base import BaseEstimator

    module_name, _, class_name = name.rpartition(".")
    parts = module_name.split(".")
    if not all(part.isidentifier() for part in [*parts, class_name]):
        return False  # not a name a class can have: never imported
    if class_name.startswith("_") or class_name == "BaseEstimator" or IGNORED_MODULE_PARTS & set(parts):
        return False
    try:
        found = getattr(importlib.import_module(module_name), class_name, None)
    except ImportError:
        return False
    if not (inspect.isclass(found) and issubclass(found, BaseEstimator) and not inspect.isabstract(found)):
        return False
    if f"{found.__module__}.{found.__qualname__}" != name:
        return False
    for parent in _public_parents(module_name):
        try:
            if getattr(importlib.import_module(parent), class_name, None) is found:
                return True
        except ImportError:
            continue
    return False


@cache
def _walked_estimator_names() -> frozenset[str]:
    """The walk skops runs on import, for names the quick check cannot place (seconds)."""
    from sklearn.utils.discovery import all_estimators

    with without_torch_shim():
        names = {f"{cls.__module__}.{cls.__qualname__}" for _, cls in all_estimators()}
    return frozenset(name for name in names if name.startswith(SKLEARN_PREFIX))


def is_sklearn_estimator(name: str) -> bool:
    """Whether skops trusts type ``name`` by default as a scikit-learn estimator."""
    if not name.startswith(SKLEARN_PREFIX):
        return False
    return _listed_by_nearby_module(name) or name in _walked_estimator_names()


def load_skops(path: Path, trusted: Collection[str] | None) -> Any:
    """The object in skops file ``path``. ``trusted``: the types trusted beyond skops' defaults
    (a type outside both is a ``ModelLoadError`` naming it), or None to trust every type in the
    file (logged)."""
    skops = skops_io()
    try:
        named = skops.get_untrusted_types(file=path)
    except Exception as exc:
        raise ModelLoadError(f"cannot read skops file {path}: {type(exc).__name__}: {exc}") from exc
    others = [name for name in named if not is_sklearn_estimator(name)]
    if trusted is None:
        if others:
            log.info("trusting skops types", file=path.name, types=others)
    else:
        refused = [name for name in others if name not in set(trusted)]
        if refused:
            raise ModelLoadError(
                f"{path.name} holds types that are not trusted: {', '.join(refused)}; "
                "list them in the model's skops_trusted_types if they are safe"
            )
    try:
        return skops.load(path, trusted=named)
    except Exception as exc:
        raise ModelLoadError(f"cannot unpickle {path}: {type(exc).__name__}: {exc}") from exc
