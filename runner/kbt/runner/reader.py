"""Read one work item into mini-batches: open (ranged, gunzipped), frame records, pack batches.

Framing comes from the content format (kbt.runner.formats) and splitType: ``Line`` (CSV
quote-aware), ``RecordIO``, ``TFRecord``, ``None`` (the object is one record, except a JSON array
document, which gives one record per element, and CSV / JSON Lines, which are always read row by
row). Parquet is read by row groups into ready-made frames. A byte range of a JSON Lines / text
object owns the lines that start inside it: the stream opens one byte early and drops the line
that starts there. Corrupt framing (bad CRC, truncated gzip) fails only that object: it is reported
as one bad record at the failing offset and the item ends.
"""

from __future__ import annotations

import csv
import io
import json
import zlib
from bisect import bisect_left
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, BinaryIO

import numpy as np

from kbt.api.models import CsvOptions
from kbt.api.resolved import ResolvedJob
from kbt.flavors.base import Lines, Record, Records, data_size, new_records
from kbt.runner.batching import BatchLimit, Failure
from kbt.runner.compression import decompressed, is_gzip
from kbt.runner.errors import InputError
from kbt.runner.formats import ContentFormat, Framing, Splitting, content_format
from kbt.runner.framing import (
    Framed,
    FramingError,
    line_chunks,
    line_records,
    recordio_records,
    tfrecord_records,
)
from kbt.runner.parquet_io import iter_row_batches, open_parquet
from kbt.runner.plan import WorkItem
from kbt.storage import Store

if TYPE_CHECKING:
    import pandas as pd

HEADER_PROBE = 1024 * 1024
Offsets = np.ndarray | list[int]
Chunk = tuple[Lines | list[Any], Offsets]  # records (or what stands in for one) and their offsets


@dataclass
class Batch:
    """A mini-batch of one work item, numbered in input order."""

    seq: int
    item: WorkItem
    records: Sequence[Record]
    offsets: list[int]
    frame: pd.DataFrame | None = None  # already decoded (Parquet)
    rejected: list[Failure] = field(default_factory=list)
    size: int | None = None  # payload bytes, when the packer counted them

    @property
    def payload(self) -> int:
        """Bytes of the records' data (counted once: the batcher asks several times)."""
        if self.size is None:
            self.size = data_size(self.records)
        return self.size


class CountingReader(io.RawIOBase):
    """Counts the stored bytes read through it (progress in bytes)."""

    def __init__(self, inner: BinaryIO) -> None:
        self._inner = inner
        self.count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        data = self._inner.read(len(buffer))
        buffer[: len(data)] = data
        self.count += len(data)
        return len(data)

    def close(self) -> None:
        self._inner.close()
        super().close()


@dataclass
class ItemReader:
    """Produces the batches of one work item and knows how many stored bytes it has read."""

    store: Store
    job: ResolvedJob
    item: WorkItem
    counter: CountingReader | None = None
    header: list[str] | None = None
    direct_bytes: int = 0  # read without the counting stream (Parquet, whole objects)

    @property
    def format(self) -> ContentFormat:
        return content_format(self.job.spec.transformInput.contentType, "transformInput.contentType")

    @property
    def bytes_read(self) -> int:
        return self.direct_bytes if self.counter is None else self.counter.count

    def batches(self, first_seq: int) -> Iterator[Batch]:
        limit = BatchLimit.from_job(self.job)
        if self.format.framing == Framing.ROW_GROUPS:
            yield from self._parquet_batches(first_seq, limit.records)
            return
        packer = _Packer(self.item, first_seq, limit)
        for records, offsets in self._chunks():
            yield from packer.add(records, offsets)
        yield from packer.finish()

    def _open(self, start: int, end: int | None) -> BinaryIO:
        self.counter = CountingReader(self.store.open(self.item.key, start, end))
        raw = io.BufferedReader(self.counter, 1024 * 1024)
        return decompressed(self.job, raw, self.store.uri(self.item.key))

    def _chunks(self) -> Iterator[Chunk]:
        """Records with absolute offsets, a list at a time; a framing error that ends the object
        comes last, in place of a record."""
        transform = self.job.spec.transformInput
        fmt = self.format
        framing = fmt.record_framing(transform.splitType)
        item = self.item
        if framing == Framing.WHOLE and not is_gzip(self.job):
            yield self._whole()
            return
        ranged = item.is_split and fmt.splitting == Splitting.LINE_RANGES
        base = item.start - 1 if ranged and item.start > 0 else item.start
        stream = self._open(base, None if ranged else item.end)
        chunks: Iterator[Chunk]
        if framing in (Framing.LINES, Framing.CSV_LINES):
            limit = BatchLimit.from_job(self.job).payload_bytes or None
            chunks = line_chunks(stream, csv_quotes=framing == Framing.CSV_LINES, max_record=limit)
        else:
            chunks = (([data], [offset]) for data, offset in _framed(stream, framing))  # one record each
        header_pending = fmt.header and transform.csv.header is not False and item.start == 0
        last = base
        try:
            with stream:
                for found, relative in chunks:
                    records, offsets = found, _shifted(relative, base)
                    if header_pending:
                        header_pending = False
                        if not isinstance(records[0], bytes):
                            raise InputError(f"{self.store.uri(item.key)}: CSV header {records[0]}")
                        self.header = header_or_none(records[0], transform.csv)
                        if self.header is not None:
                            records, offsets = records[1:], offsets[1:]
                    if ranged:
                        records, offsets, done = _within(records, offsets, item.start, item.end)
                    if len(offsets):
                        last = int(offsets[-1])
                        yield records, offsets
                    if ranged and done:
                        return
        except (FramingError, OSError, EOFError, zlib.error) as exc:
            reason = f"unreadable from here on ({type(exc).__name__}: {exc}); rest of object skipped"
            yield [FramingError(reason)], [last]

    def _whole(self) -> Chunk:
        """The object as one record, read in one call (image jobs read a small object per
        record: a stream's layers cost more than the read)."""
        try:
            data = self.store.read(self.item.key, self.item.start, self.item.end)
        except OSError as exc:
            reason = f"unreadable ({type(exc).__name__}: {exc}); object skipped"
            return [FramingError(reason)], [self.item.start]
        self.direct_bytes = len(data)
        return [data], [self.item.start]

    def _parquet_batches(self, first_seq: int, rows: int) -> Iterator[Batch]:
        metadata = open_parquet(self.store, self.item.key).metadata
        groups = range(*self.item.row_groups) if self.item.row_groups else range(metadata.num_row_groups)
        total_rows = max(1, sum(metadata.row_group(g).num_rows for g in groups))
        seq, index = first_seq, 0
        for record_batch in iter_row_batches(self.store, self.item.key, self.item.row_groups, rows):
            count = record_batch.num_rows
            records = new_records(self.item.name, index, [b""] * count)
            yield Batch(seq, self.item, records, [-1] * count, frame=record_batch.to_pandas())
            seq, index = seq + 1, index + count
            self.direct_bytes = self.item.weight * index // total_rows


def _framed(stream: BinaryIO, framing: Framing) -> Iterator[Framed]:
    """One record at a time, for the framings that are not line based."""
    if framing == Framing.RECORDIO:
        yield from recordio_records(stream)
    elif framing == Framing.TFRECORD:
        yield from tfrecord_records(stream)
    elif framing == Framing.JSON_ELEMENTS:
        yield from _json_elements(stream.read())
    else:
        yield stream.read(), 0


def _json_elements(data: bytes) -> Iterator[Framed]:
    """The elements of a JSON array document (or the document itself), compactly re-encoded."""
    try:
        document = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise FramingError(f"not a JSON document: {exc}") from None
    for element in document if isinstance(document, list) else [document]:
        yield json.dumps(element, separators=(",", ":")).encode(), 0


def _shifted(offsets: Offsets, base: int) -> Offsets:
    if not base:
        return offsets
    return offsets + base if isinstance(offsets, np.ndarray) else [base + offset for offset in offsets]


def _within(
    records: Lines | list[Any], offsets: Offsets, start: int, end: int | None
) -> tuple[Lines | list[Any], Offsets, bool]:
    """The records that start inside [start, end) (offsets ascend), and whether the range is
    finished."""
    low = bisect_left(offsets, start)
    high = len(offsets) if end is None else bisect_left(offsets, end)
    finished = end is not None and len(offsets) > 0 and offsets[-1] >= end
    return records[low:high], offsets[low:high], finished


class _Packer:
    """Packs records into mini-batches bounded by count and payload bytes, in bulk."""

    def __init__(self, item: WorkItem, first_seq: int, limit: BatchLimit) -> None:
        self.item, self.seq, self.count_limit = item, first_seq, limit.records
        self.payload_mb, self.payload_limit = limit.payload_mb, limit.payload_bytes
        self.index = 0  # record number within the item
        self._reset()

    def _reset(self) -> None:
        self.records = Records()
        self.offsets: list[int] = []
        self.rejected: list[Failure] = []
        self.payload = 0

    def _flush(self) -> Batch:
        size = self.payload if self.payload_limit else None
        batch = Batch(self.seq, self.item, self.records, self.offsets, rejected=self.rejected, size=size)
        self.seq += 1
        self._reset()
        return batch

    def add(self, chunk: Lines | list[Any], offsets: Offsets) -> Iterator[Batch]:
        position, count = 0, len(chunk)
        name = self.item.name
        lines = chunk if isinstance(chunk, Lines) else None
        line_sizes = lines.sizes() if lines is not None and self.payload_limit else None
        while position < count:
            # only a list's first entry can stand in for a record (see line_chunks, _chunks)
            if lines is None and chunk[position].__class__ is not bytes:  # oversized, or a framing error
                reason = str(chunk[position])
                self.rejected.append(Failure(self.index + position, int(offsets[position]), reason))
                position += 1
                continue
            stop = min(count, position + self.count_limit - len(self.records))
            if self.payload_limit and stop - position == 1:  # one record (an image, a document)
                size = len(chunk[position])
                if self.payload + size > self.payload_limit and self.records:
                    yield self._flush()
                    continue
                if size > self.payload_limit:
                    self._reject_oversized(self.index + position, int(offsets[position]), size)
                    position += 1
                    continue
                self.payload += size
            elif self.payload_limit:
                sizes = (
                    line_sizes[position:stop]
                    if line_sizes is not None
                    else np.fromiter(map(len, chunk[position:stop]), dtype=np.int64, count=stop - position)
                )
                fitting = int(
                    np.searchsorted(np.cumsum(sizes) + self.payload, self.payload_limit, side="right")
                )
                if fitting == 0 and not self.records:
                    self._reject_oversized(self.index + position, int(offsets[position]), int(sizes[0]))
                    position += 1
                    continue
                stop = position + fitting
                self.payload += int(sizes[:fitting].sum())
            first = self.index + position
            self.records.append_run(name, first, chunk[position:stop])
            taken = offsets[position:stop]
            self.offsets.extend(taken.tolist() if isinstance(taken, np.ndarray) else taken)
            position = stop
            if len(self.records) >= self.count_limit or (position < count and self.payload_limit):
                yield self._flush()
        self.index += count

    def _reject_oversized(self, record: int, offset: int, size: int) -> None:
        reason = f"record is {size} bytes, more than maxPayloadInMB ({self.payload_mb} MB)"
        self.rejected.append(Failure(record, offset, reason))

    def finish(self) -> Iterator[Batch]:
        if self.records or self.rejected:
            yield self._flush()


def _csv_header(line: bytes, delimiter: str) -> list[str]:
    return next(csv.reader([line.decode("utf-8-sig")], delimiter=delimiter))


def _is_number(field: str) -> bool:
    try:
        float(field)
    except ValueError:
        return False
    return True


def header_or_none(first_record: bytes, options: CsvOptions) -> list[str] | None:
    """The column names in a CSV object's first record, or None when that record is data.

    ``header: true`` always takes the first record, ``false`` never; unset takes it unless one
    of its fields is a number (column names are not numbers; SageMaker CSV has no header).
    """
    if options.header is False:
        return None
    names = _csv_header(first_record, options.delimiter)
    if options.header is None and any(_is_number(name) for name in names):
        return None
    return names


def read_csv_header(store: Store, key: str, options: CsvOptions) -> list[str] | None:
    """Column names of a CSV object, read from its first record (for parts after the first)."""
    with store.open(key, 0, HEADER_PROBE) as stream:
        for data, _ in line_records(stream, csv_quotes=True):
            return header_or_none(data, options) if isinstance(data, bytes) else None
    return None
