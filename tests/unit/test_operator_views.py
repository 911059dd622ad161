"""The typed views the operator parses API objects into (kbt_operator.views)."""

from __future__ import annotations

from typing import Any

from kbt.api.models import TransformJobStatus
from kbt_operator.owned import ObjectRef
from kbt_operator.views import BtjView, IndexedJob, ShardPod, by_generation

SPEC: dict[str, Any] = {
    "modelName": "m",
    "shardCount": 4,
    "transformInput": {"dataSource": {"s3DataSource": {"s3Uri": "s3://data/in/"}}},
    "transformOutput": {"s3OutputPath": "s3://data/out/"},
    "transformResources": {"instanceType": "ml.m5.large"},
}


def retry_job(generation: int = 1, **status: Any) -> dict[str, Any]:
    return {
        "metadata": {
            "name": f"btj-x-{generation}",
            "labels": {"kbt.dev/retry-generation": str(generation)},
            "annotations": {"kbt.dev/shard-map": "1,3"},
        },
        "spec": {"suspend": False},
        "status": status,
    }


def test_retry_job_maps_completion_indexes_to_shards() -> None:
    job = IndexedJob.parse(
        retry_job(
            completedIndexes="0",
            failedIndexes="1",
            failed=2,
            conditions=[
                {"type": "FailureTarget", "status": "False", "reason": "x"},
                {
                    "type": "Failed",
                    "status": "True",
                    "message": "m",
                    "lastTransitionTime": "2024-05-01T10:00:00Z",
                },
            ],
        )
    )
    assert (job.name, job.generation, job.shard_map) == ("btj-x-1", 1, (1, 3))
    assert job.completed_shards(4) == {0, 1, 2} and job.failed_shards(4) == {3}
    assert job.condition("FailureTarget") is None
    failed = job.condition("Failed")
    assert (
        failed is not None and failed.reason is None and failed.last_transition_time == "2024-05-01T10:00:00Z"
    )
    assert job.started and not job.suspended and not job.deleting


def test_first_job_runs_every_shard_and_jobs_sort_by_generation() -> None:
    first = IndexedJob.parse(
        {"metadata": {"name": "btj-x-0", "deletionTimestamp": "t"}, "spec": {"suspend": True}}
    )
    assert first.shards_of(3) == [0, 1, 2] and first.generation == 0
    assert first.deleting and first.suspended and not first.started
    assert [
        j.name for j in by_generation([IndexedJob.parse(retry_job(2)), first, IndexedJob.parse(retry_job())])
    ] == [
        "btj-x-0",
        "btj-x-1",
        "btj-x-2",
    ]


def test_shard_pod_keeps_the_kbt_containers_failure() -> None:
    terminated = {"exitCode": 3, "message": "bad header", "finishedAt": "2024-05-01T10:00:00Z"}
    pod = ShardPod.parse(
        {
            "metadata": {"name": "p", "labels": {"batch.kubernetes.io/job-completion-index": "2"}},
            "status": {
                "phase": "Failed",
                "containerStatuses": [
                    {"name": "sidecar", "state": {"terminated": {"exitCode": 1}}},
                    {"name": "kbt", "state": {"terminated": terminated}},
                ],
            },
        }
    )
    assert pod.completion_index == 2 and pod.phase == "Failed"
    assert pod.failed_container is not None and (
        pod.failed_container.exit_code,
        pod.failed_container.message,
    ) == (3, "bad header")
    unindexed = ShardPod.parse(
        {"metadata": {"annotations": {"batch.kubernetes.io/job-completion-index": "x"}}}
    )
    assert unindexed.completion_index is None and unindexed.failed_container is None


def test_resource_view_parses_spec_and_status_once() -> None:
    body = {
        "apiVersion": "kbt.dev/v1alpha1",
        "kind": "BatchTransformJob",
        "metadata": {"name": "x", "namespace": "ns", "uid": "u1", "generation": 3},
        "spec": SPEC,
        "status": {"transformJobStatus": "Failed", "jobName": "btj-x-0"},
    }
    view = BtjView.parse(body)
    assert view.job is not None and view.job.spec.shards == 4 and view.generation == 3
    assert view.status.transformJobStatus == TransformJobStatus.FAILED and view.status.jobName == "btj-x-0"
    invalid = BtjView.parse({**body, "spec": {**SPEC, "shardCount": "many"}})
    assert invalid.job is None and invalid.invalid.startswith("BatchTransformJob x: ")
    assert "spec.shardCount: Input should be a valid integer" in invalid.invalid
    assert ObjectRef.parse(body) == ObjectRef("x", "ns", "u1", "kbt.dev/v1alpha1", "BatchTransformJob")
