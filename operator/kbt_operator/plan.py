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

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from kbt.api.models import BatchTransformJobSpec, TransformJobStatus
from kbt_operator.job_builder import job_generation, sorted_by_generation
from kbt_operator.shards import job_completed_shards, parse_indexes


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


def _name(job: Mapping[str, Any]) -> str:
    return str(job["metadata"]["name"])


def _deleting(job: Mapping[str, Any]) -> bool:
    return bool((job.get("metadata") or {}).get("deletionTimestamp"))


def _has(job: Mapping[str, Any], kind: str) -> bool:
    return any(
        c.get("type") == kind and c.get("status") == "True" for c in (job.get("status") or {}).get("conditions") or []
    )


def _retry(spec: BatchTransformJobSpec, completed: set[int], delete: tuple[str, ...]) -> Plan:
    remaining = tuple(sorted(set(range(spec.shards)) - completed))
    if not remaining:
        return Plan(delete=delete, notes=("retryFailedShards ignored: every shard has completed",))
    return Plan(create=NewJob(spec.retryFailedShards, remaining), delete=delete)


def plan_jobs(spec: BatchTransformJobSpec, jobs: Sequence[Mapping[str, Any]], previous: Mapping[str, Any]) -> Plan:
    """What to change so the Jobs match `spec` (see the module docstring)."""
    ordered = sorted_by_generation(jobs)
    latest = ordered[-1] if ordered else None
    superseded = tuple(_name(job) for job in ordered[:-1] if not _deleting(job))
    if latest is None:
        if spec.stop:
            return Plan()
        if not previous.get("jobName"):
            return Plan(create=NewJob(spec.retryFailedShards, None))
        retry_wanted = spec.retryFailedShards > (previous.get("retryGeneration") or 0)
        ended = previous.get("transformJobStatus") in (TransformJobStatus.COMPLETED, TransformJobStatus.STOPPED)
        if retry_wanted and not ended:
            completed = parse_indexes((previous.get("shards") or {}).get("completedIndexes"))
            return _retry(spec, completed, ())
        return Plan()
    generation = job_generation(latest)
    retry_wanted = spec.retryFailedShards > generation
    if _has(latest, "Failed"):
        if retry_wanted and not spec.stop:
            return _retry(spec, job_completed_shards(latest, spec.shards), (*superseded, _name(latest)))
        return Plan(delete=superseded)
    notes: tuple[str, ...] = ()
    if _has(latest, "Complete"):
        if retry_wanted:
            notes = ("retryFailedShards ignored: the job completed",)
        return Plan(delete=superseded, notes=notes)
    if retry_wanted:
        notes += ("retryFailedShards ignored: only a Failed job can retry its shards",)
    if spec.stop:
        return Plan(stop=None if _deleting(latest) else _name(latest), delete=superseded, notes=notes)
    suspended = bool((latest.get("spec") or {}).get("suspend"))
    if spec.queueName:
        if spec.suspend:
            notes += ("suspend ignored: Kueue suspends and resumes queued jobs",)
        return Plan(delete=superseded, notes=notes)
    change = SetSuspend(_name(latest), spec.suspend) if suspended != spec.suspend else None
    return Plan(suspend=change, delete=superseded, notes=notes)
