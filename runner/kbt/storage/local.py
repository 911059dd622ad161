"""``LocalStore``: the local file system as a ``Store``; keys are absolute POSIX paths."""

from __future__ import annotations

import io
import os
import random
import shutil
import stat
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import BinaryIO

from kbt.storage.base import COPY_CHUNK, TEMP_MARK, ObjectInfo, ObjectNotFound, StorageError, Store


class _LocalRange(io.RawIOBase):
    """Bytes [start, end) of a local file."""

    def __init__(self, path: str, start: int, end: int | None) -> None:
        self._file = open(path, "rb")  # noqa: SIM115 (closed by close())
        if start:
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


def _pread(fd: int, offset: int, count: int | None) -> bytes:
    """``count`` bytes (None: all) from ``offset``, or fewer where the file ends."""
    parts = []
    while count is None or count > 0:
        data = os.pread(fd, COPY_CHUNK if count is None else count, offset)
        if not data:
            break
        parts.append(data)
        offset += len(data)
        count = None if count is None else count - len(data)
    return b"".join(parts)


def _write_bytes(path: str, data: bytes) -> None:
    """Three system calls (an image job writes one small file per record)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
    try:
        written = 0
        while written < len(data):
            written += os.write(fd, memoryview(data)[written:])
    finally:
        os.close(fd)


def _info(key: str, found: os.stat_result) -> ObjectInfo:
    return ObjectInfo(key, found.st_size, f"mtime:{found.st_mtime_ns}")


class LocalStore(Store):
    """The local file system; keys are absolute POSIX paths."""

    remote = False

    def __init__(self) -> None:
        self._folders: set[str] = set()  # made (or found) by this store: no mkdir per put
        self._random = random.Random(os.urandom(16))  # temporary names; seeded per store (and process)

    def uri(self, key: str) -> str:
        return key

    def list_objects(self, prefix: str) -> list[ObjectInfo]:
        root = Path(prefix if prefix.endswith("/") else os.path.dirname(prefix) or "/")
        if not prefix.endswith("/") and Path(prefix).is_file():
            return [self.stat(prefix)]
        if not root.is_dir():
            return []
        found = []
        for directory, _, files in os.walk(root):
            for name in files:
                path = os.path.join(directory, name)
                if path.startswith(prefix) and TEMP_MARK not in name:
                    found.append(_info(path, os.stat(path)))
        return sorted(found, key=lambda info: info.key)

    def size(self, key: str) -> int:
        try:
            return Path(key).stat().st_size
        except FileNotFoundError:
            raise ObjectNotFound(f"{key}: no such file") from None

    def stat(self, key: str) -> ObjectInfo:
        try:
            return _info(key, os.stat(key))
        except FileNotFoundError:
            raise ObjectNotFound(f"{key}: no such file") from None

    def open(self, key: str, start: int = 0, end: int | None = None) -> BinaryIO:
        try:
            return io.BufferedReader(_LocalRange(key, start, end), COPY_CHUNK)
        except FileNotFoundError:
            raise ObjectNotFound(f"{key}: no such file") from None
        except OSError as exc:
            raise StorageError(f"{key}: cannot read: {exc.strerror}") from exc

    def read(self, key: str, start: int = 0, end: int | None = None) -> bytes:
        """Bytes [start, end) of a file in four system calls (an image job reads one small file
        per record, and each call lets another thread take the GIL)."""
        try:
            fd = os.open(key, os.O_RDONLY)
        except FileNotFoundError:
            raise ObjectNotFound(f"{key}: no such file") from None
        except OSError as exc:
            raise StorageError(f"{key}: cannot read: {exc.strerror}") from exc
        try:
            found = os.fstat(fd)
            if stat.S_ISDIR(found.st_mode):
                raise StorageError(f"{key}: cannot read: Is a directory")
            if end is not None:
                return _pread(fd, start, end - start)
            size = found.st_size - start
            data = os.pread(fd, max(0, size) + 1, start)  # a byte more: the file ends where it stops
            return data if len(data) == size else data + _pread(fd, start + len(data), None)
        finally:
            os.close(fd)

    def _replace(self, key: str, write: Callable[[str], object]) -> None:
        """``write`` a temporary file next to ``key`` (making the folder once), then rename it.
        Plain strings, not ``Path`` objects: an image job does this once per image."""
        folder, name = os.path.split(key)
        if folder not in self._folders:
            os.makedirs(folder, exist_ok=True)
            self._folders.add(folder)
        temp = f"{folder}/{TEMP_MARK}{name}.{self._random.getrandbits(40):010x}"
        try:
            write(temp)
        except FileNotFoundError:  # the folder was removed since this store made it
            os.makedirs(folder, exist_ok=True)
            write(temp)
        os.replace(temp, key)

    def put(self, key: str, data: bytes) -> None:
        self._replace(key, partial(_write_bytes, data=data))

    def put_file(self, key: str, path: Path) -> None:
        self._replace(key, lambda temp: shutil.copyfile(path, temp))

    def delete(self, key: str) -> None:
        Path(key).unlink(missing_ok=True)

    def compose(self, key: str, parts: list[str], scratch: Path) -> None:
        self._replace(key, lambda temp: self.concatenate_locally(parts, Path(temp)))
