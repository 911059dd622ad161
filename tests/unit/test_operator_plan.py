"""What the operator does to a BatchTransformJob's Jobs (a pure function of spec, Jobs, status)."""

from __future__ import annotations

from typing import Any

from kbt.api.models import BatchTransformJobSpec, BatchTransformJobStatus
from kbt_operator import plan as planning
from kbt_operator.plan import NewJob, Plan, SetSuspend
from kbt_operator.views import IndexedJob


def spec(**changes: Any) -> BatchTransformJobSpec:
    base: dict[str, Any] = {
        "modelName": "m",
        "shardCount": 4,
        "transformInput": {"dataSource": {"s3DataSource": {"s3Uri": "s3://data/in/"}}},
        "transformOutput": {"s3OutputPath": "s3://data/out/"},
        "transformResources": {"instanceType": "ml.m5.large"},
    }
    return BatchTransformJobSpec.model_validate(base | changes)


def job(
    generation: int = 0,
    *,
    condition: str | None = None,
    suspend: bool = False,
    deleting: bool = False,
    shard_map: str | None = None,
    **status: Any,
) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "name": f"btj-x-{generation}",
        "labels": {"kbt.dev/retry-generation": str(generation)},
    }
    if shard_map:
        meta["annotations"] = {"kbt.dev/shard-map": shard_map}
    if deleting:
        meta["deletionTimestamp"] = "2024-05-01T10:00:00Z"
    if condition:
        status["conditions"] = [{"type": condition, "status": "True"}]
    return {"metadata": meta, "spec": {"suspend": suspend}, "status": status}


def plan_jobs(spec: BatchTransformJobSpec, jobs: list[dict[str, Any]], previous: dict[str, Any]) -> Plan:
    """`plan.plan_jobs` of Jobs and a status as the API returns them."""
    return planning.plan_jobs(
        spec, [IndexedJob.parse(j) for j in jobs], BatchTransformJobStatus.model_validate(previous)
    )


def test_first_job_runs_every_shard() -> None:
    assert plan_jobs(spec(), [], {}) == Plan(create=NewJob(0, None))
    assert plan_jobs(spec(retryFailedShards=3), [], {}) == Plan(create=NewJob(3, None))


def test_nothing_to_do_for_a_running_job() -> None:
    assert plan_jobs(spec(), [job(active=2)], {}).empty


def test_stop_deletes_the_running_job_once() -> None:
    assert plan_jobs(spec(stop=True), [job(active=2)], {}) == Plan(stop="btj-x-0")
    assert plan_jobs(spec(stop=True), [job(deleting=True)], {}).empty
    assert plan_jobs(spec(stop=True), [], {"jobName": "btj-x-0"}).empty
    assert plan_jobs(spec(stop=True), [], {}).empty  # stopped before it started: never created
    assert plan_jobs(spec(stop=True), [job(condition="Complete")], {}).empty


def test_suspend_follows_spec_unless_kueue_owns_it() -> None:
    assert plan_jobs(spec(suspend=True), [job()], {}).suspend == SetSuspend("btj-x-0", True)
    assert plan_jobs(spec(suspend=False), [job(suspend=True)], {}).suspend == SetSuspend("btj-x-0", False)
    assert plan_jobs(spec(suspend=True), [job(suspend=True)], {}).suspend is None
    queued = plan_jobs(spec(queueName="q", suspend=True), [job(suspend=True)], {})
    assert queued.suspend is None and queued.notes == (
        "suspend ignored: Kueue suspends and resumes queued jobs",
    )
    assert plan_jobs(spec(queueName="q"), [job(suspend=False)], {}).empty  # admitted by Kueue: untouched


def test_retry_of_a_failed_job_runs_every_unfinished_shard() -> None:
    failed = job(condition="Failed", completedIndexes="0,2", failedIndexes="1")
    assert plan_jobs(spec(), [failed], {}).empty  # no retry requested
    assert plan_jobs(spec(retryFailedShards=1), [failed], {}) == Plan(
        create=NewJob(1, (1, 3)), delete=("btj-x-0",)
    )


def test_retry_of_a_retry_maps_through_the_shard_map() -> None:
    retry = job(1, condition="Failed", shard_map="1,3", completedIndexes="0", failedIndexes="1")
    old = job(0, deleting=True)
    assert plan_jobs(spec(retryFailedShards=2), [old, retry], {}) == Plan(
        create=NewJob(2, (3,)), delete=("btj-x-1",)
    )


def test_superseded_jobs_are_deleted() -> None:
    assert plan_jobs(spec(retryFailedShards=1), [job(0, condition="Failed"), job(1, active=1)], {}) == Plan(
        delete=("btj-x-0",)
    )


def test_retry_requests_that_cannot_apply_are_reported() -> None:
    running = plan_jobs(spec(retryFailedShards=1), [job(active=1)], {})
    assert running.create is None and running.notes == (
        "retryFailedShards ignored: only a Failed job can retry its shards",
    )
    done = plan_jobs(spec(retryFailedShards=1), [job(condition="Complete")], {})
    assert done.create is None and done.notes == ("retryFailedShards ignored: the job completed",)


def test_job_deleted_outside_kbt_is_not_recreated_until_a_retry() -> None:
    previous = {"jobName": "btj-x-0", "transformJobStatus": "Failed", "shards": {"completedIndexes": "0-1"}}
    assert plan_jobs(spec(), [], previous).empty
    assert plan_jobs(spec(retryFailedShards=1), [], previous) == Plan(create=NewJob(1, (2, 3)))
    stopped = previous | {"transformJobStatus": "Stopped"}
    assert plan_jobs(spec(retryFailedShards=1), [], stopped).empty
