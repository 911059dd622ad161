"""Read one work item into mini-batches: open (ranged, gunzipped), frame records, pack batches.

Framing by splitType: ``Line`` (CSV quote-aware), ``RecordIO``, ``TFRecord``, ``None`` (the
object is one record, except a JSON array document, which gives one record per element, and
CSV / JSON Lines, which are always read row by row).
Parquet is read by row groups into ready-made frames. A byte range of a JSON Lines / text object
owns the lines that start inside it: the stream opens one byte early and drops the line that
starts there. Corrupt framing (bad CRC, truncated gzip) fails only that object: it is reported
as one bad record at the failing offset and the item ends.
"""

from __future__ import annotations

import gzip
import io
import json
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

import pandas as pd

from kbt.api.models import BatchStrategy, ContentType, SplitType
from kbt.flavors.base import Record
from kbt.resolved import ResolvedJob
from kbt.runner.framing import (
    Framed,
    FramingError,
    OversizedRecord,
    line_records,
    recordio_records,
    tfrecord_records,
)
from kbt.runner.parquet_io import iter_row_batches, open_parquet
from kbt.runner.plan import PARQUET_TYPES, WorkItem, is_gzip
from kbt.runner.storage import Store

HEADER_PROBE = 1024 * 1024
# Row formats are read row by row even with splitType None (then the object is just never split),
# so every row still gets its own prediction.
ROW_TYPES = {ContentType.CSV, ContentType.JSONLINES, ContentType.X_JSONLINES}
MIB = 1024 * 1024


@dataclass
class Batch:
    """A mini-batch of one work item, numbered in input order."""

    seq: int
    item: WorkItem
    records: list[Record]
    offsets: list[int]
    frame: pd.DataFrame | None = None  # already decoded (Parquet)
    rejected: list[tuple[int, int, str]] = field(default_factory=list)  # (index, offset, reason)

    @property
    def payload(self) -> int:
        return sum(len(r.data) for r in self.records)


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
    parquet_bytes: int = 0

    @property
    def bytes_read(self) -> int:
        return self.parquet_bytes if self.counter is None else self.counter.count

    def batches(self, first_seq: int) -> Iterator[Batch]:
        spec = self.job.spec
        single = spec.batchStrategy == BatchStrategy.SINGLE_RECORD
        count_limit = 1 if single else spec.miniBatchSize
        if ContentType(spec.transformInput.contentType) in PARQUET_TYPES:
            yield from self._parquet_batches(first_seq, count_limit)
            return
        payload_limit = spec.maxPayloadInMB * MIB
        seq = first_seq
        batch = Batch(seq, self.item, [], [])
        payload = 0
        for index, (data, offset) in enumerate(self._framed()):
            if isinstance(data, FramingError | OversizedRecord):
                batch.rejected.append((index, offset, str(data)))
                continue
            if payload_limit and len(data) > payload_limit:
                reason = f"record is {len(data)} bytes, more than maxPayloadInMB ({spec.maxPayloadInMB} MB)"
                batch.rejected.append((index, offset, reason))
                continue
            if batch.records and (
                len(batch.records) >= count_limit or (payload_limit and payload + len(data) > payload_limit)
            ):
                yield batch
                seq += 1
                batch, payload = Batch(seq, self.item, [], []), 0
            batch.records.append(Record(self.item.name, index, data))
            batch.offsets.append(offset)
            payload += len(data)
        if batch.records or batch.rejected:
            yield batch

    def _open(self, start: int, end: int | None) -> BinaryIO:
        self.counter = CountingReader(self.store.open(self.item.key, start, end))
        raw: BinaryIO = io.BufferedReader(self.counter, 1024 * 1024)
        if is_gzip(self.job, self.item.key):
            return gzip.GzipFile(fileobj=raw, mode="rb")  # type: ignore[return-value]
        return raw

    def _framed(self) -> Iterator[tuple[bytes | FramingError, int]]:
        """(record bytes or the framing error that ended the object, absolute offset)."""
        transform = self.job.spec.transformInput
        content = ContentType(transform.contentType)
        item = self.item
        ranged = item.is_split and content != ContentType.CSV and transform.splitType == SplitType.LINE
        aligned = ranged and item.start > 0
        base = item.start - 1 if aligned else item.start
        stream = self._open(base, None if ranged else item.end)
        records: Iterator[tuple[bytes | OversizedRecord, int]]
        if transform.splitType == SplitType.LINE or content in ROW_TYPES:
            limit = spec_limit if (spec_limit := self.job.spec.maxPayloadInMB * MIB) else None
            records = line_records(stream, csv_quotes=content == ContentType.CSV, max_record=limit)
        elif transform.splitType == SplitType.RECORDIO:
            records = recordio_records(stream)
        elif transform.splitType == SplitType.TFRECORD:
            records = tfrecord_records(stream)
        else:
            records = self._documents(stream, content)
        header_pending = content == ContentType.CSV and transform.csv.header and item.start == 0
        last = 0
        try:
            with stream:
                for data, relative in records:
                    offset = base + relative
                    if aligned and relative == 0:
                        continue  # the line straddling the range start belongs to the previous range
                    if ranged and item.end is not None and offset >= item.end:
                        break
                    last = offset
                    if header_pending:
                        self.header, header_pending = _csv_header(data, transform.csv.delimiter), False
                        continue
                    yield data, offset
        except (FramingError, OSError, EOFError, zlib.error) as exc:
            yield (
                FramingError(
                    f"unreadable from here on ({type(exc).__name__}: {exc}); rest of object skipped"
                ),
                last,
            )

    def _documents(self, stream: BinaryIO, content: ContentType) -> Iterator[Framed]:
        data = stream.read()
        if content != ContentType.JSON:
            yield data, 0
            return
        try:
            document = json.loads(data)
        except (ValueError, UnicodeDecodeError) as exc:
            raise FramingError(f"not a JSON document: {exc}") from None
        for element in document if isinstance(document, list) else [document]:
            yield json.dumps(element, separators=(",", ":")).encode(), 0

    def _parquet_batches(self, first_seq: int, rows: int) -> Iterator[Batch]:
        metadata = open_parquet(self.store, self.item.key).metadata
        groups = range(*self.item.row_groups) if self.item.row_groups else range(metadata.num_row_groups)
        total_rows = max(1, sum(metadata.row_group(g).num_rows for g in groups))
        seq, index = first_seq, 0
        for record_batch in iter_row_batches(self.store, self.item.key, self.item.row_groups, rows):
            count = record_batch.num_rows
            records = [Record(self.item.name, index + i, b"") for i in range(count)]
            yield Batch(seq, self.item, records, [-1] * count, frame=record_batch.to_pandas())
            seq, index = seq + 1, index + count
            self.parquet_bytes = self.item.weight * index // total_rows


def _csv_header(line: bytes, delimiter: str) -> list[str]:
    import csv

    return next(csv.reader([line.decode("utf-8-sig")], delimiter=delimiter))


def read_csv_header(store: Store, key: str, delimiter: str) -> list[str]:
    """Column names from the first record of a CSV object (for parts after the first)."""
    with store.open(key, 0, HEADER_PROBE) as stream:
        for data, _ in line_records(stream, csv_quotes=True):
            return _csv_header(data, delimiter)
    return []
