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
from typing import Any, BinaryIO

import numpy as np

from kbt.flavors.base import Lines
from kbt.runner.crc32c import masked_crc32c

READ_CHUNK = 4 * 1024 * 1024
NEWLINE, CARRIAGE_RETURN = 10, 13
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
) -> Iterator[tuple[Lines | list[Any], np.ndarray]]:
    """Records separated by newlines, a sequence per chunk read: (records, their offsets).

    With ``csv_quotes`` a quoted newline does not end a record. A record longer than
    ``max_record`` is never held in memory: its bytes are skipped up to the next newline and an
    ``OversizedRecord`` stands in its place, in a chunk of its own. The lines of a chunk without
    quotes come as ``Lines`` (positions in the chunk's bytes, found with numpy).
    """
    pending = b""  # an incomplete record carried between chunks
    pending_offset = 0
    position = 0  # offset of the next chunk
    skipping: int | None = None  # offset of the oversized record being skipped
    while chunk := stream.read(READ_CHUNK):
        chunk_offset, position = position, position + len(chunk)
        if skipping is not None:
            newline = chunk.find(b"\n")
            if newline == -1:
                continue
            yield [OversizedRecord(max_record or 0)], np.array([skipping], dtype=np.int64)
            skipping, chunk, chunk_offset = None, chunk[newline + 1 :], chunk_offset + newline + 1
        data = pending + chunk
        offset = pending_offset if pending else chunk_offset
        lines: Lines | list[bytes]
        if csv_quotes and b'"' in data:
            lines, starts, rest = _quoted_lines(data)
        else:
            found, rest = _plain_lines(data)
            lines, starts = found, found.starts
        pending, pending_offset = data[rest:], offset + rest
        if max_record is not None and len(pending) > max_record:
            skipping, pending = pending_offset, b""
        if len(lines):
            yield lines, starts + offset
    if skipping is not None:
        yield [OversizedRecord(max_record or 0)], np.array([skipping], dtype=np.int64)
    elif pending.strip(b"\r"):
        yield [_strip_cr(pending)], np.array([pending_offset], dtype=np.int64)


def _plain_lines(data: bytes) -> tuple[Lines, int]:
    """The lines of ``data`` up to its last newline (blank ones dropped, a final ``\\r``
    stripped) and where the rest begins."""
    codes = np.frombuffer(data, dtype=np.uint8)
    ends = np.flatnonzero(codes == NEWLINE)
    starts = np.empty_like(ends)
    if len(ends):
        starts[0], starts[1:] = 0, ends[:-1] + 1
    rest = int(ends[-1]) + 1 if len(ends) else 0
    if b"\r" in data:
        ends = ends - ((ends > starts) & (codes[ends - 1] == CARRIAGE_RETURN))
    kept = ends > starts
    if not kept.all():
        starts, ends = starts[kept], ends[kept]
    return Lines(data, starts, ends), rest


def _quoted_lines(data: bytes) -> tuple[list[bytes], np.ndarray, int]:
    """The records of ``data`` whose quoted fields are closed (blank ones dropped, a final
    ``\\r`` stripped), where each starts, and where the open rest begins."""
    lines = data.split(b"\n")
    lines, tail = _join_quoted(lines[:-1], lines[-1])
    starts = np.cumsum([0, *map(len, lines)]) + np.arange(len(lines) + 1)
    if b"\r" in data:
        lines = [_strip_cr(line) for line in lines]
    kept = np.fromiter(map(bool, lines), dtype=bool, count=len(lines))
    return [line for line in lines if line], starts[:-1][kept], len(data) - len(tail)


def line_records(
    stream: BinaryIO, csv_quotes: bool = False, max_record: int | None = None
) -> Iterator[tuple[bytes | OversizedRecord, int]]:
    """``line_chunks`` one record at a time."""
    for records, offsets in line_chunks(stream, csv_quotes, max_record):
        yield from zip(records, offsets.tolist(), strict=True)


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
