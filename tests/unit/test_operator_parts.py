"""Small pure parts of the operator: names, index sets, progress reports, RBAC data, status patches."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kbt.api.shardmap import decode_shard_map
from kbt_operator import rbac
from kbt_operator.labels import job_selector, progress_configmap_name
from kbt_operator.naming import bounded, label_value
from kbt_operator.progress import aggregate, parse_reports
from kbt_operator.shards import format_indexes, parse_indexes
from kbt_operator.syncer import status_patch


@given(st.sets(st.integers(min_value=0, max_value=500)))
def test_index_intervals_round_trip(indexes: set[int]) -> None:
    assert parse_indexes(format_indexes(indexes)) == indexes


def test_index_interval_format() -> None:
    assert format_indexes({0, 1, 2, 5, 7, 8}) == "0-2,5,7-8"
    assert parse_indexes("") == set() and parse_indexes(None) == set()
    with pytest.raises(ValueError, match="invalid index interval '3-1' in '3-1'"):
        parse_indexes("3-1")
    with pytest.raises(ValueError, match="invalid shard map 'a,b'"):
        decode_shard_map("a,b")


def test_long_names_stay_valid_and_distinct() -> None:
    long_a, long_b = "a" * 100 + "x", "a" * 100 + "y"
    assert len(label_value(long_a)) <= 63 and label_value(long_a) != label_value(long_b)
    assert bounded("short", 63, "-job") == "short-job"
    assert len(progress_configmap_name("p" * 253)) <= 63
    assert job_selector("heart") == "kbt.dev/job-name=heart"


def test_progress_reports_are_parsed_and_bad_ones_named() -> None:
    data = {
        "shard-0": json.dumps(
            {"index": 0, "state": "running", "recordsProcessed": 5, "bytesProcessed": 10, "bytesTotal": 40}
        ),
        "shard-1": "{not json",
        "shard-2": json.dumps({"index": 3, "state": "running"}),
        "shard-4": json.dumps({"index": 4, "recordsProcessed": -2}),
        "other": "ignored",
    }
    reports, problems = parse_reports(data)
    assert list(reports) == [0]
    assert len(problems) == 3
    assert problems[0].startswith("progress entry 'shard-1':")
    assert "index 3 does not match the key" in problems[1]
    assert "field 'recordsProcessed': Input should be greater than or equal to 0, got -2" in problems[2]
    assert aggregate(reports, 2, set()).percent == 12  # 10/40 of shard 0, shard 1 weighted like it


def test_progress_of_no_reports_counts_completed_shards() -> None:
    assert aggregate({}, 4, {0, 1}).percent == 50
    assert aggregate({}, 4, {0, 1, 2, 3}).percent == 100
    assert aggregate({}, 0, set()).percent == 0


def test_status_patch_deletes_vanished_keys() -> None:
    before = {"transformJobStatus": "Failed", "failureReason": "x", "shards": {"failed": 1}}
    after = {"transformJobStatus": "InProgress", "shards": {"failed": 1}}
    assert status_patch(before, after) == {"transformJobStatus": "InProgress", "failureReason": None}


def test_rbac_rules_render_for_the_chart_and_grant_no_wildcards() -> None:
    text = rbac.render_rules_yaml()
    assert text.startswith("# Generated from kbt_operator.rbac")
    for rule in rbac.NAMESPACED_RULES:
        policy = rule.as_policy_rule()
        assert "*" not in policy["verbs"] + policy["resources"] + policy["apiGroups"]
    assert rbac.allows("batch", "jobs", "create") and not rbac.allows("", "secrets", "list")
    assert not rbac.allows("", "pods", "delete") and not rbac.allows("", "namespaces", "list")
