"""Typed views of what the API server hands the operator, parsed once at the boundary.

kopf and the API client give plain dicts; the handlers and the status syncer turn them into these
frozen views right away, so status derivation, planning and events never dig through nested dicts
(the owner's identity, `owned.ObjectRef`, is parsed the same way):

* `BtjView`: a BatchTransformJob: its spec parsed with the API models (or why it is invalid) and
  its status as last written;
* `IndexedJob`: an Indexed Job the operator created (generation, shard map, index sets,
  conditions);
* `ShardPod`: a shard pod's completion index and how its `kbt` container ended.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from kbt.api.models import BatchTransformJob, BatchTransformJobStatus
from kbt.api.shardmap import SHARD_MAP_ANNOTATION, decode_shard_map
from kbt_operator.job_builder import CONTAINER_NAME, job_generation
from kbt_operator.labels import COMPLETION_INDEX_LABEL
from kbt_operator.resolve import InvalidResourceError, parse_job
from kbt_operator.shards import parse_indexes, to_shards


def _dict(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


@dataclass(frozen=True)
class BtjView:
    """A BatchTransformJob: `job` is its parsed spec, or None with the reason in `invalid`."""

    generation: int | None
    status: BatchTransformJobStatus  # as this operator last wrote it
    job: BatchTransformJob | None
    invalid: str = ""

    @classmethod
    def parse(cls, body: Mapping[str, Any]) -> BtjView:
        generation = _dict(body.get("metadata")).get("generation")
        status = BatchTransformJobStatus.model_validate(_dict(body.get("status")))
        try:
            return cls(generation, status, parse_job(body))
        except InvalidResourceError as exc:
            return cls(generation, status, None, str(exc))


@dataclass(frozen=True)
class JobCondition:
    type: str
    reason: str | None  # None when the condition has no reason
    message: str
    last_transition_time: str


@dataclass(frozen=True)
class IndexedJob:
    """An Indexed Job of a BatchTransformJob; index sets are completion indexes."""

    name: str
    generation: int
    shard_map: tuple[int, ...] | None  # None: completion index = shard index
    suspended: bool
    deleting: bool
    active: int
    succeeded_pods: int
    failed_pods: int
    completed_indexes: frozenset[int]
    failed_indexes: frozenset[int]
    true_conditions: tuple[JobCondition, ...]
    start_time: str | None
    completion_time: str | None

    @classmethod
    def parse(cls, raw: Mapping[str, Any]) -> IndexedJob:
        meta, status = _dict(raw.get("metadata")), _dict(raw.get("status"))
        shard_map = _dict(meta.get("annotations")).get(SHARD_MAP_ANNOTATION)
        conditions = (
            JobCondition(
                type=str(c.get("type")),
                reason=None if "reason" not in c else str(c["reason"]),
                message=str(c.get("message", "")),
                last_transition_time=str(c.get("lastTransitionTime") or ""),
            )
            for c in status.get("conditions") or []
            if c.get("status") == "True"
        )
        return cls(
            name=str(meta["name"]),
            generation=job_generation(raw),
            shard_map=tuple(decode_shard_map(shard_map)) if shard_map else None,
            suspended=bool(_dict(raw.get("spec")).get("suspend")),
            deleting=bool(meta.get("deletionTimestamp")),
            active=int(status.get("active") or 0),
            succeeded_pods=int(status.get("succeeded") or 0),
            failed_pods=int(status.get("failed") or 0),
            completed_indexes=frozenset(parse_indexes(status.get("completedIndexes"))),
            failed_indexes=frozenset(parse_indexes(status.get("failedIndexes"))),
            true_conditions=tuple(conditions),
            start_time=status.get("startTime") or None,
            completion_time=status.get("completionTime") or None,
        )

    def condition(self, kind: str) -> JobCondition | None:
        """The first condition of type `kind` whose status is True."""
        return next((c for c in self.true_conditions if c.type == kind), None)

    @property
    def started(self) -> bool:
        return bool(self.start_time or self.active or self.succeeded_pods or self.failed_pods)

    def shards_of(self, total: int) -> list[int]:
        """The real shard of each completion index (identity for a first-run Job)."""
        return list(self.shard_map) if self.shard_map is not None else list(range(total))

    def completed_shards(self, total: int) -> set[int]:
        """Shards finished when this Job is the latest: those it did not run plus those it completed."""
        shard_map = self.shards_of(total)
        return (set(range(total)) - set(shard_map)) | to_shards(self.completed_indexes, shard_map)

    def failed_shards(self, total: int) -> set[int]:
        return to_shards(self.failed_indexes, self.shards_of(total))


def by_generation(jobs: Iterable[IndexedJob]) -> list[IndexedJob]:
    """Oldest retry generation first; the last one is the Job that counts."""
    return sorted(jobs, key=lambda job: job.generation)


@dataclass(frozen=True)
class Termination:
    """How a shard pod's `kbt` container ended with a non-zero exit code."""

    exit_code: int
    message: str
    reason: str
    finished_at: str


@dataclass(frozen=True)
class ShardPod:
    name: str
    completion_index: int | None  # None when the pod carries no usable index
    phase: str
    message: str
    reason: str
    failed_container: Termination | None

    @classmethod
    def parse(cls, raw: Mapping[str, Any]) -> ShardPod:
        meta, status = _dict(raw.get("metadata")), _dict(raw.get("status"))
        # Kubernetes sets the index as an annotation and a label of the same name.
        raw_index = _dict(meta.get("annotations")).get(COMPLETION_INDEX_LABEL) or _dict(
            meta.get("labels")
        ).get(COMPLETION_INDEX_LABEL)
        try:
            index: int | None = int(str(raw_index))
        except ValueError:
            index = None
        return cls(
            name=str(meta.get("name", "")),
            completion_index=index,
            phase=str(status.get("phase") or ""),
            message=str(status.get("message") or ""),
            reason=str(status.get("reason") or ""),
            failed_container=_failed_container(status.get("containerStatuses") or []),
        )


def _failed_container(containers: Sequence[Mapping[str, Any]]) -> Termination | None:
    for container in containers:
        terminated = _dict(container.get("state")).get("terminated")
        if container.get("name") != CONTAINER_NAME or not terminated or terminated.get("exitCode", 0) == 0:
            continue
        return Termination(
            exit_code=int(terminated.get("exitCode", 1)),
            message=str(terminated.get("message") or ""),
            reason=str(terminated.get("reason") or ""),
            finished_at=str(terminated.get("finishedAt") or ""),
        )
    return None
