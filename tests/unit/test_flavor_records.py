"""``Records`` (kbt.flavors.base) behaves as the list of ``Record`` tuples it stands for: length,
order, indexing, slices, concatenation, their newline-joined bytes (payload) and size,
``take``; runs of consecutive records merge. ``Lines`` behave as the list of bytes they stand for."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from kbt.flavors.base import (
    Lines,
    Record,
    Records,
    data_size,
    lines_payload,
    new_records,
    take,
)

# (source, first index, number of records, kept as Lines) per run; indices may continue the previous run
RUNS = st.lists(
    st.tuples(st.sampled_from(["a.csv", "b.csv"]), st.integers(0, 6), st.integers(0, 5), st.booleans()),
    max_size=6,
)


def as_lines(datas: list[bytes], gap: bytes = b"\n") -> Lines:
    """``datas`` as the Lines of one buffer, ``gap`` between them."""
    buffer = b"".join(data + gap for data in datas)
    starts = np.cumsum([0, *(len(d) + len(gap) for d in datas)]).astype(np.int64)[: len(datas)]
    return Lines(buffer, starts, starts + np.fromiter(map(len, datas), dtype=np.int64, count=len(datas)))


def build(runs: list[tuple[str, int, int, bool]]) -> tuple[Records, list[Record]]:
    records, expected = Records(), []
    for source, first, count, lines in runs:
        datas = [f"{source}:{first + i}".encode() for i in range(count)]
        records.append_run(source, first, as_lines(datas) if lines else datas)
        expected += [Record(source, first + i, data) for i, data in enumerate(datas)]
    return records, expected


@given(RUNS, st.integers(-40, 40), st.integers(-40, 40))
def test_records_read_as_the_list_they_stand_for(
    runs: list[tuple[str, int, int, bool]], start: int, stop: int
) -> None:
    records, expected = build(runs)
    assert len(records) == len(expected)
    assert list(records) == expected and records == expected
    assert lines_payload(records) == lines_payload(expected) == b"".join(r.data + b"\n" for r in expected)
    assert data_size(records) == data_size(expected) == sum(len(r.data) for r in expected)
    assert [records[i] for i in range(-len(expected), len(expected))] == expected + expected
    assert list(records[start:stop]) == expected[start:stop]
    assert (
        list(Records.concat([records, expected, records[start:stop]])) == expected * 2 + expected[start:stop]
    )
    positions = list(range(0, len(expected), 2))
    assert list(take(records, positions)) == [expected[p] for p in positions]


def test_consecutive_records_of_one_source_are_one_run() -> None:
    records = new_records("a.csv", 0, [b"1", b"2"])
    records.append_run("a.csv", 2, [b"3"])  # continues it
    records.append_run("a.csv", 9, [b"9"])  # a gap: a new run
    records.append_run("b.csv", 10, [b"x"])  # another source
    assert len(records._runs) == 3
    assert [r.index for r in records] == [0, 1, 2, 9, 10]
    joined = Records.concat([records, records])
    joined.append_run("b.csv", 11, [b"y"])
    assert list(records) == list(joined)[:5]  # extending a copy leaves the original alone


def test_records_refuse_what_a_list_would_refuse() -> None:
    records = new_records("a.csv", 0, [b"1"])
    with pytest.raises(IndexError):
        records[1]
    with pytest.raises(ValueError, match="step 1"):
        records[::2]
    assert take(records, [0]) is records
    assert Records() == [] and len(Records()) == 0 and Records().payload() == b""


@given(
    st.lists(st.binary(max_size=4).filter(lambda d: b"\n" not in d), max_size=8),
    st.sampled_from([b"\n", b"\r\n", b"\n\n"]),
)
def test_lines_read_as_the_list_they_stand_for(datas: list[bytes], gap: bytes) -> None:
    lines = as_lines(datas, gap)
    assert list(lines) == datas and lines == datas and len(lines) == len(datas)
    assert [lines[i] for i in range(-len(datas), len(datas))] == datas + datas
    assert lines[1:3] == datas[1:3] and isinstance(lines[1:3], Lines)
    assert lines.sizes().tolist() == [len(d) for d in datas]
    assert lines.payload() == b"".join(d + b"\n" for d in datas)
    with pytest.raises(IndexError):
        lines[len(datas)]


def test_lines_are_shared_not_merged_or_copied() -> None:
    lines = as_lines([b"1", b"2"])
    records = new_records("a.csv", 0, lines)
    records.append_run("a.csv", 2, [b"3"])  # continues the run, but Lines are never extended
    assert len(records._runs) == 2 and list(lines) == [b"1", b"2"]
    joined = Records.concat([records])
    assert joined._runs[0][2] is lines and list(joined) == list(records)


def test_neighbouring_slices_of_one_chunks_lines_join_into_one_run() -> None:
    lines = as_lines([b"1", b"2", b"3", b"4"])
    records = Records.concat([new_records("a.csv", 0, lines[:2]), new_records("a.csv", 2, lines[2:])])
    assert len(records._runs) == 1 and list(records) == list(new_records("a.csv", 0, lines))
    assert records.payload() == b"1\n2\n3\n4\n"
    apart = Records.concat([new_records("a.csv", 0, lines[:1]), new_records("a.csv", 1, lines[2:])])
    assert len(apart._runs) == 2  # index 1 follows, but the lines do not: kept apart
    other = new_records("a.csv", 2, as_lines([b"3", b"4"]))  # another chunk's lines
    assert len(Records.concat([new_records("a.csv", 0, lines[:2]), other])._runs) == 2
    with pytest.raises(ValueError, match="step 1"):
        lines[::2]
    assert lines[3:1] == [] and lines[-2:] == [b"3", b"4"]
