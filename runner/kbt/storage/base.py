"""The storage contract: ``Store`` (objects addressed by key), ``ObjectInfo`` and the errors.

Every operation either succeeds, raises ``ObjectNotFound`` / ``StorageError`` (non-retriable:
missing bucket, access denied), or, after its retries are spent, ``StorageUnavailable``
(transient: a shard exits with the retriable code and Kubernetes retries it). Writes are atomic:
a reader sees the old object or the whole new one, never a prefix of it.
"""

from __future__ import annotations

import shutil
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

TEMP_MARK = ".kbt-tmp-"
COPY_CHUNK = 8 * 1024 * 1024


class StorageError(Exception):
    """A storage operation failed for a reason retrying cannot fix (missing bucket, denied).

    ``code`` is the S3 error code (``NoSuchBucket``, ``AccessDenied``...) when S3 gave one."""

    def __init__(self, message: str, code: str = "") -> None:
        super().__init__(message)
        self.code = code


class ObjectNotFound(StorageError):
    """The object does not exist."""


class StorageUnavailable(Exception):
    """Storage kept failing transiently (5xx, throttling, timeouts, resets) after all retries."""


@dataclass(frozen=True, order=True)
class ObjectInfo:
    key: str
    size: int
    version: str = ""  # changes whenever the content may have: S3 ETag, local modification time


class Store(ABC):
    """Objects addressed by key; see the module docstring for the error contract."""

    # Whether a request waits on a network, which a shard overlaps with its work
    # (kbt.runner.pipeline); local files are read and written in microseconds.
    remote = True

    @abstractmethod
    def uri(self, key: str) -> str:
        """The URI of ``key`` (``s3://bucket/key`` or the local path)."""

    @abstractmethod
    def list_objects(self, prefix: str) -> list[ObjectInfo]:
        """Every object whose key starts with ``prefix``, sorted by key."""

    @abstractmethod
    def size(self, key: str) -> int: ...

    @abstractmethod
    def stat(self, key: str) -> ObjectInfo:
        """Size and version of ``key``; ``ObjectNotFound`` when it does not exist."""

    @abstractmethod
    def open(self, key: str, start: int = 0, end: int | None = None) -> BinaryIO:
        """A streaming reader of bytes ``[start, end)`` of ``key`` (to the end when None)."""

    @abstractmethod
    def put(self, key: str, data: bytes) -> None: ...

    @abstractmethod
    def put_file(self, key: str, path: Path) -> None:
        """Upload a local file as ``key`` atomically (large files stream, never in memory)."""

    @abstractmethod
    def delete(self, key: str) -> None:
        """Remove ``key``; no error when it does not exist."""

    @abstractmethod
    def compose(self, key: str, parts: list[str], scratch: Path) -> None:
        """Write the concatenation of ``parts`` (in order) as ``key``, atomically."""

    def read(self, key: str, start: int = 0, end: int | None = None) -> bytes:
        with self.open(key, start, end) as reader:
            return reader.read()

    def exists(self, key: str) -> bool:
        try:
            self.size(key)
        except ObjectNotFound:
            return False
        return True

    def concatenate_locally(self, parts: list[str], target: Path) -> None:
        """Stream ``parts`` one after another into the local file ``target``."""
        with target.open("wb") as out:
            for part in parts:
                with self.open(part) as reader:
                    shutil.copyfileobj(reader, out, COPY_CHUNK)


def directory_prefix(prefix: str) -> str:
    """``prefix`` as a folder: ``out`` -> ``out/``; empty stays empty (the bucket root)."""
    return prefix if not prefix or prefix.endswith("/") else prefix + "/"


def iter_chunks(reader: BinaryIO, size: int = COPY_CHUNK) -> Iterator[bytes]:
    while chunk := reader.read(size):
        yield chunk
