"""The mini-batch limit (BatchLimit) and the failed-record record (Failure), on local storage."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from kbt.api.models import BatchTransformJobSpec
from kbt.api.resolved import ResolvedJob
from kbt.runner.batching import MIB, BatchLimit, Failure
from kbt.runner.output import ItemWriter
from kbt.runner.plan import WorkItem
from kbt.runner.reader import ItemReader, _Packer
from kbt.runner.state import Layout
from kbt.storage import LocalStore


def job(inputs: Path, output: Path, content_type: str = "application/jsonlines", **spec: Any) -> ResolvedJob:
    parsed = BatchTransformJobSpec.model_validate(
        {
            "transformInput": {
                "contentType": content_type,
                "splitType": "Line",
                "dataSource": {"s3DataSource": {"s3Uri": f"{inputs}/"}},
            },
            "transformOutput": {"s3OutputPath": str(output)},
            "transformResources": {"instanceType": "ml.m5.large"},
            "model": {"uri": "unused", "flavor": "sklearn"},
            **spec,
        }
    )
    assert parsed.model is not None
    return ResolvedJob(name="test", spec=parsed, model=parsed.model, model_ref="unused")


def item_of(path: Path) -> WorkItem:
    size = path.stat().st_size
    return WorkItem(ordinal=0, key=path.as_posix(), name=path.name, size=size, weight=size)


def test_limit_is_mini_batch_size_within_max_payload(tmp_path: Path) -> None:
    limit = BatchLimit.from_job(job(tmp_path, tmp_path / "out", miniBatchSize=7, maxPayloadInMB=2))
    assert limit == BatchLimit(records=7, payload_bytes=2 * MIB)
    assert limit.payload_mb == 2
    assert not limit.exceeded_by(7, 2 * MIB)
    assert limit.exceeded_by(8, 10)
    assert limit.exceeded_by(1, 2 * MIB + 1)


def test_single_record_and_unlimited_payload(tmp_path: Path) -> None:
    spec: dict[str, Any] = {"batchStrategy": "SingleRecord", "miniBatchSize": 50, "maxPayloadInMB": 0}
    limit = BatchLimit.from_job(job(tmp_path, tmp_path / "out", **spec))
    assert (limit.records, limit.payload_bytes) == (1, 0)
    assert not limit.exceeded_by(1, 10**12)
    assert limit.exceeded_by(2, 0)


def test_reader_packs_mini_batches_by_the_limit(tmp_path: Path) -> None:
    data = tmp_path / "in" / "x.jsonl"
    data.parent.mkdir()
    data.write_bytes(b"".join(b'{"v":%d}\n' % i for i in range(10)))
    reader = ItemReader(LocalStore(), job(data.parent, tmp_path / "out", miniBatchSize=4), item_of(data))
    batches = list(reader.batches(0))
    assert [len(b.records) for b in batches] == [4, 4, 2]
    assert [b.seq for b in batches] == [0, 1, 2]
    assert [r.index for r in batches[2].records] == [8, 9]
    assert batches[1].offsets == [32, 40, 48, 56]


def test_oversized_record_is_a_failure_at_its_record_and_offset(tmp_path: Path) -> None:
    data = tmp_path / "in" / "x.jsonl"
    data.parent.mkdir()
    big = b'{"v":"' + b"a" * MIB + b'"}\n'
    data.write_bytes(b'{"v":0}\n' + big + b'{"v":2}\n')
    reader = ItemReader(LocalStore(), job(data.parent, tmp_path / "out", maxPayloadInMB=1), item_of(data))
    batches = list(reader.batches(0))
    assert [r.index for b in batches for r in b.records] == [0, 2]
    (failure,) = [f for b in batches for f in b.rejected]
    assert (failure.record, failure.offset) == (1, 8)
    assert "maxPayloadInMB" in failure.reason and "1 MB" in failure.reason


def test_failures_sort_in_input_order() -> None:
    failures = [Failure(3, 30, "c"), Failure(1, 9, "b"), Failure(1, 5, "z"), Failure(0, -1, "a")]
    assert [(f.record, f.offset) for f in sorted(failures)] == [(0, -1), (1, 5), (1, 9), (3, 30)]


def test_failures_reach_the_error_file_with_and_without_offsets(tmp_path: Path) -> None:
    data = tmp_path / "in" / "x.jsonl"
    data.parent.mkdir()
    data.write_bytes(b"{}\n")
    out = tmp_path / "out"
    the_job = job(data.parent, out)
    layout = Layout(LocalStore(), f"{out.as_posix()}/", "f" * 16)
    writer = ItemWriter(the_job, layout, item_of(data), tmp_path, data.as_posix())
    writer.error(Failure(4, 120, "not valid JSON"))
    writer.error(Failure(7, -1, "no offset in Parquet"))
    marker = writer.commit()
    assert (marker["records"], marker["failed"]) == (2, 2)
    entries = [
        json.loads(line) for line in (out / "_errors" / "x.jsonl.errors.jsonl").read_text().splitlines()
    ]
    assert entries == [
        {"object": data.as_posix(), "record": 4, "reason": "not valid JSON", "offset": 120},
        {"object": data.as_posix(), "record": 7, "reason": "no offset in Parquet"},
    ]


def test_whole_objects_fill_batches_up_to_the_payload_limit_one_record_at_a_time() -> None:
    item = WorkItem(0, "in/x", "x", 0)
    packer = _Packer(item, 0, BatchLimit(records=3, payload_bytes=MIB))
    sizes = [MIB // 2, MIB // 2, 1, MIB + 1, MIB // 2, 2, 3, 4]  # the fourth alone is too big
    batches = [b for i, size in enumerate(sizes) for b in packer.add([b"x" * size], [i * 10])]
    batches += list(packer.finish())
    # record 3 does not fit after record 2: the batch goes, then record 3 is rejected on its own
    assert [[r.index for r in b.records] for b in batches] == [[0, 1], [2], [4, 5, 6], [7]]
    assert [b.payload for b in batches] == [MIB, 1, MIB // 2 + 5, 4]
    assert [(f.record, f.offset) for b in batches for f in b.rejected] == [(3, 30)]
    (failure,) = [f for b in batches for f in b.rejected]
    assert f"{MIB + 1} bytes, more than maxPayloadInMB (1 MB)" in failure.reason
