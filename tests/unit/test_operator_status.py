"""Status derivation (a pure function of BatchTransformJob, Job, pods, progress) and its events."""

from __future__ import annotations

import json
from typing import Any

import pytest

from kbt.api.models import BatchTransformJobStatus
from kbt_operator.events import transition_events
from kbt_operator.status import Observation, Reason, Setup, derive_status

NOW = "2024-05-01T10:05:00Z"
EARLIER = "2024-05-01T10:00:00Z"


def btj(status: dict[str, Any] | None = None, generation: int = 1, **spec: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "modelName": "heart-model",
        "shardCount": 4,
        "transformInput": {"dataSource": {"s3DataSource": {"s3Uri": "s3://data/heart/"}}},
        "transformOutput": {"s3OutputPath": "s3://results/heart/"},
        "transformResources": {"instanceType": "ml.m5.xlarge", "instanceCount": 2},
    }
    base.update(spec)
    return {
        "apiVersion": "kbt.dev/v1alpha1",
        "kind": "BatchTransformJob",
        "metadata": {"name": "heart", "namespace": "ns", "uid": "u1", "generation": generation},
        "spec": base,
        "status": status or {},
    }


def job(
    *,
    generation: int = 0,
    shard_map: str | None = None,
    suspend: bool = False,
    condition: str | None = None,
    condition_reason: str = "",
    **status: Any,
) -> dict[str, Any]:
    annotations = {"kbt.dev/shard-map": shard_map} if shard_map else {}
    body: dict[str, Any] = {
        "metadata": {
            "name": f"btj-heart-{generation}",
            "labels": {"kbt.dev/retry-generation": str(generation)},
            "annotations": annotations,
        },
        "spec": {"suspend": suspend},
        "status": dict(status),
    }
    if condition:
        body["status"]["conditions"] = [
            {
                "type": condition,
                "status": "True",
                "reason": condition_reason,
                "message": "m",
                "lastTransitionTime": NOW,
            }
        ]
    return body


def failed_pod(index: int, code: int, message: str, name: str = "") -> dict[str, Any]:
    return {
        "metadata": {
            "name": name or f"btj-heart-0-{index}-x",
            "annotations": {"batch.kubernetes.io/job-completion-index": str(index)},
        },
        "status": {
            "phase": "Failed",
            "containerStatuses": [
                {
                    "name": "kbt",
                    "state": {"terminated": {"exitCode": code, "message": message, "finishedAt": NOW}},
                }
            ],
        },
    }


def report(
    index: int, processed: int, total: int, state: str = "running", rate: float = 10.0
) -> tuple[str, str]:
    data = {
        "index": index,
        "state": state,
        "recordsProcessed": processed // 10,
        "recordsFailed": 1,
        "bytesProcessed": processed,
        "bytesTotal": total,
        "recordsPerSecond": rate,
    }
    return f"shard-{index}", json.dumps(data)


def derive(body: dict[str, Any], latest: dict[str, Any] | None, **kwargs: Any) -> dict[str, Any]:
    derived = derive_status(Observation.parse(btj=body, job=latest, now=NOW, **kwargs))
    return derived.status.model_dump(mode="json", exclude_none=True)


def condition(status: dict[str, Any], kind: str) -> dict[str, Any]:
    return next(c for c in status["conditions"] if c["type"] == kind)


RUNNING: dict[str, Any] = {"startTime": EARLIER, "active": 2}


@pytest.mark.parametrize(
    ("spec", "previous", "latest", "state", "running_reason"),
    [
        ({}, {}, None, "Pending", Reason.RECONCILING),
        ({}, {}, job(), "Pending", Reason.RECONCILING),
        ({}, {}, job(**RUNNING), "InProgress", Reason.SHARDS_RUNNING),
        ({"queueName": "q"}, {}, job(suspend=True), "Pending", Reason.QUEUED),
        ({"suspend": True}, {}, job(suspend=True, startTime=EARLIER), "Pending", Reason.SUSPENDED),
        (
            {},
            {},
            job(condition="Complete", completedIndexes="0-3", succeeded=4),
            "Completed",
            Reason.ALL_SHARDS_SUCCEEDED,
        ),
        (
            {},
            {},
            job(condition="Failed", failedIndexes="2", completedIndexes="0-1,3"),
            "Failed",
            Reason.SHARDS_FAILED,
        ),
        (
            {"stop": True},
            {"transformJobStatus": "InProgress"},
            job(**RUNNING),
            "Stopping",
            Reason.STOP_REQUESTED,
        ),
        (
            {"stop": True},
            {"transformJobStatus": "Stopping", "jobName": "btj-heart-0"},
            None,
            "Stopped",
            Reason.STOP_REQUESTED,
        ),
        ({"stop": True}, {}, None, "Stopped", Reason.STOP_REQUESTED),
        (
            {"stop": True},
            {"transformJobStatus": "Completed"},
            job(condition="Complete", completedIndexes="0-3"),
            "Completed",
            Reason.ALL_SHARDS_SUCCEEDED,
        ),
        (
            {},
            {"transformJobStatus": "InProgress", "jobName": "btj-heart-0"},
            None,
            "Failed",
            Reason.JOB_DELETED,
        ),
        ({}, {"transformJobStatus": "Completed", "jobName": "btj-heart-0"}, None, "Completed", "Completed"),
    ],
)
def test_state_table(
    spec: dict[str, Any],
    previous: dict[str, Any],
    latest: dict[str, Any] | None,
    state: str,
    running_reason: str,
) -> None:
    status = derive(btj(previous, **spec), latest)
    assert status["transformJobStatus"] == state
    running = condition(status, "Running")
    assert running["reason"] == running_reason
    assert running["status"] == ("True" if state == "InProgress" else "False")
    for kind, owner_state in (("Complete", "Completed"), ("Failed", "Failed"), ("Stopped", "Stopped")):
        assert condition(status, kind)["status"] == ("True" if state == owner_state else "False")


def test_shard_counts_progress_and_summary() -> None:
    data = dict([report(0, 100, 100, state="completed"), report(1, 50, 100), report(2, 0, 300)])
    status = derive(btj(), job(completedIndexes="0", succeeded=1, **RUNNING), progress=data)
    assert status["shards"] == {
        "total": 4,
        "active": 2,
        "succeeded": 1,
        "failed": 0,
        "completedIndexes": "0",
        "failedIndexes": "",
    }
    progress = status["progress"]
    assert progress["recordsProcessed"] == 15 and progress["recordsFailed"] == 3
    assert progress["bytesProcessed"] == 150 and progress["bytesTotal"] == 500
    assert progress["recordsPerSecond"] == 20.0  # the completed shard does not count
    # weights: 100, 100, 300 and the silent shard 3 at the mean (166.7): (100 + 50) / 666.7
    assert progress["percent"] == 22
    assert status["progressSummary"] == "1/4 shards, 22%"
    assert status["model"] == "heart-model" and status["outputLocation"] == "s3://results/heart/"
    assert status["jobName"] == "btj-heart-0" and status["startTime"] == EARLIER and "endTime" not in status


def test_completed_job_is_100_percent_with_end_time() -> None:
    status = derive(
        btj(),
        job(condition="Complete", completedIndexes="0-3", succeeded=4, startTime=EARLIER, completionTime=NOW),
    )
    assert status["progress"]["percent"] == 100 and status["progressSummary"] == "4/4 shards, 100%"
    assert status["endTime"] == NOW


def test_failure_reason_names_the_shard_and_the_runner_line() -> None:
    latest = job(
        condition="Failed",
        condition_reason="FailedIndexes",
        failedIndexes="1,3",
        completedIndexes="0,2",
        failed=3,
        startTime=EARLIER,
    )
    pods = [
        failed_pod(1, 1, "Traceback ...\nS3 read timed out", name="p-1a"),
        failed_pod(1, 5, "loading model...\ncannot load model s3://models/heart/: NoSuchKey", name="p-1b"),
        failed_pod(3, 4, "error threshold exceeded: 12 bad records > 10"),
    ]
    derived = derive_status(Observation.parse(btj=btj(), job=latest, now=NOW, pods=pods))
    status = derived.status
    assert status.failureReason == (
        "shard 1: cannot load model s3://models/heart/: NoSuchKey (exit code 5, MODEL_LOAD_ERROR); "
        "1 more failed shard(s): 3"
    )
    assert (
        derived.shard_failures[3]
        == "error threshold exceeded: 12 bad records > 10 (exit code 4, ERROR_THRESHOLD)"
    )
    assert condition(status.model_dump(mode="json"), "Failed")["message"] == status.failureReason


def test_failure_without_pods_uses_the_job_condition() -> None:
    status = derive(btj(), job(condition="Failed", condition_reason="DeadlineExceeded", startTime=EARLIER))
    assert status["failureReason"] == "DeadlineExceeded: m"


def test_attempt_failures_of_retried_shards_are_reported_separately() -> None:
    latest = job(failed=1, **RUNNING)
    derived = derive_status(
        Observation.parse(btj=btj(), job=latest, now=NOW, pods=[failed_pod(2, 137, "", name="p2")])
    )
    (attempt,) = derived.attempt_failures
    assert attempt.shard == 2 and attempt.pod == "p2"
    assert attempt.reason == "failed (exit code 137, killed (SIGKILL/OOM))"  # no message, no reason
    assert derived.status.failureReason is None


def test_retry_job_maps_indexes_to_shards() -> None:
    latest = job(
        generation=1, shard_map="1,3", completedIndexes="1", failedIndexes="0", active=0, startTime=NOW
    )
    pods = [failed_pod(0, 3, "unknown content type")]
    status = derive(btj(retryFailedShards=1), latest, pods=pods)
    assert status["shards"]["completedIndexes"] == "0,2-3"  # 0 and 2 done before, 3 now
    assert status["shards"]["failedIndexes"] == "1"
    assert status["retryGeneration"] == 1 and status["jobName"] == "btj-heart-1"


def test_stopped_job_keeps_the_shard_counts_it_recorded() -> None:
    previous = {
        "transformJobStatus": "Stopping",
        "jobName": "btj-heart-0",
        "shards": {
            "total": 4,
            "active": 2,
            "succeeded": 2,
            "failed": 0,
            "completedIndexes": "0-1",
            "failedIndexes": "",
        },
    }
    status = derive(btj(previous, stop=True), None)
    assert status["transformJobStatus"] == "Stopped"
    assert status["shards"]["completedIndexes"] == "0-1" and status["shards"]["active"] == 0
    assert status["endTime"] == NOW


def test_setup_problems_show_in_ready_and_permanent_ones_fail_the_job() -> None:
    missing = derive(
        btj(), None, setup=Setup(False, Reason.MODEL_NOT_FOUND, "Model heart-model not found in namespace ns")
    )
    assert missing["transformJobStatus"] == "Pending"
    assert condition(missing, "Ready") | {"lastTransitionTime": None} == {
        "type": "Ready",
        "status": "False",
        "reason": "ModelNotFound",
        "message": "Model heart-model not found in namespace ns",
        "lastTransitionTime": None,
        "observedGeneration": 1,
    }
    unknown = derive(
        btj(), None, setup=Setup(False, Reason.UNKNOWN_INSTANCE_TYPE, "unknown instanceType 'ml.x'")
    )
    assert (
        unknown["transformJobStatus"] == "Failed"
        and unknown["failureReason"] == "unknown instanceType 'ml.x'"
    )
    # a restarted operator knows nothing yet: the written Ready condition stays
    assert condition(derive(btj(missing), None), "Ready")["reason"] == "ModelNotFound"


def test_invalid_spec_fails_with_the_field_path() -> None:
    body = btj(errorThreshold="lots")
    status = derive(body, None)
    assert status["transformJobStatus"] == "Failed"
    assert "spec.errorThreshold" in status["failureReason"]
    assert condition(status, "Ready")["reason"] == Reason.INVALID_SPEC


def test_last_transition_time_changes_only_with_the_condition_status() -> None:
    first = derive(btj(), job(**RUNNING), setup=Setup(True, Reason.JOB_CREATED, "created"))
    first["conditions"] = [c | {"lastTransitionTime": EARLIER} for c in first["conditions"]]
    again = derive(btj(first), job(completedIndexes="0", **RUNNING))
    assert all(c["lastTransitionTime"] == EARLIER for c in again["conditions"])
    done = derive(btj(again), job(condition="Complete", completedIndexes="0-3"))
    changed = {c["type"] for c in done["conditions"] if c["lastTransitionTime"] == NOW}
    assert changed == {"Running", "Complete"}


def test_observed_generation_follows_metadata() -> None:
    status = derive(btj(generation=7), job(**RUNNING))
    assert status["observedGeneration"] == 7 and all(
        c["observedGeneration"] == 7 for c in status["conditions"]
    )


def test_events_for_transitions_and_newly_failed_shards() -> None:
    pending = derive(btj(), None)
    running_obs = Observation.parse(
        btj=btj(pending), job=job(**RUNNING), now=NOW, setup=Setup(True, Reason.JOB_CREATED, "Job created")
    )
    running = derive_status(running_obs)
    events = transition_events(BatchTransformJobStatus.model_validate(pending), running)
    assert [(e.type, e.reason) for e in events] == [("Normal", "JobCreated"), ("Normal", "Started")]
    running_dump = running.status.model_dump(mode="json", exclude_none=True)
    failed = derive_status(
        Observation.parse(
            btj=btj(running_dump),
            job=job(condition="Failed", failedIndexes="2", completedIndexes="0-1,3"),
            now=NOW,
            pods=[failed_pod(2, 3, "bad csv header")],
        )
    )
    events = transition_events(running.status, failed)
    assert [(e.type, e.reason) for e in events] == [("Warning", "ShardFailed"), ("Warning", "Failed")]
    assert events[0].message == "shard 2 failed: bad csv header (exit code 3, INPUT_ERROR)"
    assert transition_events(failed.status, failed) == []
