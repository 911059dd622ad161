"""Storage the runner reads and writes: S3 (``s3://bucket/prefix``) and local paths (``file://``).

A ``Store`` addresses objects by *key*: the S3 object key, or the absolute POSIX path of a local
file. ``open_location(uri)`` returns the store and the key prefix a URI names. Every operation
either succeeds, raises ``ObjectNotFound`` / ``StorageError`` (non-retriable: missing bucket,
access denied), or, after its retries are spent, ``StorageUnavailable`` (transient: the shard
exits with the retriable code and Kubernetes retries it). Writes are atomic: a reader sees the
old object or the whole new one, never a prefix of it.
"""

from __future__ import annotations

import io
import os
import shutil
import uuid
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO
from urllib.parse import unquote, urlparse

TEMP_MARK = ".kbt-tmp-"
COPY_CHUNK = 8 * 1024 * 1024


class StorageError(Exception):
    """A storage operation failed for a reason retrying cannot fix (missing bucket, denied)."""


class ObjectNotFound(StorageError):
    """The object does not exist."""


class StorageUnavailable(Exception):
    """Storage kept failing transiently (5xx, throttling, timeouts, resets) after all retries."""


@dataclass(frozen=True, order=True)
class ObjectInfo:
    key: str
    size: int


@dataclass(frozen=True)
class S3Settings:
    """Where S3 is: endpoint (MinIO, Ceph...; default from AWS_ENDPOINT_URL_S3), style, region."""

    endpoint_url: str | None = None
    addressing_style: str = "auto"
    region: str | None = None


class Store(ABC):
    """Objects addressed by key; see the module docstring for the error contract."""

    @abstractmethod
    def uri(self, key: str) -> str:
        """The URI of ``key`` (``s3://bucket/key`` or the local path)."""

    @abstractmethod
    def list_objects(self, prefix: str) -> list[ObjectInfo]:
        """Every object whose key starts with ``prefix``, sorted by key."""

    @abstractmethod
    def size(self, key: str) -> int: ...

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


class _LocalRange(io.RawIOBase):
    """Bytes [start, end) of a local file."""

    def __init__(self, path: Path, start: int, end: int | None) -> None:
        self._file = path.open("rb")
        self._file.seek(start)
        self._left = None if end is None else max(0, end - start)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        view = memoryview(buffer).cast("B")
        wanted = len(view) if self._left is None else min(len(view), self._left)
        if wanted == 0:
            return 0
        count = self._file.readinto(view[:wanted])
        if self._left is not None:
            self._left -= count
        return count

    def close(self) -> None:
        self._file.close()
        super().close()


class LocalStore(Store):
    """The local file system; keys are absolute POSIX paths."""

    def uri(self, key: str) -> str:
        return key

    def list_objects(self, prefix: str) -> list[ObjectInfo]:
        root = Path(prefix if prefix.endswith("/") else os.path.dirname(prefix) or "/")
        if Path(prefix).is_file():
            return [ObjectInfo(prefix, Path(prefix).stat().st_size)]
        if not root.is_dir():
            return []
        found = []
        for directory, _, files in os.walk(root):
            for name in files:
                path = os.path.join(directory, name)
                if path.startswith(prefix) and TEMP_MARK not in name:
                    found.append(ObjectInfo(Path(path).as_posix(), os.path.getsize(path)))
        return sorted(found)

    def size(self, key: str) -> int:
        try:
            return Path(key).stat().st_size
        except FileNotFoundError:
            raise ObjectNotFound(f"{key}: no such file") from None

    def open(self, key: str, start: int = 0, end: int | None = None) -> BinaryIO:
        try:
            return io.BufferedReader(_LocalRange(Path(key), start, end), COPY_CHUNK)
        except FileNotFoundError:
            raise ObjectNotFound(f"{key}: no such file") from None
        except OSError as exc:
            raise StorageError(f"{key}: cannot read: {exc.strerror}") from exc

    def _temp_for(self, key: str) -> Path:
        path = Path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        return path.with_name(f"{TEMP_MARK}{path.name}.{uuid.uuid4().hex[:8]}")

    def put(self, key: str, data: bytes) -> None:
        temp = self._temp_for(key)
        temp.write_bytes(data)
        os.replace(temp, key)

    def put_file(self, key: str, path: Path) -> None:
        temp = self._temp_for(key)
        shutil.copyfile(path, temp)
        os.replace(temp, key)

    def delete(self, key: str) -> None:
        Path(key).unlink(missing_ok=True)

    def compose(self, key: str, parts: list[str], scratch: Path) -> None:
        temp = self._temp_for(key)
        self.concatenate_locally(parts, temp)
        os.replace(temp, key)


def split_s3_uri(uri: str) -> tuple[str, str]:
    parsed = urlparse(uri)
    return parsed.netloc, parsed.path.lstrip("/")


def open_location(uri: str, settings: S3Settings | None = None) -> tuple[Store, str]:
    """The store holding ``uri`` and the key prefix it names (local prefixes are absolute)."""
    if uri.startswith("s3://"):
        from kbt.runner.s3 import S3Store

        bucket, prefix = split_s3_uri(uri)
        return S3Store(bucket, settings or S3Settings()), prefix
    path = unquote(urlparse(uri).path) if uri.startswith("file://") else uri
    absolute = Path(path).expanduser().absolute().as_posix()
    return LocalStore(), absolute + ("/" if path.endswith("/") and not absolute.endswith("/") else "")


def directory_prefix(prefix: str) -> str:
    """``prefix`` as a folder: ``out`` -> ``out/``; empty stays empty (the bucket root)."""
    return prefix if not prefix or prefix.endswith("/") else prefix + "/"


def iter_chunks(reader: BinaryIO, size: int = COPY_CHUNK) -> Iterator[bytes]:
    while chunk := reader.read(size):
        yield chunk
