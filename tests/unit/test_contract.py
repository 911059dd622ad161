"""The pod contract (kbt.api): shard map and shard index, progress reports end to end, key layout,
runner settings and the shard command line."""

from __future__ import annotations

import io
import queue
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from kbt.api import layout, podenv
from kbt.api.exitcodes import ExitCode
from kbt.api.progress import ShardProgress, progress_key
from kbt.api.shardmap import ShardMapError, decode_shard_map, encode_shard_map, shard_for, shard_index
from kbt.cli import app
from kbt.runner.progress import (
    FileSink,
    KubernetesSink,
    ProgressSink,
    QueueSink,
    Reporter,
    ShardStats,
    StreamSink,
)
from kbt.settings import RunnerSettings, SettingsError
from kbt.storage import LocalStore
from kbt_operator.plugin.shards import collect_shards, parse_progress
from kbt_operator.progress import aggregate, parse_reports


@given(st.lists(st.integers(min_value=0, max_value=10_000), min_size=1, max_size=50))
def test_shard_map_round_trips_and_maps_every_completion_index(shards: list[int]) -> None:
    text = encode_shard_map(shards)
    assert decode_shard_map(text) == shards
    for completion, shard in enumerate(shards):
        env = {podenv.COMPLETION_INDEX: str(completion), podenv.SHARD_MAP: text}
        assert shard_index(env) == shard_for(completion, shards) == shard
    assert shard_for(len(shards), shards) is None


def test_shard_index_without_a_map_is_the_completion_index_and_bad_input_is_named() -> None:
    assert shard_index({podenv.COMPLETION_INDEX: "4"}) == 4
    assert shard_index({podenv.COMPLETION_INDEX: "4", podenv.SHARD_MAP: ""}) == 4
    with pytest.raises(ShardMapError, match="no shard index: pass --index or set JOB_COMPLETION_INDEX"):
        shard_index({})
    with pytest.raises(ShardMapError, match=r"JOB_COMPLETION_INDEX='2' has no shard in KBT_SHARD_MAP='3,7'"):
        shard_index({podenv.COMPLETION_INDEX: "2", podenv.SHARD_MAP: "3,7"})
    with pytest.raises(ShardMapError, match=r"JOB_COMPLETION_INDEX='x'"):
        shard_index({podenv.COMPLETION_INDEX: "x"})
    with pytest.raises(ShardMapError, match="invalid shard map 'a,b'"):
        decode_shard_map("a,b")


class _ConfigMapApi:
    """Records the ConfigMap patches a KubernetesSink sends and keeps the merged data."""

    def __init__(self) -> None:
        self.data: dict[str, str] = {}

    def patch_namespaced_config_map(self, name: str, namespace: str, body: dict[str, Any], **_: Any) -> None:
        assert (name, namespace) == ("kbt-progress-heart", "team-a")
        self.data.update(body["data"])


def test_progress_the_runner_dumps_is_what_the_operator_plugin_and_kbt_run_read(tmp_path: Path) -> None:
    stats = ShardStats(index=2, records_processed=30, records_failed=3, bytes_total=400, bytes_done=100)
    stats.state, stats.device, stats.records_this_run = "running", "cpu", 30
    api, stream, local = _ConfigMapApi(), io.StringIO(), queue.Queue[ShardProgress]()
    store, progress_file = LocalStore(), f"{tmp_path}/{layout.progress_file_key(2)}"
    sinks: list[ProgressSink] = [
        KubernetesSink("team-a", "kbt-progress-heart", api=api),
        StreamSink(stream),
        FileSink(store, progress_file),
        QueueSink(local),
    ]
    Reporter(stats, sinks, interval=60).publish()
    sent = local.get_nowait()
    assert sent.records_processed == 30 and sent.records_failed == 3 and sent.percent == 25

    reports, problems = parse_reports(api.data)  # the operator
    assert problems == [] and reports == {2: sent}
    assert aggregate(reports, 3, set()).recordsProcessed == 30
    plugin = collect_shards([], parse_progress(api.data), shard_count=3)  # kubectl btj status
    assert plugin[2].progress == sent and plugin[2].state == "running"
    line = stream.getvalue()  # kbt run reads its workers' stdout
    assert line.startswith(StreamSink.PREFIX) and line.endswith("\n")
    assert ShardProgress.from_json(line[len(StreamSink.PREFIX) :]) == sent
    assert ShardProgress.from_json(store.read(progress_file)) == sent
    assert list(api.data) == [progress_key(2)] == ["shard-2"]


def test_progress_reports_of_other_writers_are_read_leniently_and_bad_ones_named() -> None:
    report = ShardProgress.from_entry("shard-5", '{"state": "done", "recordsProcessed": 1, "newField": true}')
    assert (report.index, report.state, report.records_processed, report.bytes_total) == (5, "done", 1, 0)
    assert ShardProgress.from_entry("shard-5", "{}").state == "unknown"
    for text, problem in [
        ("[1]", "expected a JSON object"),
        ('{"index": 4}', "index 4 does not match the key"),
        ('{"bytesTotal": true}', "field 'bytesTotal': Input should be a valid integer, got True"),
        (
            '{"recordsPerSecond": -1.5}',
            "field 'recordsPerSecond': Input should be greater than or equal to 0",
        ),
    ]:
        with pytest.raises(ValueError, match=f"progress entry 'shard-5': {problem}"):
            ShardProgress.from_entry("shard-5", text)


def test_key_layout_under_the_output_prefix() -> None:
    assert layout.log_key(12) == "_kbt/logs/shard-00012.log"
    match = layout.SHARD_LOG_NAME.search(layout.log_key(12))
    assert match is not None and int(match.group(1)) == 12
    assert layout.output_key("a/../b.csv") == "a/%2E%2E/b.csv.out"
    assert layout.errors_key("in.csv", 3) == "_errors/in.csv.part-00003.errors.jsonl"
    assert layout.errors_key("in.csv", None) == "_errors/in.csv.errors.jsonl"
    assert layout.done_key("fp", 7, 12, "ab12cd34") == "_kbt/state/fp/done/00000007-00000012-ab12cd34.json"
    assert layout.part_key("fp", 7).startswith(layout.parts_dir("fp"))
    assert layout.shard_done_key("fp", 1) == "_kbt/state/fp/shards/shard-00001.json"
    assert layout.plan_key("fp") == "_kbt/state/fp/plan.json"
    assert layout.finalized_key("fp") == "_kbt/state/fp/finalized.json"


def test_runner_settings_from_the_environment() -> None:
    defaults = RunnerSettings.from_env({})
    assert defaults == RunnerSettings()
    assert defaults.termination_log == Path("/dev/termination-log") and not defaults.progress_stream
    settings = RunnerSettings.from_env(
        {
            podenv.LOG_FORMAT: "JSON",
            podenv.LOG_LEVEL: "debug",
            podenv.SCRATCH_DIR: "/data/scratch",
            podenv.PROGRESS_CONFIGMAP: "kbt-progress-heart",
            podenv.NAMESPACE: "team-a",
            podenv.PROGRESS_INTERVAL: "0.5",
            podenv.PROGRESS_STREAM: "1",
            podenv.TERMINATION_LOG: "/tmp/reason",
            podenv.SPLIT_SIZE_MB: "8",
        }
    )
    assert settings == RunnerSettings(
        log_format="json",
        log_level="DEBUG",
        scratch_dir=Path("/data/scratch"),
        progress_configmap="kbt-progress-heart",
        namespace="team-a",
        progress_interval=0.5,
        progress_stream=True,
        termination_log=Path("/tmp/reason"),
        split_size_mb=8.0,
    )
    with pytest.raises(SettingsError, match="KBT_SPLIT_SIZE_MB='big': expected a number"):
        RunnerSettings.from_env({podenv.SPLIT_SIZE_MB: "big"})
    with pytest.raises(SettingsError, match="KBT_PROGRESS_INTERVAL='-1': must not be negative"):
        RunnerSettings.from_env({podenv.PROGRESS_INTERVAL: "-1"})


def test_kbt_shard_is_the_shard_command_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    termination = tmp_path / "termination"
    monkeypatch.setenv(podenv.TERMINATION_LOG, str(termination))
    monkeypatch.delenv(podenv.COMPLETION_INDEX, raising=False)
    help_text = CliRunner().invoke(app, ["shard", "--help"]).output
    assert "usage: kbt shard" in help_text and "--split-bytes" in help_text
    (tmp_path / "job.json").write_text("{}")
    result = CliRunner().invoke(app, ["shard", "--job", str(tmp_path / "job.json")])
    assert result.exit_code == ExitCode.CONFIG_ERROR
    assert "validation error" in termination.read_text()
