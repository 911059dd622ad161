"""``Records`` (kbt.flavors.base) behaves as the list of ``Record`` tuples it stands for: length,
order, indexing, slices, concatenation, the bytes, ``take``; runs of consecutive records merge."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kbt.flavors.base import Record, Records, new_records, record_datas, take

# (source, first index, number of records) per run; indices may continue the previous run
RUNS = st.lists(
    st.tuples(st.sampled_from(["a.csv", "b.csv"]), st.integers(0, 6), st.integers(0, 5)), max_size=6
)


def build(runs: list[tuple[str, int, int]]) -> tuple[Records, list[Record]]:
    records, expected = Records(), []
    for source, first, count in runs:
        datas = [f"{source}:{first + i}".encode() for i in range(count)]
        records.append_run(source, first, datas)
        expected += [Record(source, first + i, data) for i, data in enumerate(datas)]
    return records, expected


@given(RUNS, st.integers(-40, 40), st.integers(-40, 40))
def test_records_read_as_the_list_they_stand_for(
    runs: list[tuple[str, int, int]], start: int, stop: int
) -> None:
    records, expected = build(runs)
    assert len(records) == len(expected)
    assert list(records) == expected and records == expected
    assert record_datas(records) == [r.data for r in expected]
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
    assert Records() == [] and len(Records()) == 0 and record_datas(Records()) == []
