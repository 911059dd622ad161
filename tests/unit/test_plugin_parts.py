"""Pure parts of `kubectl btj`: durations, log-line parsing, shard collection, progress, tables."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
import typer

from kbt.api.layout import log_key
from kbt.api.podenv import SHARD_MAP
from kbt.api.progress import progress_key
from kbt.api.shardmap import encode_shard_map
from kbt_operator.labels import COMPLETION_INDEX_LABEL, job_selector, progress_configmap_name
from kbt_operator.plugin.cli import parse_duration
from kbt_operator.plugin.logs import parse_line, parse_lines, split_lines
from kbt_operator.plugin.shards import collect_shards, parse_progress
from kbt_operator.plugin.status import render_table


def _pod(name: str, index: int, phase: str, created: str, waiting: str | None = None) -> dict:
    state = {"waiting": {"reason": waiting}} if waiting else {"running": {}}
    return {
        "metadata": {
            "name": name,
            "creationTimestamp": created,
            "labels": {COMPLETION_INDEX_LABEL: str(index)},
        },
        "spec": {"nodeName": f"node-{index}"},
        "status": {"phase": phase, "containerStatuses": [{"state": state, "restartCount": 0}]},
    }


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("45s", timedelta(seconds=45)),
        ("10m", timedelta(minutes=10)),
        ("1h30m", timedelta(hours=1, minutes=30)),
    ],
)
def test_parse_duration(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "10", "m", "1d", "-5s"])
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(typer.BadParameter, match="not a duration"):
        parse_duration(text)


def test_parse_line_kubelet_timestamp_json_and_none() -> None:
    kubelet = parse_line(2, "2024-05-01T10:00:00.123456789Z loading model")
    assert kubelet.time == datetime(2024, 5, 1, 10, 0, 0, 123456, tzinfo=UTC)
    assert kubelet.text == "loading model"
    assert kubelet.render(False) == "[shard 2] loading model"
    assert kubelet.render(True) == "[shard 2] 2024-05-01T10:00:00.123456789Z loading model"

    structured = parse_line(0, '{"event": "batch done", "timestamp": "2024-05-01T10:00:05Z"}')
    assert structured.time == datetime(2024, 5, 1, 10, 0, 5, tzinfo=UTC)
    assert structured.render(True) == '[shard 0] {"event": "batch done", "timestamp": "2024-05-01T10:00:05Z"}'

    bare = parse_lines(1, ["2024-05-01T10:00:07Z first", "traceback line"])
    assert bare[1].time == bare[0].time and bare[1].text == "traceback line"


def test_split_lines_across_chunk_boundaries() -> None:
    chunks = [b"al", b"pha\nbe", b"ta\r\n", b"\xc3", b"\xa9gamma"]
    assert list(split_lines(chunks)) == ["alpha", "beta", "\u00e9gamma"]


def test_collect_shards_orders_attempts_and_derives_state() -> None:
    pods = [
        _pod("j-1-b", 1, "Running", "2024-05-01T10:05:00Z"),
        _pod("j-1-a", 1, "Failed", "2024-05-01T10:00:00Z"),
        _pod("j-0-a", 0, "Pending", "2024-05-01T10:00:00Z", waiting="ContainerCreating"),
        {"metadata": {"name": "stray", "labels": {}}, "status": {}},
    ]
    progress = parse_progress(
        {
            progress_key(1): json.dumps(
                {
                    "index": 1,
                    "state": "Predicting",
                    "recordsProcessed": 40,
                    "bytesProcessed": 50,
                    "bytesTotal": 200,
                }
            ),
            "shard-x": "not json",
            "other": "{}",
        }
    )
    shards = collect_shards(pods, progress, shard_count=3)
    assert list(shards) == [0, 1, 2]
    assert [pod.name for pod in shards[1].pods] == ["j-1-a", "j-1-b"]
    assert shards[1].retries == 1 and shards[1].state == "Predicting"
    assert shards[1].progress is not None and shards[1].progress.percent == 25
    assert shards[0].state == "Pending (ContainerCreating)" and not shards[0].pods[0].has_logs
    assert shards[2].state == "Waiting" and shards[2].latest is None


def test_retry_job_pods_map_completion_index_to_shard() -> None:
    retry = _pod("j-retry-0", 0, "Running", "2024-05-01T11:00:00Z")
    retry["spec"]["containers"] = [
        {"name": "shard", "env": [{"name": SHARD_MAP, "value": encode_shard_map([3, 7])}]}
    ]
    retry["metadata"]["labels"][COMPLETION_INDEX_LABEL] = "1"
    first = _pod("j-first-7", 7, "Failed", "2024-05-01T10:00:00Z")
    shards = collect_shards([first, retry], {}, shard_count=8)
    assert [pod.name for pod in shards[7].pods] == ["j-first-7", "j-retry-0"]
    assert shards[7].retries == 1 and shards[3].pods == []


def test_render_table_aligns_columns() -> None:
    text = render_table([("A", "LONG HEADER"), ("value", "x")])
    assert text.splitlines() == ["A       LONG HEADER", "value   x"]


def test_names_shared_with_the_operator() -> None:
    assert job_selector("heart") == "kbt.dev/job-name=heart"
    assert progress_configmap_name("heart") == "kbt-progress-heart"
    assert log_key(3) == "_kbt/logs/shard-00003.log"
