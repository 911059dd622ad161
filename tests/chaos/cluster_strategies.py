"""Hypothesis strategies for what the operator observes in a cluster: Jobs, pods, progress data.

Shapes are what the Kubernetes API returns (strings where it gives strings, indexes within a
Job's completions); contents are arbitrary: odd termination messages, malformed progress JSON,
any mix of conditions, so the operator's pure functions meet every state a cluster can show.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import strategies as st

from kbt.api.shardmap import SHARD_MAP_ANNOTATION, encode_shard_map
from kbt_operator.labels import COMPLETION_INDEX_LABEL
from kbt_operator.owned import RETRY_GENERATION_LABEL
from kbt_operator.shards import format_indexes
from kbt_operator.status import Reason, Setup

JsonDict = dict[str, Any]
TIMES = st.sampled_from(["2024-05-01T10:00:00Z", "2024-05-01T10:05:00Z", "2024-05-01T11:00:00Z"])
messages = st.text(max_size=60) | st.sampled_from(
    ["", "\n\n", "line one\nshard 0: S3 unavailable after 5 retries"]
)
JOB_CONDITIONS = ["Complete", "Failed", "Suspended", "FailureTarget", "SuccessCriteriaMet"]


@st.composite
def jobs(draw: st.DrawFn, total: int) -> JsonDict:
    """An Indexed Job as the API returns it, for a BatchTransformJob with `total` shards."""
    generation = draw(st.integers(0, 3))
    shard_map = draw(
        st.none() | st.lists(st.integers(0, total - 1), min_size=1, max_size=total, unique=True).map(sorted)
    )
    completions = len(shard_map) if shard_map is not None else total
    indexes = list(range(completions))
    completed = draw(st.sets(st.sampled_from(indexes)))
    failed = draw(st.sets(st.sampled_from(indexes)).map(lambda s: s - completed))
    conditions = draw(
        st.lists(
            st.builds(
                lambda kind, status, reason, message, time: {
                    "type": kind,
                    "status": status,
                    "reason": reason,
                    "message": message,
                    "lastTransitionTime": time,
                },
                st.sampled_from(JOB_CONDITIONS),
                st.sampled_from(["True", "False"]),
                st.sampled_from(
                    ["BackoffLimitExceeded", "FailedIndexes", "DeadlineExceeded", "CompletionsReached"]
                ),
                messages,
                TIMES,
            ),
            max_size=3,
            unique_by=lambda c: c["type"],
        )
    )
    status: JsonDict = {"conditions": conditions}
    if completed:
        status["completedIndexes"] = format_indexes(completed)
    if failed:
        status["failedIndexes"] = format_indexes(failed)
    for key in ("active", "succeeded", "failed"):
        if draw(st.booleans()):
            status[key] = draw(st.integers(0, completions))
    if draw(st.booleans()):
        status["startTime"] = draw(TIMES)
    if draw(st.booleans()):
        status["completionTime"] = draw(TIMES)
    metadata: JsonDict = {"name": f"btj-j-{generation}", "labels": {RETRY_GENERATION_LABEL: str(generation)}}
    if shard_map is not None:
        metadata["annotations"] = {SHARD_MAP_ANNOTATION: encode_shard_map(shard_map)}
    if draw(st.booleans()):
        metadata["deletionTimestamp"] = draw(TIMES)
    return {
        "metadata": metadata,
        "spec": {"completions": completions, "suspend": draw(st.booleans())},
        "status": status,
    }


def pods(completions: int) -> st.SearchStrategy[list[JsonDict]]:
    """Shard pods of a Job: some succeeded, some failed with an exit code and a message."""
    index = st.integers(0, max(0, completions - 1)).map(str) | st.sampled_from(
        ["", "x", "-1", str(completions + 5)]
    )
    terminated = st.builds(
        lambda code, message, reason, time: {
            "exitCode": code,
            "message": message,
            "reason": reason,
            "finishedAt": time,
        },
        st.sampled_from([0, 1, 2, 3, 4, 5, 6, 75, 137, 143, 255]),
        messages,
        st.sampled_from(["Error", "OOMKilled", "Completed", ""]),
        TIMES,
    )
    pod = st.builds(
        lambda name, idx, where, term, phase, message: {
            "metadata": {"name": name, where: {COMPLETION_INDEX_LABEL: idx}},
            "status": {
                "phase": phase,
                "message": message,
                "containerStatuses": [{"name": "kbt", "state": {"terminated": term}}] if term else [],
            },
        },
        st.from_regex(r"\Abtj-j-0-[0-9]-[a-z0-9]{5}\Z"),
        index,
        st.sampled_from(["annotations", "labels"]),
        st.none() | terminated,
        st.sampled_from(["Failed", "Succeeded", "Running", "Pending"]),
        messages,
    )
    return st.lists(pod, max_size=4)


def progress_data(total: int) -> st.SearchStrategy[dict[str, str]]:
    """The progress ConfigMap's data: well-formed shard reports mixed with malformed entries."""
    report = st.fixed_dictionaries(
        {"state": st.sampled_from(["running", "done", "failed"])},
        optional={
            "recordsProcessed": st.integers(0, 10**9),
            "recordsFailed": st.integers(0, 10**6),
            "bytesProcessed": st.integers(0, 10**12),
            "bytesTotal": st.integers(0, 10**12),
            "recordsPerSecond": st.floats(0, 1e6),
            "device": st.sampled_from(["cpu", "cuda:0"]),
        },
    ).map(json.dumps)
    junk = st.sampled_from(
        ["", "{", "[]", '{"recordsProcessed": -5}', '{"bytesTotal": "many"}', '{"index": 99}', "null"]
    )
    keys = st.integers(0, total + 1).map(lambda i: f"shard-{i}") | st.sampled_from(
        ["shard-x", "other", "shard-"]
    )
    return st.dictionaries(keys, report | junk, max_size=4)


# The operator's setup step always explains a failure; a successful one may have no message.
setups = st.none() | st.builds(
    lambda ready, reason, message: Setup(ready, reason, message if ready else message + "cannot: " + reason),
    st.booleans(),
    st.sampled_from([v for k, v in vars(Reason).items() if k.isupper()]),
    messages,
)
