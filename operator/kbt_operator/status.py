"""Derive a BatchTransformJob's status from what the cluster shows (a pure function).

Inputs: the BatchTransformJob (spec and previous status), its latest Indexed Job, that Job's
failed pods (for termination messages), the progress ConfigMap's data, and the outcome of the
last setup attempt (model/secret/catalog checks). Output: the full status the operator writes,
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

from kbt.api.models import (
    BatchTransformJob,
    BatchTransformJobStatus,
    Condition,
    ShardCounts,
    TransformJobStatus,
)
from kbt.runner.exitcodes import ExitCode
from kbt_operator.job_builder import CONTAINER_NAME, job_generation
from kbt_operator.progress import aggregate, parse_reports
from kbt_operator.resolve import InvalidResourceError, model_ref, parse_job
from kbt_operator.shards import (
    format_indexes,
    job_completed_shards,
    job_failed_shards,
    job_shard_map,
    parse_indexes,
)

State = TransformJobStatus
TERMINAL_STATES = frozenset({State.COMPLETED, State.FAILED, State.STOPPED})
COMPLETION_INDEX_ANNOTATION = "batch.kubernetes.io/job-completion-index"


class Reason:
    """Stable condition reasons (also used as event reasons)."""

    JOB_CREATED = "JobCreated"
    INVALID_SPEC = "InvalidSpec"
    UNKNOWN_INSTANCE_TYPE = "UnknownInstanceType"
    MODEL_NOT_FOUND = "ModelNotFound"
    INVALID_MODEL = "InvalidModel"
    SECRET_NOT_FOUND = "SecretNotFound"
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


PERMANENT_SETUP_REASONS = frozenset({Reason.INVALID_SPEC, Reason.UNKNOWN_INSTANCE_TYPE})
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
    btj: Mapping[str, Any]
    job: Mapping[str, Any] | None
    now: str
    pods: Sequence[Mapping[str, Any]] = ()
    progress: Mapping[str, str] = field(default_factory=dict)
    setup: Setup | None = None


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


def _true_condition(job: Mapping[str, Any], kind: str) -> dict[str, Any] | None:
    for cond in (job.get("status") or {}).get("conditions") or []:
        if cond.get("type") == kind and cond.get("status") == "True":
            return dict(cond)
    return None


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else ""


def _exit_label(code: int) -> str:
    try:
        return f"exit code {code}, {ExitCode(code).name}"
    except ValueError:
        return f"exit code {code}" + (", killed (SIGKILL/OOM)" if code == 137 else "")


def _pod_failure(pod: Mapping[str, Any], shard_map: Sequence[int]) -> PodFailure | None:
    meta = pod.get("metadata") or {}
    raw_index = (meta.get("annotations") or {}).get(COMPLETION_INDEX_ANNOTATION) or (meta.get("labels") or {}).get(
        COMPLETION_INDEX_ANNOTATION
    )
    try:
        local = int(str(raw_index))
    except ValueError:
        return None
    if not 0 <= local < len(shard_map):
        return None
    status = pod.get("status") or {}
    for container in status.get("containerStatuses") or []:
        terminated = (container.get("state") or {}).get("terminated")
        if container.get("name") != CONTAINER_NAME or not terminated or terminated.get("exitCode", 0) == 0:
            continue
        code = int(terminated.get("exitCode", 1))
        line = _last_line(terminated.get("message") or "") or str(terminated.get("reason") or "failed")
        return PodFailure(shard_map[local], str(meta.get("name", "")), f"{line} ({_exit_label(code)})", str(terminated.get("finishedAt") or ""))
    if status.get("phase") == "Failed":
        line = _last_line(status.get("message") or "") or str(status.get("reason") or "pod failed")
        return PodFailure(shard_map[local], str(meta.get("name", "")), line, "")
    return None


def pod_failures(pods: Sequence[Mapping[str, Any]], shard_map: Sequence[int]) -> list[PodFailure]:
    """Failed attempts, oldest first."""
    failures = [f for f in (_pod_failure(pod, shard_map) for pod in pods) if f is not None]
    return sorted(failures, key=lambda f: (f.finished_at, f.pod))


def _previous_setup(previous: Mapping[str, Any]) -> Setup | None:
    for cond in previous.get("conditions") or []:
        if cond.get("type") == "Ready" and cond.get("status") in ("True", "False"):
            return Setup(cond["status"] == "True", str(cond.get("reason") or ""), str(cond.get("message") or ""))
    return None


def _previous_reason(previous: Mapping[str, Any], kind: str) -> str | None:
    for cond in previous.get("conditions") or []:
        if cond.get("type") == kind and cond.get("reason"):
            return str(cond["reason"])
    return None


def _state(job: BatchTransformJob, latest: Mapping[str, Any] | None, previous: Mapping[str, Any]) -> tuple[State, str]:
    """The transformJobStatus and the Running condition's reason."""
    spec = job.spec
    prev_state = previous.get("transformJobStatus")
    if latest is None:
        if prev_state in TERMINAL_STATES:
            return State(prev_state), _previous_reason(previous, "Running") or str(prev_state)
        if spec.stop:
            return State.STOPPED, Reason.STOP_REQUESTED
        if previous.get("jobName"):
            return State.FAILED, Reason.JOB_DELETED
        return State.PENDING, Reason.RECONCILING
    if _true_condition(latest, "Complete"):
        return State.COMPLETED, Reason.ALL_SHARDS_SUCCEEDED
    if _true_condition(latest, "Failed"):
        stopped = spec.stop and prev_state in (State.STOPPING, State.STOPPED)
        return (State.STOPPED, Reason.STOP_REQUESTED) if stopped else (State.FAILED, Reason.SHARDS_FAILED)
    if spec.stop:
        return State.STOPPING, Reason.STOP_REQUESTED
    if (latest.get("spec") or {}).get("suspend"):
        return State.PENDING, Reason.QUEUED if spec.queueName else Reason.SUSPENDED
    job_status = latest.get("status") or {}
    started = job_status.get("startTime") or any(job_status.get(k) for k in ("active", "succeeded", "failed"))
    return (State.IN_PROGRESS, Reason.SHARDS_RUNNING) if started else (State.PENDING, Reason.RECONCILING)


def _failure_reason(
    *,
    running_reason: str,
    setup: Setup | None,
    latest: Mapping[str, Any] | None,
    previous: Mapping[str, Any],
    failed: set[int],
    shard_failures: Mapping[int, str],
) -> str:
    if setup is not None and setup.permanent:
        return setup.message
    if running_reason == Reason.JOB_DELETED:
        return (
            f"Job {previous.get('jobName')} was deleted outside kbt; increase spec.retryFailedShards "
            "to run the unfinished shards"
        )
    if latest is None:
        return str(previous.get("failureReason") or "")
    if shard_failures:
        first = min(shard_failures)
        text = f"shard {first}: {shard_failures[first]}"
        others = sorted(failed - {first})
        return text + (f"; {len(others)} more failed shard(s): {format_indexes(others)}" if others else "")
    if failed:
        return f"shards {format_indexes(failed)} failed"
    cond = _true_condition(latest, "Failed") or {}
    return f"{cond.get('reason', 'Failed')}: {cond.get('message', '')}".rstrip(": ")


def _conditions(
    *,
    state: State,
    running_reason: str,
    setup: Setup | None,
    failure: str,
    previous: Mapping[str, Any],
    generation: int | None,
    now: str,
    summary: str,
) -> list[Condition]:
    ready = setup or Setup(False, Reason.RECONCILING, "")
    wanted: dict[str, tuple[bool | None, str, str]] = {
        "Ready": (ready.ready, ready.reason, ready.message),
        "Running": (state == State.IN_PROGRESS, running_reason, summary if state == State.IN_PROGRESS else ""),
        "Complete": (state == State.COMPLETED, Reason.ALL_SHARDS_SUCCEEDED if state == State.COMPLETED else state, ""),
        "Failed": (state == State.FAILED, running_reason if state == State.FAILED else state, failure),
        "Stopped": (state == State.STOPPED, Reason.STOP_REQUESTED if state in (State.STOPPED, State.STOPPING) else state, ""),
    }
    if setup is None:
        wanted["Ready"] = (None, Reason.RECONCILING, "")
    old = {c.get("type"): c for c in previous.get("conditions") or []}
    result = []
    for kind in CONDITION_TYPES:
        value, reason, message = wanted[kind]
        text = "Unknown" if value is None else str(value)
        before = old.get(kind) or {}
        since = before.get("lastTransitionTime") if before.get("status") == text else None
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


def _end_time(state: State, latest: Mapping[str, Any] | None, previous: Mapping[str, Any], now: str) -> str | None:
    if state not in TERMINAL_STATES:
        return None
    if previous.get("transformJobStatus") == state and previous.get("endTime"):
        return str(previous["endTime"])
    if latest is not None and state == State.COMPLETED:
        return str((latest.get("status") or {}).get("completionTime") or now)
    if latest is not None and state == State.FAILED:
        return str((_true_condition(latest, "Failed") or {}).get("lastTransitionTime") or now)
    return now


def summary_text(shards: ShardCounts, percent: int) -> str:
    """`kubectl get btj` progress column: `7/8 shards, 91%` (plus `, 1 failed`)."""
    text = f"{shards.succeeded}/{shards.total} shards, {percent}%"
    return text + (f", {shards.failed} failed" if shards.failed else "")


def derive_status(obs: Observation) -> Derived:
    """The status the BatchTransformJob should have now (see the module docstring)."""
    btj = obs.btj
    metadata = btj.get("metadata") or {}
    previous: Mapping[str, Any] = btj.get("status") or {}
    generation = metadata.get("generation")
    try:
        job = parse_job(btj)
    except InvalidResourceError as exc:
        return _invalid(obs, previous, generation, str(exc))
    setup = obs.setup or _previous_setup(previous)
    total = job.spec.shards
    latest = obs.job
    if setup is not None and setup.permanent:
        state, running_reason = State.FAILED, setup.reason
    else:
        state, running_reason = _state(job, latest, previous)
    if latest is not None:
        completed, failed = job_completed_shards(latest, total), job_failed_shards(latest, total)
        active = int((latest.get("status") or {}).get("active") or 0)
        failures = pod_failures(obs.pods, job_shard_map(latest, total))
    else:
        before = ShardCounts.model_validate(previous.get("shards") or {})
        completed, failed, active = parse_indexes(before.completedIndexes), parse_indexes(before.failedIndexes), 0
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
    job_start = (latest.get("status") or {}).get("startTime") if latest is not None else None
    start = previous.get("startTime") or job_start or (obs.now if state == State.IN_PROGRESS else None)
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
        jobName=(latest.get("metadata") or {}).get("name") if latest is not None else previous.get("jobName"),
        startTime=start,
        endTime=_end_time(state, latest, previous, obs.now),
        outputLocation=job.spec.transformOutput.s3OutputPath,
        failureReason=failure or None,
        retryGeneration=job_generation(latest) if latest is not None else previous.get("retryGeneration"),
    )
    return Derived(status, shard_failures, attempts, problems)


def _invalid(obs: Observation, previous: Mapping[str, Any], generation: int | None, message: str) -> Derived:
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
        jobName=previous.get("jobName"),
        startTime=previous.get("startTime"),
        endTime=_end_time(State.FAILED, None, previous, obs.now),
        failureReason=message,
    )
    return Derived(status, {}, [], [])
