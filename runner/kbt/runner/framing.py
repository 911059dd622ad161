"""Split a byte stream into records: lines (CSV quote-aware), RecordIO and TFRecord framing.

Each generator yields ``(data, offset)`` with ``offset`` the record's first byte relative to the
start of the stream. Line records drop the line ending (``\\n`` or ``\\r\\n``); blank lines are
skipped. A CSV record continues across newlines while a quoted field is open.
RecordIO is MXNet's format (magic ``0xced7230a``, 29-bit length, 3-bit continuation flag, data
padded to 4 bytes). TFRecord is ``uint64 length, uint32 masked crc32c(length), data, uint32
masked crc32c(data)``, little-endian; both checksums are verified.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from typing import BinaryIO

import numpy as np

from kbt.runner.crc32c import masked_crc32c

READ_CHUNK = 4 * 1024 * 1024
RECORDIO_MAGIC = 0xCED7230A
RECORDIO_MAGIC_BYTES = struct.pack("<I", RECORDIO_MAGIC)

Framed = tuple[bytes, int]


class FramingError(Exception):
    """The stream is not valid in its framing; the message says where."""


def _strip_cr(line: bytes) -> bytes:
    return line[:-1] if line.endswith(b"\r") else line


class OversizedRecord:
    """Stands in for a record longer than the reader's limit; its bytes were skipped."""

    def __init__(self, limit: int) -> None:
        self.limit = limit

    def __str__(self) -> str:
        return f"record is longer than {self.limit} bytes (maxPayloadInMB); skipped"


def line_chunks(
    stream: BinaryIO, csv_quotes: bool = False, max_record: int | None = None
) -> Iterator[tuple[list[bytes | OversizedRecord], list[int]]]:
    """Records separated by newlines, a list per chunk read: (records, their offsets).

    With ``csv_quotes`` a quoted newline does not end a record. A record longer than
    ``max_record`` is never held in memory: its bytes are skipped up to the next newline and an
    ``OversizedRecord`` stands in its place.
    """
    pending = b""  # an incomplete record carried between chunks
    pending_offset = 0
    position = 0  # offset of the next chunk
    skipping: int | None = None  # offset of the oversized record being skipped
    while chunk := stream.read(READ_CHUNK):
        chunk_offset, position = position, position + len(chunk)
        records: list[bytes | OversizedRecord] = []
        offsets: list[int] = []
        if skipping is not None:
            newline = chunk.find(b"\n")
            if newline == -1:
                continue
            records.append(OversizedRecord(max_record or 0))
            offsets.append(skipping)
            skipping, chunk, chunk_offset = None, chunk[newline + 1 :], chunk_offset + newline + 1
        data = pending + chunk
        offset = pending_offset if pending else chunk_offset
        lines = data.split(b"\n")
        pending = lines.pop()
        if csv_quotes and b'"' in data:
            lines, pending = _join_quoted(lines, pending)
        starts = (np.cumsum([0, *map(len, lines)]) + np.arange(len(lines) + 1) + offset).tolist()
        pending_offset = starts[-1]
        if b"\r" in data:
            lines = [_strip_cr(line) for line in lines]
        if all(lines):
            records.extend(lines)
            offsets.extend(starts[:-1])
        else:
            kept = [(line, start) for line, start in zip(lines, starts, strict=False) if line]
            records.extend(line for line, _ in kept)
            offsets.extend(start for _, start in kept)
        if max_record is not None and len(pending) > max_record:
            skipping, pending = pending_offset, b""
        if records:
            yield records, offsets
    if skipping is not None:
        yield [OversizedRecord(max_record or 0)], [skipping]
    elif pending.strip(b"\r"):
        yield [_strip_cr(pending)], [pending_offset]


def line_records(
    stream: BinaryIO, csv_quotes: bool = False, max_record: int | None = None
) -> Iterator[tuple[bytes | OversizedRecord, int]]:
    """``line_chunks`` one record at a time."""
    for records, offsets in line_chunks(stream, csv_quotes, max_record):
        yield from zip(records, offsets, strict=True)


def _join_quoted(lines: list[bytes], tail: bytes) -> tuple[list[bytes], bytes]:
    """Merge lines while a quoted field is open; the open remainder becomes the new tail."""
    merged: list[bytes] = []
    current: bytes | None = None
    for line in lines:
        current = line if current is None else current + b"\n" + line
        if current.count(b'"') % 2 == 0:
            merged.append(current)
            current = None
    if current is not None:
        tail = current + b"\n" + tail
    return merged, tail


def recordio_records(stream: BinaryIO) -> Iterator[Framed]:
    """MXNet RecordIO records (multi-part records re-joined with the magic word)."""
    position = 0
    parts: list[bytes] = []
    start = 0
    while header := stream.read(8):
        if len(header) < 8:
            raise FramingError(f"truncated RecordIO header at byte {position}")
        magic, lrecord = struct.unpack("<II", header)
        if magic != RECORDIO_MAGIC:
            raise FramingError(f"bad RecordIO magic 0x{magic:08x} at byte {position}")
        flag, length = lrecord >> 29, lrecord & ((1 << 29) - 1)
        data = _read_exact(stream, length, f"RecordIO record at byte {position}")
        _read_exact(stream, (4 - length % 4) % 4, f"RecordIO padding at byte {position}")
        if flag in (0, 1):
            parts, start = [], position
        parts.append(data)
        position += 8 + length + (4 - length % 4) % 4
        if flag in (0, 3):
            yield RECORDIO_MAGIC_BYTES.join(parts), start
            parts = []
    if parts:
        raise FramingError(f"RecordIO record starting at byte {start} is missing its last part")


def tfrecord_records(stream: BinaryIO) -> Iterator[Framed]:
    """TFRecord records with both CRCs checked."""
    position = 0
    while header := stream.read(12):
        if len(header) < 12:
            raise FramingError(f"truncated TFRecord header at byte {position}")
        length_bytes, length_crc = header[:8], struct.unpack("<I", header[8:])[0]
        if masked_crc32c(length_bytes) != length_crc:
            raise FramingError(f"TFRecord length checksum mismatch at byte {position}")
        (length,) = struct.unpack("<Q", length_bytes)
        data = _read_exact(stream, length, f"TFRecord record at byte {position}")
        footer = _read_exact(stream, 4, f"TFRecord record at byte {position}")
        if masked_crc32c(data) != struct.unpack("<I", footer)[0]:
            raise FramingError(f"TFRecord data checksum mismatch in the record at byte {position}")
        yield data, position
        position += 16 + length


def _read_exact(stream: BinaryIO, size: int, what: str) -> bytes:
    data = stream.read(size) if size else b""
    if len(data) != size:
        raise FramingError(f"{what} is truncated (wanted {size} bytes, got {len(data)})")
    return data


def recordio_frame(data: bytes) -> bytes:
    """One RecordIO record (single part) — the writer side, used by tests and tools."""
    padding = (4 - len(data) % 4) % 4
    return struct.pack("<II", RECORDIO_MAGIC, len(data)) + data + b"\0" * padding


def tfrecord_frame(data: bytes) -> bytes:
    """One TFRecord record — the writer side, used by tests and tools."""
    length = struct.pack("<Q", len(data))
    return length + struct.pack("<I", masked_crc32c(length)) + data + struct.pack("<I", masked_crc32c(data))
