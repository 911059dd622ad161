"""Derive a BatchTransformJob's status from what the cluster shows (a pure function).

Inputs (typed views of `views`, parsed where the API hands the objects over): the
BatchTransformJob (spec and previous status), its latest Indexed Job, that Job's failed pods (for
termination messages), the progress ConfigMap's data, and the outcome of the last setup attempt
(model/secret/catalog checks). Output: the full status the operator writes,
plus per-shard failure reasons for events. The previous status only supplies what the cluster
no longer shows: times, condition transition times, and the shard counts of a deleted Job.

States: Pending (no Job yet, queued, suspended, not started) -> InProgress -> Completed | Failed;
Stopping (stop requested, Job being deleted) -> Stopped. Conditions Ready, Running, Complete,
Failed and Stopped are always present; `lastTransitionTime` changes only when `status` does.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from kbt.api.exitcodes import ExitCode
from kbt.api.models import (
    BatchTransformJob,
    BatchTransformJobStatus,
    Condition,
    ShardCounts,
    TransformJobStatus,
)
from kbt.api.shardmap import shard_for
from kbt_operator.progress import aggregate, parse_reports
from kbt_operator.resolve import model_ref
from kbt_operator.shards import format_indexes, parse_indexes
from kbt_operator.views import BtjView, IndexedJob, ShardPod

State = TransformJobStatus
TERMINAL_STATES = frozenset({State.COMPLETED, State.FAILED, State.STOPPED})


class Reason:
    """Stable condition reasons (also used as event reasons)."""

    JOB_CREATED = "JobCreated"
    INVALID_SPEC = "InvalidSpec"
    UNKNOWN_INSTANCE_TYPE = "UnknownInstanceType"
    MODEL_NOT_FOUND = "ModelNotFound"
    INVALID_MODEL = "InvalidModel"
    SECRET_NOT_FOUND = "SecretNotFound"
    LOCAL_PATH = "LocalPath"
    NAME_CONFLICT = "NameConflict"
    API_ERROR = "ApiError"
    RECONCILING = "Reconciling"
    QUEUED = "Queued"
    SUSPENDED = "Suspended"
    SHARDS_RUNNING = "ShardsRunning"
    ALL_SHARDS_SUCCEEDED = "AllShardsSucceeded"
    SHARDS_FAILED = "ShardsFailed"
    JOB_DELETED = "JobDeleted"
    STOP_REQUESTED = "StopRequested"


PERMANENT_SETUP_REASONS = frozenset({Reason.INVALID_SPEC, Reason.UNKNOWN_INSTANCE_TYPE, Reason.LOCAL_PATH})
CONDITION_TYPES = ("Ready", "Running", "Complete", "Failed", "Stopped")


@dataclass(frozen=True)
class Setup:
    """Outcome of preparing a job's Indexed Job: Ready=True, or why not (permanent or retried)."""

    ready: bool
    reason: str
    message: str

    @property
    def permanent(self) -> bool:
        return not self.ready and self.reason in PERMANENT_SETUP_REASONS


@dataclass(frozen=True)
class Observation:
    btj: BtjView
    job: IndexedJob | None
    now: str
    pods: Sequence[ShardPod] = ()
    progress: Mapping[str, str] = field(default_factory=dict)
    setup: Setup | None = None

    @classmethod
    def parse(
        cls,
        btj: Mapping[str, Any],
        job: Mapping[str, Any] | None,
        now: str,
        *,
        pods: Sequence[Mapping[str, Any]] = (),
        progress: Mapping[str, str] | None = None,
        setup: Setup | None = None,
    ) -> Observation:
        """An observation of objects as the API returns them."""
        return cls(
            btj=BtjView.parse(btj),
            job=None if job is None else IndexedJob.parse(job),
            now=now,
            pods=[ShardPod.parse(pod) for pod in pods],
            progress=progress or {},
            setup=setup,
        )


@dataclass(frozen=True)
class PodFailure:
    shard: int
    pod: str
    reason: str
    finished_at: str


@dataclass(frozen=True)
class Derived:
    status: BatchTransformJobStatus
    shard_failures: dict[int, str]  # shard -> why its last attempt failed (failed shards only)
    attempt_failures: list[PodFailure]  # failed attempts of shards that are not (yet) failed
    progress_problems: list[str]


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else ""


def _exit_label(code: int) -> str:
    try:
        return f"exit code {code}, {ExitCode(code).name}"
    except ValueError:
        return f"exit code {code}" + (", killed (SIGKILL/OOM)" if code == 137 else "")


def _pod_failure(pod: ShardPod, shard_map: Sequence[int]) -> PodFailure | None:
    shard = None if pod.completion_index is None else shard_for(pod.completion_index, shard_map)
    if shard is None:
        return None
    ended = pod.failed_container
    if ended is not None:
        line = _last_line(ended.message) or (ended.reason or "failed")
        return PodFailure(shard, pod.name, f"{line} ({_exit_label(ended.exit_code)})", ended.finished_at)
    if pod.phase == "Failed":
        return PodFailure(shard, pod.name, _last_line(pod.message) or (pod.reason or "pod failed"), "")
    return None


def pod_failures(pods: Sequence[ShardPod], shard_map: Sequence[int]) -> list[PodFailure]:
    """Failed attempts, oldest first."""
    failures = [f for f in (_pod_failure(pod, shard_map) for pod in pods) if f is not None]
    return sorted(failures, key=lambda f: (f.finished_at, f.pod))


def _previous_setup(previous: BatchTransformJobStatus) -> Setup | None:
    for cond in previous.conditions:
        if cond.type == "Ready" and cond.status in ("True", "False"):
            return Setup(cond.status == "True", cond.reason, cond.message)
    return None


def _previous_reason(previous: BatchTransformJobStatus, kind: str) -> str | None:
    return next((cond.reason for cond in previous.conditions if cond.type == kind and cond.reason), None)


def _state(
    job: BatchTransformJob, latest: IndexedJob | None, previous: BatchTransformJobStatus
) -> tuple[State, str]:
    """The transformJobStatus and the Running condition's reason."""
    spec = job.spec
    prev_state = previous.transformJobStatus
    if latest is None:
        if prev_state in TERMINAL_STATES:
            return State(prev_state), _previous_reason(previous, "Running") or str(prev_state)
        if spec.stop:
            return State.STOPPED, Reason.STOP_REQUESTED
        if previous.jobName:
            return State.FAILED, Reason.JOB_DELETED
        return State.PENDING, Reason.RECONCILING
    if latest.condition("Complete"):
        return State.COMPLETED, Reason.ALL_SHARDS_SUCCEEDED
    if latest.condition("Failed"):
        stopped = spec.stop and prev_state in (State.STOPPING, State.STOPPED)
        return (State.STOPPED, Reason.STOP_REQUESTED) if stopped else (State.FAILED, Reason.SHARDS_FAILED)
    if spec.stop:
        return State.STOPPING, Reason.STOP_REQUESTED
    if latest.suspended:
        return State.PENDING, Reason.QUEUED if spec.queueName else Reason.SUSPENDED
    return (
        (State.IN_PROGRESS, Reason.SHARDS_RUNNING) if latest.started else (State.PENDING, Reason.RECONCILING)
    )


def _failure_reason(
    *,
    running_reason: str,
    setup: Setup | None,
    latest: IndexedJob | None,
    previous: BatchTransformJobStatus,
    failed: set[int],
    shard_failures: Mapping[int, str],
) -> str:
    if setup is not None and setup.permanent:
        return setup.message
    if running_reason == Reason.JOB_DELETED:
        return (
            f"Job {previous.jobName} was deleted outside kbt; increase spec.retryFailedShards "
            "to run the unfinished shards"
        )
    if latest is None:
        return previous.failureReason or ""
    if shard_failures:
        first = min(shard_failures)
        text = f"shard {first}: {shard_failures[first]}"
        others = sorted(failed - {first})
        return text + (f"; {len(others)} more failed shard(s): {format_indexes(others)}" if others else "")
    if failed:
        return f"shards {format_indexes(failed)} failed"
    cond = latest.condition("Failed")
    reason = "Failed" if cond is None or cond.reason is None else cond.reason
    return f"{reason}: {'' if cond is None else cond.message}".rstrip(": ")


def _conditions(
    *,
    state: State,
    running_reason: str,
    setup: Setup | None,
    failure: str,
    previous: BatchTransformJobStatus,
    generation: int | None,
    now: str,
    summary: str,
) -> list[Condition]:
    ready = setup or Setup(False, Reason.RECONCILING, "")
    wanted: dict[str, tuple[bool | None, str, str]] = {
        "Ready": (ready.ready, ready.reason, ready.message),
        "Running": (
            state == State.IN_PROGRESS,
            running_reason,
            summary if state == State.IN_PROGRESS else "",
        ),
        "Complete": (
            state == State.COMPLETED,
            Reason.ALL_SHARDS_SUCCEEDED if state == State.COMPLETED else state,
            "",
        ),
        "Failed": (state == State.FAILED, running_reason if state == State.FAILED else state, failure),
        "Stopped": (
            state == State.STOPPED,
            Reason.STOP_REQUESTED if state in (State.STOPPED, State.STOPPING) else state,
            "",
        ),
    }
    if setup is None:
        wanted["Ready"] = (None, Reason.RECONCILING, "")
    old = {c.type: c for c in previous.conditions}
    result = []
    for kind in CONDITION_TYPES:
        value, reason, message = wanted[kind]
        text = "Unknown" if value is None else str(value)
        before = old.get(kind)
        since = before.lastTransitionTime if before is not None and before.status == text else None
        result.append(
            Condition(
                type=kind,
                status=text,
                reason=str(reason),
                message=message,
                lastTransitionTime=since or now,
                observedGeneration=generation,
            )
        )
    return result


def _end_time(
    state: State, latest: IndexedJob | None, previous: BatchTransformJobStatus, now: str
) -> str | None:
    if state not in TERMINAL_STATES:
        return None
    if previous.transformJobStatus == state and previous.endTime:
        return previous.endTime
    if latest is not None and state == State.COMPLETED:
        return latest.completion_time or now
    if latest is not None and state == State.FAILED:
        failed = latest.condition("Failed")
        return (failed.last_transition_time if failed is not None else "") or now
    return now


def summary_text(shards: ShardCounts, percent: int) -> str:
    """`kubectl get btj` progress column: `7/8 shards, 91%` (plus `, 1 failed`)."""
    text = f"{shards.succeeded}/{shards.total} shards, {percent}%"
    return text + (f", {shards.failed} failed" if shards.failed else "")


def derive_status(obs: Observation) -> Derived:
    """The status the BatchTransformJob should have now (see the module docstring)."""
    previous, generation, job = obs.btj.status, obs.btj.generation, obs.btj.job
    if job is None:
        return _invalid(obs, previous, generation, obs.btj.invalid)
    setup = obs.setup or _previous_setup(previous)
    total = job.spec.shards
    latest = obs.job
    if setup is not None and setup.permanent:
        state, running_reason = State.FAILED, setup.reason
    else:
        state, running_reason = _state(job, latest, previous)
    if latest is not None:
        completed, failed, active = latest.completed_shards(total), latest.failed_shards(total), latest.active
        failures = pod_failures(obs.pods, latest.shards_of(total))
    else:
        before = previous.shards or ShardCounts()
        completed, failed, active = (
            parse_indexes(before.completedIndexes),
            parse_indexes(before.failedIndexes),
            0,
        )
        failures = []
    shard_failures = {f.shard: f.reason for f in failures if f.shard in failed}
    attempts = [f for f in failures if f.shard not in failed]
    reports, problems = parse_reports(obs.progress)
    progress = aggregate(reports, total, completed)
    shards = ShardCounts(
        total=total,
        active=active,
        succeeded=len(completed),
        failed=len(failed),
        completedIndexes=format_indexes(completed),
        failedIndexes=format_indexes(failed),
    )
    summary = summary_text(shards, progress.percent)
    failure = (
        _failure_reason(
            running_reason=running_reason,
            setup=setup,
            latest=latest,
            previous=previous,
            failed=failed,
            shard_failures=shard_failures,
        )
        if state == State.FAILED
        else ""
    )
    job_start = latest.start_time if latest is not None else None
    start = previous.startTime or job_start or (obs.now if state == State.IN_PROGRESS else None)
    status = BatchTransformJobStatus(
        transformJobStatus=state,
        observedGeneration=generation,
        conditions=_conditions(
            state=state,
            running_reason=running_reason,
            setup=setup,
            failure=failure,
            previous=previous,
            generation=generation,
            now=obs.now,
            summary=summary,
        ),
        shards=shards,
        progress=progress,
        progressSummary=summary,
        model=model_ref(job),
        jobName=latest.name if latest is not None else previous.jobName,
        startTime=start,
        endTime=_end_time(state, latest, previous, obs.now),
        outputLocation=job.spec.transformOutput.s3OutputPath,
        failureReason=failure or None,
        retryGeneration=latest.generation if latest is not None else previous.retryGeneration,
    )
    return Derived(status, shard_failures, attempts, problems)


def _invalid(
    obs: Observation, previous: BatchTransformJobStatus, generation: int | None, message: str
) -> Derived:
    setup = Setup(False, Reason.INVALID_SPEC, message)
    status = BatchTransformJobStatus(
        transformJobStatus=State.FAILED,
        observedGeneration=generation,
        conditions=_conditions(
            state=State.FAILED,
            running_reason=Reason.INVALID_SPEC,
            setup=setup,
            failure=message,
            previous=previous,
            generation=generation,
            now=obs.now,
            summary="",
        ),
        jobName=previous.jobName,
        startTime=previous.startTime,
        endTime=_end_time(State.FAILED, None, previous, obs.now),
        failureReason=message,
    )
    return Derived(status, {}, [], [])
