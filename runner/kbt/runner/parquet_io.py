"""Parquet access for planning and reading: row-group ranges and streaming row-group batches.

Local files are opened by path; S3 objects through ``SeekableObject``, which turns pyarrow's
seeks and reads into ranged GETs, so only the footer and the needed column chunks are fetched.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from kbt.runner.errors import InputError
from kbt.storage import LocalStore, Store

if TYPE_CHECKING:
    import pyarrow as pa
    import pyarrow.parquet as pq


class SeekableObject(io.RawIOBase):
    """A read-only, seekable view of one stored object (each read is one ranged request)."""

    def __init__(self, store: Store, key: str) -> None:
        self._store, self._key = store, key
        self._size = store.size(key)
        self._pos = 0
        self.bytes_read = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        end = min(self._size, self._pos + len(view))
        if end <= self._pos:
            return 0
        data = self._store.read(self._key, self._pos, end)
        view[: len(data)] = data
        self._pos += len(data)
        self.bytes_read += len(data)
        return len(data)


def open_parquet(store: Store, key: str) -> pq.ParquetFile:
    """The Parquet file at ``key``; InputError naming it when it is not Parquet."""
    import pyarrow as pa  # noqa: PLC0415 (lazy: see kbt.frames)
    import pyarrow.parquet as pq  # noqa: PLC0415 (lazy: see kbt.frames)

    try:
        source: Any = key if isinstance(store, LocalStore) else SeekableObject(store, key)
        return pq.ParquetFile(source)
    except (pa.ArrowInvalid, OSError) as exc:
        raise InputError(f"{store.uri(key)} is not a readable Parquet file: {exc}") from exc


def parquet_row_group_ranges(store: Store, key: str, split: int) -> list[tuple[int, int, int]]:
    """Consecutive row groups packed into ranges of about ``split`` bytes: (first, last, bytes)."""
    metadata = open_parquet(store, key).metadata
    ranges: list[tuple[int, int, int]] = []
    first, size = 0, 0
    for group in range(metadata.num_row_groups):
        group_bytes = metadata.row_group(group).total_byte_size
        if size and size + group_bytes > split:
            ranges.append((first, group, size))
            first, size = group, 0
        size += group_bytes
    ranges.append((first, metadata.num_row_groups, size))
    return ranges


def iter_row_batches(
    store: Store, key: str, row_groups: tuple[int, int] | None, rows: int
) -> Iterator[pa.RecordBatch]:
    """Record batches of at most ``rows`` rows from the given row groups (all when None)."""
    import pyarrow as pa  # noqa: PLC0415 (lazy: see kbt.frames)

    parquet = open_parquet(store, key)
    groups = list(range(*row_groups)) if row_groups else list(range(parquet.metadata.num_row_groups))
    if not groups:
        return
    try:
        yield from parquet.iter_batches(batch_size=max(1, rows), row_groups=groups)
    except (pa.ArrowInvalid, OSError) as exc:
        raise InputError(
            f"{store.uri(key)}: cannot read Parquet row groups {groups[0]}..{groups[-1]}: {exc}"
        ) from exc
