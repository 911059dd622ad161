"""Record framing, CRC-32C, quote-aware CSV split points and shard assignment."""

from __future__ import annotations

import csv
import io
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kbt.flavors.base import Lines
from kbt.runner import framing
from kbt.runner.crc32c import crc32c, masked_crc32c
from kbt.runner.framing import (
    FramingError,
    line_records,
    recordio_frame,
    recordio_records,
    tfrecord_frame,
    tfrecord_records,
)
from kbt.runner.plan import MIB, MIN_BALANCED_SPLIT_BYTES, assign, balanced_split
from kbt.runner.splitting import csv_split_points
from kbt.storage import LocalStore


def test_crc32c_check_value() -> None:
    assert crc32c(b"123456789") == 0xE3069283
    assert masked_crc32c(b"") == (((0 >> 15) | (0 << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def _csv_text(rows: int, seed: int) -> bytes:
    rng = random.Random(seed)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["id", "text", "value"])
    for i in range(rows):
        text = rng.choice(["plain", 'has "quotes"', "multi\nline\nvalue", "comma, inside", ""])
        writer.writerow([i, text, rng.random()])
    return out.getvalue().encode()


@pytest.mark.parametrize("chunk", [7, 64, 4096])
def test_csv_records_survive_chunk_boundaries(chunk: int, monkeypatch: pytest.MonkeyPatch) -> None:
    data = _csv_text(200, seed=chunk)
    monkeypatch.setattr(framing, "READ_CHUNK", chunk)
    records = list(line_records(io.BytesIO(data), csv_quotes=True))
    expected = list(csv.reader(io.StringIO(data.decode())))
    assert [next(csv.reader([r.decode()])) for r, _ in records] == expected
    for record, offset in records:
        assert data[offset : offset + len(record)] == record


def test_line_records_strip_crlf_and_skip_blank_lines() -> None:
    data = b"a\r\n\r\nb\n\nc"
    assert list(line_records(io.BytesIO(data))) == [(b"a", 0), (b"b", 5), (b"c", 8)]


def _reference_lines(data: bytes, csv_quotes: bool) -> list[tuple[bytes, int]]:
    """Records by a plain scan: a newline outside quotes ends one; one final ``\\r`` stripped;
    blank records skipped (what line_chunks must give, whatever its chunks)."""
    records, start, quoted = [], 0, False
    for position, byte in enumerate(data):
        if csv_quotes and byte == ord('"'):
            quoted = not quoted
        elif byte == ord("\n") and not quoted:
            line = data[start:position]
            line = line[:-1] if line.endswith(b"\r") else line
            if line:
                records.append((line, start))
            start = position + 1
    rest = data[start:]
    if rest.strip(b"\r"):
        records.append((rest[:-1] if rest.endswith(b"\r") else rest, start))
    return records


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.sampled_from([b"a", b"bc", b",", b"\n", b"\r", b'"', b"\r\n"]), max_size=60),
    st.booleans(),
    st.integers(1, 9),
)
def test_line_records_match_a_plain_scan(parts: list[bytes], csv_quotes: bool, chunk: int) -> None:
    data = b"".join(parts)
    original, framing.READ_CHUNK = framing.READ_CHUNK, chunk
    try:
        assert list(line_records(io.BytesIO(data), csv_quotes=csv_quotes)) == _reference_lines(
            data, csv_quotes
        )
    finally:
        framing.READ_CHUNK = original


def test_unquoted_chunks_come_as_lines_that_go_to_the_parser_as_one_slice() -> None:
    data = b"a,1\nbb,2\n\ncc,3\r\ntail"
    chunks = list(framing.line_chunks(io.BytesIO(data), csv_quotes=True))
    lines, offsets = chunks[0]
    assert isinstance(lines, Lines) and list(lines) == [b"a,1", b"bb,2", b"cc,3"]
    assert offsets.tolist() == [0, 4, 10] and lines.sizes().tolist() == [3, 4, 4]
    assert lines[:2].payload() == b"a,1\nbb,2\n"  # contiguous: a slice of the chunk
    assert lines.payload() == b"a,1\nbb,2\ncc,3\n"  # a blank line and a CR between them: joined
    assert chunks[1][0] == [b"tail"] and chunks[1][1].tolist() == [16]


def test_recordio_roundtrip_and_multipart() -> None:
    payloads = [b"one", b"", b"three-bytes-longer"]
    stream = b"".join(recordio_frame(p) for p in payloads)
    # a record split into two parts around the magic word (cflag 1 then 3)
    first, second = b"abc", b"defg"
    magic = framing.RECORDIO_MAGIC_BYTES
    multi = (
        magic
        + (len(first) | (1 << 29)).to_bytes(4, "little")
        + first
        + b"\0"
        + magic
        + (len(second) | (3 << 29)).to_bytes(4, "little")
        + second
    )
    records = list(recordio_records(io.BytesIO(stream + multi)))
    assert [r for r, _ in records] == [*payloads, first + magic + second]
    assert records[1][1] == len(recordio_frame(b"one"))


def test_recordio_bad_magic_names_offset() -> None:
    with pytest.raises(FramingError, match=r"bad RecordIO magic .* at byte 12"):
        list(recordio_records(io.BytesIO(recordio_frame(b"data") + b"\x01" * 8)))


def test_tfrecord_roundtrip_and_crc_check() -> None:
    payloads = [b"alpha", b"b" * 1000, b""]
    stream = b"".join(tfrecord_frame(p) for p in payloads)
    assert [r for r, _ in tfrecord_records(io.BytesIO(stream))] == payloads
    corrupt = bytearray(stream)
    corrupt[12] ^= 0xFF  # first data byte
    with pytest.raises(FramingError, match="data checksum mismatch in the record at byte 0"):
        list(tfrecord_records(io.BytesIO(bytes(corrupt))))


@pytest.mark.parametrize("split", [50, 333, 1000])
def test_csv_split_points_are_record_boundaries(split: int, tmp_path: pytest.TempPathFactory) -> None:
    data = _csv_text(300, seed=split)
    path = tmp_path / "data.csv"  # type: ignore[operator]
    path.write_bytes(data)
    cuts = csv_split_points(LocalStore(), str(path), len(data), list(range(split, len(data), split)))
    starts = {offset for _, offset in line_records(io.BytesIO(data), csv_quotes=True)}
    assert cuts == sorted(set(cuts))
    assert cuts and all(cut in starts for cut in cuts)
    # every target gets the first boundary at or after it
    for cut in cuts:
        previous_start = max(s for s in starts if s < cut)
        assert any(previous_start < t <= cut for t in range(split, len(data), split))


def test_assign_is_contiguous_and_balanced() -> None:
    weights = [10] * 100
    owners = assign(weights, 4)
    assert owners == sorted(owners)
    assert [owners.count(s) for s in range(4)] == [25, 25, 25, 25]
    assert assign([5, 1000, 5], 3) == [0, 1, 2]
    assert assign([0, 0, 0, 0], 2) == [0, 0, 1, 1]


def test_balanced_split_spreads_one_large_object_over_shards() -> None:
    total = 200 * MIB
    cut = balanced_split(64 * MIB, [total], 2)
    assert cut == 25 * MIB
    weights = [min(cut, total - start) for start in range(0, total, cut)]
    assert assign(weights, 2) == [0, 0, 0, 0, 1, 1, 1, 1]
    assert balanced_split(64 * MIB, [MIB], 2) == MIN_BALANCED_SPLIT_BYTES
    assert balanced_split(1000, [total], 2) == 1000  # an explicit small split size is kept
    assert balanced_split(64 * MIB, [100 * total], 2) == 64 * MIB


def test_oversized_lines_are_skipped_not_buffered(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(framing, "READ_CHUNK", 16)
    data = b"ok\n" + b"x" * 200 + b"\nafter\n" + b"y" * 100
    records = list(line_records(io.BytesIO(data), max_record=50))
    assert records[0] == (b"ok", 0)
    assert isinstance(records[1][0], framing.OversizedRecord) and records[1][1] == 3
    assert records[2] == (b"after", 204)
    assert isinstance(records[3][0], framing.OversizedRecord) and records[3][1] == 210
