"""Bring the job's model to a local path before a flavor loads it.

s3:// prefixes or objects, file:// URIs and plain paths; MLflow registry and run URIs
(``runs:/``, ``models:/name/version``, ``models:/name@alias``) are left to the mlflow flavor,
which resolves them against ``MLFLOW_TRACKING_URI``, and downloaded here for every other flavor.
S3 access goes through the job's S3 connection (``spec.s3``: endpoint, addressing style, region;
credentials from the environment, which the pod gets from the job's Secret) with the same store
and retries as the data plane. A single ``.tar.gz`` object (SageMaker's ``model.tar.gz``) is
unpacked.
"""

from __future__ import annotations

import shutil
import tarfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlparse

from kbt.api.models import Flavor, ModelSpec
from kbt.flavors.base import ModelLoadError
from kbt.flavors.loading import is_mlflow_uri
from kbt.log import get_logger
from kbt.storage import ObjectNotFound, S3Settings, StorageError, StorageUnavailable, split_s3_uri

if TYPE_CHECKING:
    from kbt.storage.s3 import S3Store

log = get_logger(__name__)

ARCHIVE_SUFFIXES = (".tar.gz", ".tgz")
DOWNLOAD_THREADS = 8


def fetch_model(spec: ModelSpec, scratch: Path, s3: S3Settings | None = None) -> Path:
    """Return a local file or directory holding the model named by ``spec.uri``.

    Remote models are downloaded under ``scratch/model``; ``s3`` says where S3 is (default: the
    environment's endpoint). For flavor ``mlflow`` with an MLflow
    URI, returns ``Path("")``: the flavor resolves it. Raises ``ModelLoadError`` naming the URI
    when nothing can be fetched.
    """
    uri = spec.uri
    if is_mlflow_uri(uri):
        if spec.flavor == Flavor.MLFLOW:
            return Path("")
        return _download_mlflow_artifacts(uri, _fresh_dir(scratch / "model"))
    if uri.startswith("s3://"):
        return _fetch_s3(uri, _fresh_dir(scratch / "model"), s3 or S3Settings())
    local = Path(unquote(urlparse(uri).path)) if uri.startswith("file://") else Path(uri).expanduser()
    if not local.exists():
        raise ModelLoadError(f"model not found: {uri} (no such file or directory: {local})")
    return local


def _fresh_dir(path: Path) -> Path:
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


def _download_mlflow_artifacts(uri: str, target: Path) -> Path:
    try:
        import mlflow.artifacts  # heavy and optional: only registry models need it
    except ImportError as exc:
        raise ModelLoadError(f"{uri} is an MLflow URI but mlflow is not installed") from exc
    try:
        return Path(mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=str(target)))
    except Exception as exc:
        raise ModelLoadError(f"cannot download {uri} from MLflow: {exc}") from exc


def _fetch_s3(uri: str, target: Path, settings: S3Settings) -> Path:
    from kbt.storage.s3 import S3Store  # noqa: PLC0415 (boto3 costs seconds: only models on S3 pay for it)

    bucket, key = split_s3_uri(uri)
    store = S3Store(bucket, settings)
    try:
        prefix = key.rstrip("/") + "/" if key else ""
        keys = [info.key for info in store.list_objects(prefix)]
        if keys:
            return _download_prefix(store, prefix, keys, target)
        if key and not key.endswith("/"):
            store.size(key)
            return _download_object(store, key, target)
    except ObjectNotFound:
        pass
    except (StorageError, StorageUnavailable) as exc:
        raise ModelLoadError(f"cannot fetch model {uri}: {exc}") from exc
    raise ModelLoadError(f"model not found: no object or prefix at {uri}")


def _local_name(relative: str, uri: str) -> PurePosixPath:
    path = PurePosixPath(relative)
    if path.is_absolute() or ".." in path.parts:
        raise ModelLoadError(f"refusing to download {uri}: key escapes the model directory")
    return path


def _download_prefix(store: S3Store, prefix: str, keys: list[str], target: Path) -> Path:
    def download(key: str) -> None:
        destination = target / _local_name(key[len(prefix) :], store.uri(key))
        destination.parent.mkdir(parents=True, exist_ok=True)
        store.download(key, destination)

    with ThreadPoolExecutor(max_workers=min(DOWNLOAD_THREADS, len(keys))) as pool:
        list(pool.map(download, keys))
    log.info("fetched model files", files=len(keys), uri=store.uri(prefix))
    return target


def _download_object(store: S3Store, key: str, target: Path) -> Path:
    name = PurePosixPath(key).name
    destination = target / name
    store.download(key, destination)
    if name.endswith(ARCHIVE_SUFFIXES):
        unpacked = _fresh_dir(target / "unpacked")
        try:
            with tarfile.open(destination) as archive:
                archive.extractall(unpacked, filter="data")
        except (tarfile.TarError, OSError) as exc:
            raise ModelLoadError(f"cannot unpack {store.uri(key)}: {exc}") from exc
        destination.unlink()
        return unpacked
    return destination
