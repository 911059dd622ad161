"""Object storage shared by the runner and the kubectl plugin: S3 and local paths behind ``Store``.

``base`` holds the contract (``Store``, ``ObjectInfo``, the errors), ``local`` the file system,
``settings`` which S3 to use (``S3Settings``, ``s3://`` parsing), ``s3`` the one S3 client.
``open_location(uri)`` returns the store and the key prefix a URI names. Nothing here imports
pandas or the runner; boto3 is imported only when an ``s3://`` location is opened.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlparse

from kbt.storage.base import (
    COPY_CHUNK,
    TEMP_MARK,
    ObjectInfo,
    ObjectNotFound,
    StorageError,
    StorageUnavailable,
    Store,
    directory_prefix,
    iter_chunks,
)
from kbt.storage.local import LocalStore
from kbt.storage.settings import S3Credentials, S3Settings, split_s3_uri

__all__ = [
    "COPY_CHUNK",
    "TEMP_MARK",
    "LocalStore",
    "ObjectInfo",
    "ObjectNotFound",
    "S3Credentials",
    "S3Settings",
    "StorageError",
    "StorageUnavailable",
    "Store",
    "directory_prefix",
    "iter_chunks",
    "open_location",
    "split_s3_uri",
]


def open_location(uri: str, settings: S3Settings | None = None) -> tuple[Store, str]:
    """The store holding ``uri`` and the key prefix it names (local prefixes are absolute)."""
    if uri.startswith("s3://"):
        from kbt.storage.s3 import S3Store  # noqa: PLC0415 (boto3 costs seconds: only jobs on S3 pay for it)

        bucket, prefix = split_s3_uri(uri)
        return S3Store(bucket, settings or S3Settings()), prefix
    path = unquote(urlparse(uri).path) if uri.startswith("file://") else uri
    absolute = Path(path).expanduser().absolute().as_posix()
    return LocalStore(), absolute + ("/" if path.endswith("/") and not absolute.endswith("/") else "")
