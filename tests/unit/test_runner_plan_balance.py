"""The plan's balance: cuts at shard boundaries (every shard gets about 1/N of the bytes) and
``useful_shards`` (kbt run's default shard count: no shard without work)."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest
from test_runner_pipeline import make_job, write_csv

from kbt.cli_run import _shard_count
from kbt.runner import plan
from kbt.runner.plan import MIB, Plan, WorkItem, assign, balanced_split, cut_targets, make_plan, useful_shards


def test_cut_targets_cut_at_shard_boundaries_then_into_equal_items() -> None:
    assert cut_targets(100, 30, [50]) == [25, 50, 75]
    assert cut_targets(100, 20, [50]) == [16, 33, 50, 66, 83]
    assert cut_targets(100, 100, [50]) == [50]
    assert cut_targets(100, 40, []) == [33, 66]
    assert cut_targets(100, 40, [-10, 0, 100, 130]) == [33, 66]  # boundaries outside are ignored


def test_a_40_mb_object_goes_half_to_each_of_two_shards() -> None:
    size = 40_000_000
    cut = balanced_split(64 * MIB, [size], 2)
    bounds = [0, *cut_targets(size, cut, [size // 2]), size]
    weights = [b - a for a, b in itertools.pairwise(bounds)]
    owners = assign(weights, 2)
    assert owners == [0, 0, 0, 1, 1, 1]
    assert sum(w for w, o in zip(weights, owners, strict=True) if o == 0) == size // 2


@pytest.mark.parametrize("shards", [2, 3, 4])
def test_planned_shards_get_equal_bytes_at_record_boundaries(tmp_path: Path, shards: int) -> None:
    inputs = tmp_path / "in"
    inputs.mkdir()
    write_csv(inputs / "a.csv", [[i, i * 3, "x" * (i % 7)] for i in range(3000)])
    job = make_job(inputs, tmp_path / "out")
    made = make_plan(job, shards, split_bytes=5000)
    data = (inputs / "a.csv").read_bytes()
    per_shard = [sum(item.weight for item in made.for_shard(s)) for s in range(shards)]
    assert sum(per_shard) == len(data)
    longest = max(len(line) for line in data.splitlines(keepends=True))
    assert max(per_shard) - min(per_shard) <= 2 * longest  # cuts move to the next record start
    assert all(data[item.start - 1 : item.start] == b"\n" for item in made.items if item.start)


def test_useful_shards_never_plans_a_shard_without_work(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(plan, "MIN_SHARD_BYTES", 100)
    one = tmp_path / "one"
    one.mkdir()
    write_csv(one / "a.csv", [[1, 2]])
    assert useful_shards(make_job(one, tmp_path / "out"), 8, 1000) == 1  # one record: one worker

    many = tmp_path / "many"
    many.mkdir()
    write_csv(many / "a.csv", [[i, i] for i in range(1000)])
    assert useful_shards(make_job(many, tmp_path / "out"), 4, 1000) == 4
    job = make_job(many, tmp_path / "out")
    assert len(set(make_plan(job, 4, 1000).assignment)) == 4

    # whole objects (no splitType) of bytes [5, 5, 5, 1]: four shards would leave one empty
    whole = tmp_path / "whole"
    whole.mkdir()
    for name, rows in {"a": 500, "b": 500, "c": 500, "d": 100}.items():
        write_csv(whole / f"{name}.csv", [[7, 7]] * rows)
    unsplit = make_job(whole, tmp_path / "out", transformInput={"splitType": "None"})
    chosen = useful_shards(unsplit, 4, 1000)
    assert chosen == 3
    assert len(set(make_plan(unsplit, chosen, 1000).assignment)) == chosen


def test_useful_shards_wants_min_shard_bytes_per_shard(tmp_path: Path) -> None:
    write_csv(tmp_path / "a.csv", [[i, i] for i in range(10_000)])  # ~100 KB: one shard's worth
    assert useful_shards(make_job(tmp_path, tmp_path / "out"), 16, 1000) == 1


def test_kbt_run_plans_one_shard_per_cpu_the_input_has_work_for(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(plan, "MIN_SHARD_BYTES", 100)
    write_csv(tmp_path / "a.csv", [[i, i] for i in range(1000)])
    job = make_job(tmp_path, tmp_path / "out")
    assert _shard_count(job, None, None, cpus=4, split=1000) == (4, "the input has work for 4 of 4 CPU(s)")
    assert _shard_count(job, 3, None, cpus=4, split=1000) == (3, "--shards")
    assert _shard_count(job, None, 2, cpus=4, split=1000) == (2, "max(job's shards, --workers)")
    one = tmp_path / "one"
    one.mkdir()
    write_csv(one / "a.csv", [[1, 2]])
    single = make_job(one, tmp_path / "out", transformResources={"instanceCount": 1})
    assert _shard_count(single, None, None, cpus=4, split=1000) == (
        1,
        "the job's; the input has work for 1 of 4 CPU(s)",
    )
    wide = make_job(one, tmp_path / "out", transformResources={"instanceCount": 4})
    assert _shard_count(wide, None, None, cpus=4, split=1000) == (4, "the job's; 4 CPU(s)")


def test_a_stored_plan_reads_back_equal() -> None:
    items = [
        WorkItem(0, "in/a.parquet", "a.parquet", 900, row_groups=(0, 3), weight=500, version="etag-1"),
        WorkItem(1, "in/b.csv", "b.csv", 300, start=100, end=200, part=1, parts=3, weight=100),
    ]
    stored = Plan("fp", 2, 1000, "s3://bucket/", items, [0, 1], {"miniBatchSize": 5}, {"spec": {}}, "c")
    assert Plan.from_json(stored.to_json()) == stored
    assert json.loads(stored.to_json())["items"][0]["row_groups"] == [0, 3]
