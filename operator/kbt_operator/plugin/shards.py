"""What the plugin knows about each shard: its pods (every attempt) and its progress report.

A pod's shard is its Indexed Job completion index mapped through the ``KBT_SHARD_MAP`` env var of
its container (retry Jobs run only some shards), read with the runner's own ``shard_index``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from kbt.api import podenv
from kbt.api.progress import ShardProgress
from kbt.api.shardmap import ShardMapError, shard_index
from kbt_operator.labels import COMPLETION_INDEX_LABEL
from kbt_operator.progress import parse_reports

_POD_PHASE_STATE = {"Pending": "Pending", "Running": "Running", "Succeeded": "Completed", "Failed": "Failed"}


@dataclass(frozen=True)
class ShardPod:
    """One attempt of one shard."""

    name: str
    index: int
    phase: str
    node: str
    created: str
    restarts: int
    waiting_reason: str | None  # set while the container has not started (no logs yet)

    @property
    def has_logs(self) -> bool:
        return self.waiting_reason is None


@dataclass
class Shard:
    """A shard's attempts (oldest first) and its latest progress."""

    index: int
    pods: list[ShardPod] = field(default_factory=list)
    progress: ShardProgress | None = None

    @property
    def latest(self) -> ShardPod | None:
        return self.pods[-1] if self.pods else None

    @property
    def retries(self) -> int:
        return max(0, len(self.pods) - 1) + sum(pod.restarts for pod in self.pods)

    @property
    def state(self) -> str:
        """The pod's phase while it lives and is not running; the runner's report otherwise."""
        pod = self.latest
        if pod is not None and pod.phase != "Running":
            if pod.phase == "Pending" and pod.waiting_reason:
                return f"Pending ({pod.waiting_reason})"
            return _POD_PHASE_STATE.get(pod.phase, pod.phase)
        if self.progress is not None:
            return self.progress.state
        return "Running" if pod is not None else "Waiting"


def _shard_index(pod: dict[str, Any]) -> int | None:
    """The shard a pod runs: its completion index, mapped through KBT_SHARD_MAP in retry Jobs."""
    meta = pod.get("metadata", {})
    raw = (meta.get("labels") or {}).get(COMPLETION_INDEX_LABEL) or (meta.get("annotations") or {}).get(
        COMPLETION_INDEX_LABEL
    )
    if raw is None:
        return None
    env = {podenv.COMPLETION_INDEX: str(raw)}
    for container in (pod.get("spec") or {}).get("containers") or []:
        for variable in container.get("env") or []:
            if variable.get("name") == podenv.SHARD_MAP and variable.get("value"):
                env[podenv.SHARD_MAP] = str(variable["value"])
    try:
        return shard_index(env)
    except ShardMapError:
        return None


def _waiting_reason(pod: dict[str, Any]) -> str | None:
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    for status in statuses:
        waiting = (status.get("state") or {}).get("waiting")
        if waiting is not None:
            return str(waiting.get("reason") or "Waiting")
    return None if statuses else "PodScheduling"


def shard_pod(pod: dict[str, Any]) -> ShardPod | None:
    """A pod of the job as a ShardPod; None for a pod whose shard cannot be told."""
    index = _shard_index(pod)
    if index is None:
        return None
    meta, spec, status = pod.get("metadata", {}), pod.get("spec") or {}, pod.get("status") or {}
    return ShardPod(
        name=str(meta["name"]),
        index=index,
        phase=str(status.get("phase") or "Pending"),
        node=str(spec.get("nodeName") or ""),
        created=str(meta.get("creationTimestamp") or ""),
        restarts=sum(int(s.get("restartCount") or 0) for s in status.get("containerStatuses") or []),
        waiting_reason=_waiting_reason(pod),
    )


def parse_progress(data: dict[str, str]) -> dict[int, ShardProgress]:
    """The progress ConfigMap's `shard-<index>` entries; malformed entries are skipped."""
    return parse_reports(data)[0]


def collect_shards(
    pods: list[dict[str, Any]], progress: dict[int, ShardProgress], shard_count: int
) -> dict[int, Shard]:
    """Every shard 0..shard_count-1 (plus any index seen in pods or progress), attempts sorted."""
    shards = {index: Shard(index) for index in range(shard_count)}
    for pod in pods:
        parsed = shard_pod(pod)
        if parsed is not None:
            shards.setdefault(parsed.index, Shard(parsed.index)).pods.append(parsed)
    for index, report in progress.items():
        shards.setdefault(index, Shard(index)).progress = report
    for shard in shards.values():
        shard.pods.sort(key=lambda pod: (pod.created, pod.name))
    return dict(sorted(shards.items()))
