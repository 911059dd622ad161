"""Done-markers stored in groups (kbt.runner.done): when a group is stored, what a reader sees,
and that a shard which fails keeps the markers of the items it finished (a rerun redoes only
the others)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from test_runner_pipeline import make_job, write_csv

from harness.rerun import CountingSum
from kbt.flavors.base import ModelInput, ModelOutput
from kbt.runner import done
from kbt.runner.done import GROUP_ITEMS, GROUP_WEIGHT, DoneBook, done_markers
from kbt.runner.errors import ErrorThresholdExceeded
from kbt.runner.plan import WorkItem
from kbt.runner.shard import run_shard
from kbt.runner.state import Layout, current_plan, layout_for
from kbt.storage.local import LocalStore


def item(ordinal: int, weight: int = 100) -> WorkItem:
    return WorkItem(ordinal, f"in/{ordinal}.png", f"{ordinal}.png", weight, weight=weight)


def marker(ordinal: int) -> dict[str, Any]:
    return {"ordinal": ordinal, "records": 1, "failed": 0}


@pytest.fixture
def layout(tmp_path: Path) -> Layout:
    return Layout(LocalStore(), f"{tmp_path}/out/", "fp")


def groups(layout: Layout) -> list[list[int]]:
    stored = layout.store.list_objects(layout.done_prefix())
    return [[m["ordinal"] for m in json.loads(layout.store.read(i.key))["markers"]] for i in stored]


def test_markers_are_stored_in_full_groups_and_the_rest_on_flush(layout: Layout) -> None:
    reported: list[list[int]] = []
    book = DoneBook(lambda finished: reported.append([i.ordinal for i, _ in finished]))
    book.bind(layout)
    total = 2 * GROUP_ITEMS + 10
    for ordinal in range(total):
        book.add(item(ordinal), marker(ordinal))
    assert [len(g) for g in groups(layout)] == [GROUP_ITEMS, GROUP_ITEMS]
    book.flush()
    assert sorted(done_markers(layout)) == list(range(total))
    assert reported == groups(layout)  # counted as done only once stored, in order
    first = layout.store.list_objects(layout.done_prefix())[0].key
    assert first.endswith(f"/done/00000000-{GROUP_ITEMS - 1:08d}-{book.token}.json")


def test_a_heavy_item_is_stored_at_once(layout: Layout) -> None:
    book = DoneBook(lambda finished: None)
    book.bind(layout)
    book.add(item(0), marker(0))
    assert groups(layout) == []
    book.add(item(1, weight=GROUP_WEIGHT), marker(1))
    assert groups(layout) == [[0, 1]]


def test_an_overdue_group_is_stored_on_the_next_tick(layout: Layout, monkeypatch: pytest.MonkeyPatch) -> None:
    book = DoneBook(lambda finished: None)
    book.bind(layout)
    book.add(item(0), marker(0))
    book.flush_due()
    assert groups(layout) == []  # not overdue yet (GROUP_SECONDS)
    monkeypatch.setattr(done, "GROUP_SECONDS", 0.0)
    book.flush_due()
    assert groups(layout) == [[0]]


def test_two_writers_of_one_shard_keep_each_others_groups(layout: Layout) -> None:
    pod, replacement = DoneBook(lambda finished: None), DoneBook(lambda finished: None)
    for book, ordinals in ((pod, range(5)), (replacement, range(3))):
        book.bind(layout)
        for ordinal in ordinals:
            book.add(item(ordinal), marker(ordinal))
        book.flush()
    assert sorted(groups(layout)) == [[0, 1, 2], [0, 1, 2, 3, 4]]
    assert sorted(done_markers(layout)) == [0, 1, 2, 3, 4]


class FailsOn(CountingSum):
    """Sums rows, but rejects the batch holding a record whose first value is ``bad``."""

    def __init__(self, bad: int) -> None:
        super().__init__()
        self.bad = bad

    def predict(self, batch: ModelInput) -> ModelOutput:
        assert batch.frame is not None
        if (batch.frame.iloc[:, 0] == self.bad).any():
            raise ValueError("cannot score this record")
        return super().predict(batch)


def test_a_failed_shard_keeps_the_markers_of_finished_items(tmp_path: Path) -> None:
    data, out = tmp_path / "in", tmp_path / "out"
    for i in range(6):
        write_csv(data / f"f{i}.csv", [[i, 1]], header=["a", "b"])
    job = make_job(data, out, miniBatchSize=1, errorThreshold=0)
    with pytest.raises(ErrorThresholdExceeded):
        run_shard(job, 0, shards=1, predictor=FailsOn(bad=4), progress_interval=60)
    assert sorted(p.name for p in out.glob("*.out")) == [f"f{i}.csv.out" for i in range(4)]
    assert sorted(done_markers(layout_for(job).for_plan(current_plan(job, layout_for(job), 1)[0]))) == [
        0,
        1,
        2,
        3,
    ]
    first = {p.name: p.read_bytes() for p in out.glob("*.out")}
    predictor = CountingSum()
    assert run_shard(job, 0, shards=1, predictor=predictor, progress_interval=60).finalized
    assert predictor.rows == 2  # only f4 and f5 are scored again
    assert {p.name: p.read_bytes() for p in out.glob("*.out") if p.name in first} == first
