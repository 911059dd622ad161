"""Which Kubernetes events a status change deserves (a pure function of old and new status).

One event per state transition, one per newly failed shard (with the runner's reason), and one
per change of the Ready condition (setup problems such as ModelNotFound).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kbt.api.models import BatchTransformJobStatus, TransformJobStatus
from kbt_operator.owned import ObjectRef
from kbt_operator.shards import parse_indexes
from kbt_operator.status import Derived

State = TransformJobStatus
COMPONENT = "kbt-operator"
MESSAGE_LIMIT = 1024


@dataclass(frozen=True)
class Event:
    type: str  # Normal | Warning
    reason: str
    message: str


def _state_event(new: BatchTransformJobStatus) -> Event:
    shards = new.shards
    done = f"{shards.succeeded}/{shards.total} shards" if shards else ""
    match new.transformJobStatus:
        case State.IN_PROGRESS:
            return Event("Normal", "Started", f"Job {new.jobName} is running shards")
        case State.COMPLETED:
            records = new.progress.recordsProcessed if new.progress else 0
            return Event(
                "Normal", "Completed", f"{done} completed, {records} records; output in {new.outputLocation}"
            )
        case State.FAILED:
            return Event("Warning", "Failed", new.failureReason or "failed")
        case State.STOPPING:
            return Event("Normal", "Stopping", f"stop requested; {done} completed so far")
        case State.STOPPED:
            return Event("Normal", "Stopped", f"{done} completed before the stop; their outputs are kept")
        case _:
            return Event("Normal", "Pending", new.progressSummary or "waiting to start")


def _ready(status: BatchTransformJobStatus) -> tuple[str, str, str] | None:
    for cond in status.conditions:
        if cond.type == "Ready" and cond.status != "Unknown":
            return cond.status, cond.reason, cond.message
    return None


def transition_events(previous: BatchTransformJobStatus, derived: Derived) -> list[Event]:
    """Events for going from `previous` (status as last written) to `derived`."""
    new = derived.status
    events: list[Event] = []
    ready_before, ready_now = _ready(previous), _ready(new)
    if ready_now is not None and ready_now != ready_before:
        status, reason, message = ready_now
        events.append(Event("Normal" if status == "True" else "Warning", reason, message or reason))
    failed_before = parse_indexes(previous.shards.failedIndexes if previous.shards else "")
    failed_now = parse_indexes(new.shards.failedIndexes if new.shards else "")
    retried = (previous.retryGeneration or 0) != (new.retryGeneration or 0)
    for shard in sorted(failed_now - failed_before):
        why = derived.shard_failures.get(shard, "no termination message")
        events.append(Event("Warning", "ShardFailed", f"shard {shard} failed: {why}"))
    if retried:
        events.append(
            Event("Normal", "Retrying", f"Job {new.jobName} re-runs the shards that did not complete")
        )
    elif previous.transformJobStatus != new.transformJobStatus:
        events.append(_state_event(new))
    return events


def event_manifest(involved: ObjectRef, event: Event, timestamp: str, suffix: str) -> dict[str, Any]:
    """A core/v1 Event about `involved` (a BatchTransformJob); `suffix` makes its name unique."""
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": f"{involved.name}.{suffix}", "namespace": involved.namespace},
        "involvedObject": {
            "apiVersion": involved.api_version,
            "kind": involved.kind,
            "name": involved.name,
            "namespace": involved.namespace,
            "uid": involved.uid,
        },
        "type": event.type,
        "reason": event.reason,
        "message": event.message[:MESSAGE_LIMIT],
        "source": {"component": COMPONENT},
        "reportingComponent": COMPONENT,
        "firstTimestamp": timestamp,
        "lastTimestamp": timestamp,
        "count": 1,
    }
