"""What identifies the model's content, for the resume fingerprint (``kbt.runner.plan``).

A model retrained at the same URI must not reuse the old outputs, so the fingerprint holds, next
to the model spec: on S3 the key, size and ETag of every model object; on a local path the
relative path, size and modification time of every file; for an MLflow ``models:/`` URI the
registered version and run id it resolves to now (against ``MLFLOW_TRACKING_URI``). ``runs:/``
URIs name their run already. A model that cannot be found or resolved gets an identity that
says so (loading it fails with its own error); it never matches one that was found.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from kbt.api.models import ModelSpec
from kbt.flavors.base import ModelLoadError
from kbt.storage import LocalStore, ObjectInfo, ObjectNotFound, S3Settings, Store, open_location


def model_identity(spec: ModelSpec, s3: S3Settings) -> dict[str, Any]:
    """``{"uri": ..., "objects": [[name, size, version], ...]}`` or, for ``models:/``, the
    resolved ``version`` and ``run_id`` (``error`` when it cannot be resolved)."""
    uri = spec.uri
    if uri.startswith("models:/"):
        return {"uri": uri, **_registered_version(uri)}
    if uri.startswith("runs:/"):
        return {"uri": uri}
    if uri.startswith("s3://"):
        store, key = open_location(uri, s3)
    else:
        local = Path(unquote(urlparse(uri).path)) if uri.startswith("file://") else Path(uri).expanduser()
        store, key = LocalStore(), local.absolute().as_posix()
    folder = key.rstrip("/") + "/" if key else ""
    objects = _objects(store, key, folder)
    return {"uri": uri, "objects": [[o.key[len(folder) :] or o.key, o.size, o.version] for o in objects]}


def _objects(store: Store, key: str, folder: str) -> list[ObjectInfo]:
    """The objects under ``folder``, or the single object ``key``."""
    found = store.list_objects(folder)
    if found or not key or key.endswith("/"):
        return found
    try:
        return [store.stat(key)]
    except ObjectNotFound:
        return []


def _registered_version(uri: str) -> dict[str, str]:
    try:
        return _resolve(uri)
    except ModelLoadError as exc:
        return {"error": str(exc)}


def _resolve(uri: str) -> dict[str, str]:
    """The version and run id a ``models:/name/version``, ``/stage`` or ``@alias`` URI names now."""
    try:
        from mlflow.tracking import MlflowClient  # heavy and optional: only registry models need it
    except ImportError as exc:
        raise ModelLoadError(f"{uri} is an MLflow URI but mlflow is not installed") from exc
    reference = uri[len("models:/") :].strip("/")
    client = MlflowClient()
    try:
        if "@" in reference:
            name, alias = reference.split("@", 1)
            found = client.get_model_version_by_alias(name, alias)
        else:
            name, _, version = reference.partition("/")
            if version.isdigit():
                found = client.get_model_version(name, version)
            else:
                stages = [] if version in ("", "latest") else [version]
                found = max(client.get_latest_versions(name, stages), key=lambda v: int(v.version))
    except Exception as exc:
        raise ModelLoadError(f"cannot resolve {uri} in the MLflow registry: {exc}") from exc
    return {"version": str(found.version), "run_id": str(found.run_id or "")}
