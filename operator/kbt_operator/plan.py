"""Decide what to do with a BatchTransformJob's Jobs (a pure function of spec, Jobs and status).

* No Job yet: create generation ``spec.retryFailedShards`` running every shard.
* The latest Job failed and ``spec.retryFailedShards`` grew past its generation: create a Job of
  the new generation running every shard that has not completed (failed ones and ones that never
  ran), then delete the superseded Jobs. Same when the Job vanished (deleted outside kbt).
* ``spec.stop`` on a running or pending Job: delete it with foreground propagation (pods get their
  grace period; outputs already written stay); Stopped once it is gone.
* ``spec.suspend`` of an unqueued job is mirrored to ``Job.spec.suspend``; queued Jobs are left
  to Kueue.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from kbt.api.models import BatchTransformJobSpec, BatchTransformJobStatus, TransformJobStatus
from kbt_operator.shards import parse_indexes
from kbt_operator.views import IndexedJob, by_generation


@dataclass(frozen=True)
class NewJob:
    generation: int
    shard_map: tuple[int, ...] | None  # None: every shard


@dataclass(frozen=True)
class SetSuspend:
    job: str
    suspend: bool


@dataclass(frozen=True)
class Plan:
    create: NewJob | None = None
    stop: str | None = None  # Job to delete with foreground propagation
    suspend: SetSuspend | None = None  # new Job.spec.suspend of the latest Job
    delete: tuple[str, ...] = ()  # superseded Jobs
    notes: tuple[str, ...] = ()  # requested changes that do not apply, for warning events

    @property
    def empty(self) -> bool:
        return self == Plan()


def _retry(spec: BatchTransformJobSpec, completed: set[int], delete: tuple[str, ...]) -> Plan:
    remaining = tuple(sorted(set(range(spec.shards)) - completed))
    if not remaining:
        return Plan(delete=delete, notes=("retryFailedShards ignored: every shard has completed",))
    return Plan(create=NewJob(spec.retryFailedShards, remaining), delete=delete)


def plan_jobs(
    spec: BatchTransformJobSpec, jobs: Sequence[IndexedJob], previous: BatchTransformJobStatus
) -> Plan:
    """What to change so the Jobs match `spec` (see the module docstring)."""
    ordered = by_generation(jobs)
    latest = ordered[-1] if ordered else None
    superseded = tuple(job.name for job in ordered[:-1] if not job.deleting)
    if latest is None:
        if spec.stop:
            return Plan()
        if not previous.jobName:
            return Plan(create=NewJob(spec.retryFailedShards, None))
        retry_wanted = spec.retryFailedShards > (previous.retryGeneration or 0)
        ended = previous.transformJobStatus in (TransformJobStatus.COMPLETED, TransformJobStatus.STOPPED)
        if retry_wanted and not ended:
            completed = parse_indexes(previous.shards.completedIndexes if previous.shards else None)
            return _retry(spec, completed, ())
        return Plan()
    retry_wanted = spec.retryFailedShards > latest.generation
    if latest.condition("Failed"):
        if retry_wanted and not spec.stop:
            return _retry(spec, latest.completed_shards(spec.shards), (*superseded, latest.name))
        return Plan(delete=superseded)
    notes: tuple[str, ...] = ()
    if latest.condition("Complete"):
        if retry_wanted:
            notes = ("retryFailedShards ignored: the job completed",)
        return Plan(delete=superseded, notes=notes)
    if retry_wanted:
        notes += ("retryFailedShards ignored: only a Failed job can retry its shards",)
    if spec.stop:
        return Plan(stop=None if latest.deleting else latest.name, delete=superseded, notes=notes)
    if spec.queueName:
        if spec.suspend:
            notes += ("suspend ignored: Kueue suspends and resumes queued jobs",)
        return Plan(delete=superseded, notes=notes)
    change = SetSuspend(latest.name, spec.suspend) if latest.suspended != spec.suspend else None
    return Plan(suspend=change, delete=superseded, notes=notes)
