"""``LocalStore``: the local file system as a ``Store``; keys are absolute POSIX paths."""

from __future__ import annotations

import io
import os
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from kbt.storage.base import COPY_CHUNK, TEMP_MARK, ObjectInfo, ObjectNotFound, StorageError, Store


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


def _info(key: str, stat: os.stat_result) -> ObjectInfo:
    return ObjectInfo(key, stat.st_size, f"mtime:{stat.st_mtime_ns}")


class LocalStore(Store):
    """The local file system; keys are absolute POSIX paths."""

    def __init__(self) -> None:
        self._folders: set[Path] = set()  # made (or found) by this store: no mkdir per put

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
                    found.append(_info(Path(path).as_posix(), os.stat(path)))
        return sorted(found)

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
            return io.BufferedReader(_LocalRange(Path(key), start, end), COPY_CHUNK)
        except FileNotFoundError:
            raise ObjectNotFound(f"{key}: no such file") from None
        except OSError as exc:
            raise StorageError(f"{key}: cannot read: {exc.strerror}") from exc

    def _replace(self, key: str, write: Callable[[Path], object]) -> None:
        """``write`` a temporary file next to ``key`` (making the folder once), then rename it."""
        path = Path(key)
        if path.parent not in self._folders:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._folders.add(path.parent)
        temp = path.with_name(f"{TEMP_MARK}{path.name}.{uuid.uuid4().hex[:8]}")
        try:
            write(temp)
        except FileNotFoundError:  # the folder was removed since this store made it
            path.parent.mkdir(parents=True, exist_ok=True)
            write(temp)
        os.replace(temp, key)

    def put(self, key: str, data: bytes) -> None:
        self._replace(key, lambda temp: temp.write_bytes(data))

    def put_file(self, key: str, path: Path) -> None:
        self._replace(key, lambda temp: shutil.copyfile(path, temp))

    def delete(self, key: str) -> None:
        Path(key).unlink(missing_ok=True)

    def compose(self, key: str, parts: list[str], scratch: Path) -> None:
        self._replace(key, lambda temp: self.concatenate_locally(parts, temp))
