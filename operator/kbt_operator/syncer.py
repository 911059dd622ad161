"""The single writer of BatchTransformJob status: coalesces changes and writes derived status.

Watch events of Jobs and progress ConfigMaps only mark a job dirty; a background task derives
its status (``status.derive_status``) from the operator's in-memory indexes and writes it when it
changed. Progress-only changes are written at most every ``interval`` seconds per job; state
changes at once. Events for the transition are posted after each write. The last written status
is remembered, so a slow watch echo of our own write never replays a transition.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from kbt.api.models import BatchTransformJobStatus
from kbt_operator.events import Event, transition_events
from kbt_operator.kube import ApiError, KubeApi
from kbt_operator.metrics import ERRORS, STATUS_UPDATES, JobTracker
from kbt_operator.owned import ObjectRef
from kbt_operator.status import Derived, Observation, Setup, derive_status
from kbt_operator.views import BtjView, IndexedJob, ShardPod, by_generation

Key = tuple[str, str]  # (namespace, BatchTransformJob name)
STATUS_FIELDS = tuple(BatchTransformJobStatus.model_fields)
JOB_NAME_POD_LABEL = "batch.kubernetes.io/job-name"
RETRY_AFTER_ERROR_SECONDS = 5.0
logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Snapshot:
    """What the operator's indexes hold for one BatchTransformJob (its body as kopf gave it)."""

    btj: Mapping[str, Any]
    jobs: list[IndexedJob] = field(default_factory=list)
    progress: Mapping[str, str] = field(default_factory=dict)


SnapshotFn = Callable[[Key], Snapshot | None]
EventFn = Callable[[ObjectRef, Event], Awaitable[None]]


def utc_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def own_fields(status: Mapping[str, Any]) -> dict[str, Any]:
    """The status keys this operator writes (kopf keeps its own `status.kopf`)."""
    return {key: value for key, value in status.items() if key in STATUS_FIELDS}


def status_patch(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, Any]:
    """Merge patch from `before` to `after`; keys that disappear are set to None (deleted)."""
    patch = {key: value for key, value in after.items() if before.get(key) != value}
    patch.update({key: None for key in before if key not in after})
    return patch


class StatusSyncer:
    def __init__(
        self, api: KubeApi, snapshot: SnapshotFn, post_event: EventFn, interval: float = 2.0
    ) -> None:
        self._api = api
        self._snapshot = snapshot
        self._post_event = post_event
        self._interval = interval
        self._setup: dict[Key, Setup] = {}
        self._written: dict[Key, dict[str, Any]] = {}
        self._last_write: dict[Key, float] = {}
        self._dirty: set[Key] = set()
        self._scheduled: set[Key] = set()
        self._locks: dict[Key, asyncio.Lock] = {}
        self._pods: dict[Key, tuple[tuple[Any, ...], list[ShardPod]]] = {}
        self._seen_attempts: dict[Key, set[str]] = {}
        self._seen_problems: dict[Key, set[str]] = {}
        self._wake = asyncio.Event()
        self.tracker = JobTracker()

    @property
    def pending(self) -> int:
        return len(self._dirty)

    def mark(self, key: Key) -> None:
        """Note that `key` may need a status update (cheap; call on every relevant watch event)."""
        self._dirty.add(key)
        self._wake.set()

    def set_setup(self, key: Key, setup: Setup | None) -> None:
        """What the last reconcile of `key` found (None: nothing yet)."""
        if setup is None:
            self._setup.pop(key, None)
        else:
            self._setup[key] = setup

    def setup_of(self, key: Key) -> Setup | None:
        return self._setup.get(key)

    def forget(self, key: Key) -> None:
        """The BatchTransformJob is gone: drop everything remembered about it."""
        self._setup.pop(key, None)
        self._written.pop(key, None)
        self._last_write.pop(key, None)
        self._pods.pop(key, None)
        self._seen_attempts.pop(key, None)
        self._seen_problems.pop(key, None)
        self._dirty.discard(key)
        self.tracker.remove(key)

    def last_written(self, key: Key) -> Mapping[str, Any] | None:
        return self._written.get(key)

    async def run(self) -> None:
        """Process dirty jobs until cancelled."""
        while True:
            await self._wake.wait()
            self._wake.clear()
            keys, self._dirty = self._dirty, set()
            await asyncio.gather(*(self.sync(key) for key in keys))

    async def flush(self, key: Key) -> None:
        """Write the status of `key` now, ignoring the progress interval."""
        await self.sync(key, force=True)

    async def sync(self, key: Key, force: bool = False) -> None:
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            try:
                await self._sync(key, force)
            except ApiError as exc:
                ERRORS.labels(reason="ApiError").inc()
                logger.warning("status of %s/%s not written: %s", key[0], key[1], exc.message)
                self._later(key, RETRY_AFTER_ERROR_SECONDS)
            except Exception:  # a bug must not stop status updates of every other job
                ERRORS.labels(reason="StatusError").inc()
                logger.exception("status of %s/%s not derived", key[0], key[1])
                self._later(key, RETRY_AFTER_ERROR_SECONDS)

    def _later(self, key: Key, delay: float) -> None:
        if key in self._scheduled:
            return
        self._scheduled.add(key)

        def fire() -> None:
            self._scheduled.discard(key)
            self.mark(key)

        asyncio.get_running_loop().call_later(delay, fire)

    async def _failed_pods(self, key: Key, job: IndexedJob | None) -> list[ShardPod]:
        """Pods of `job` when some failed (for termination messages); cached per failure count."""
        if job is None or not job.failed_pods:
            return []
        fingerprint = (job.name, job.failed_pods, job.failed_indexes, job.true_conditions)
        cached = self._pods.get(key)
        if cached is not None and cached[0] == fingerprint:
            return cached[1]
        pods = [
            ShardPod.parse(pod)
            for pod in await self._api.list("Pod", key[0], f"{JOB_NAME_POD_LABEL}={job.name}")
        ]
        self._pods[key] = (fingerprint, pods)
        return pods

    async def _sync(self, key: Key, force: bool) -> None:
        snapshot = self._snapshot(key)
        if snapshot is None:
            self.forget(key)
            return
        previous = self._written.get(key)
        if previous is None:
            previous = own_fields(snapshot.btj.get("status") or {})
        setup = self._setup.get(key)
        if setup is not None and setup.ready and not snapshot.jobs and not previous.get("jobName"):
            return  # its first Job is being created: the Job's watch event marks it again
        btj, ref = BtjView.parse({**snapshot.btj, "status": previous}), ObjectRef.parse(snapshot.btj)
        latest = by_generation(snapshot.jobs)[-1] if snapshot.jobs else None
        observation = Observation(
            btj=btj,
            job=latest,
            now=utc_now(),
            pods=await self._failed_pods(key, latest),
            progress=snapshot.progress,
            setup=self._setup.get(key),
        )
        derived = derive_status(observation)
        await self._report_attempts(key, ref, derived)
        new = derived.status.model_dump(mode="json", exclude_none=True)
        if new == previous:  # e.g. a finished job seen on resume: counted, nothing to write
            self.tracker.update(key, derived.status.transformJobStatus, derived.status.shards)
            return
        same_state = new.get("transformJobStatus") == previous.get("transformJobStatus")
        wait = self._last_write.get(key, 0.0) + self._interval - time.monotonic()
        if same_state and not force and wait > 0:
            self._later(key, wait)
            return
        try:
            await self._api.patch(
                "BatchTransformJob", key[0], key[1], {"status": status_patch(previous, new)}, "status"
            )
        except ApiError as exc:
            if exc.status == 404:
                self.forget(key)
                return
            raise
        STATUS_UPDATES.inc()
        self._written[key] = new
        self._last_write[key] = time.monotonic()
        self.tracker.update(key, derived.status.transformJobStatus, derived.status.shards)
        for event in transition_events(btj.status, derived):
            await self._post_event(ref, event)

    async def _report_attempts(self, key: Key, btj: ObjectRef, derived: Derived) -> None:
        """One event per failed attempt of a shard that is retried; one log line per bad report."""
        seen = self._seen_attempts.setdefault(key, set())
        for attempt in derived.attempt_failures:
            if attempt.pod not in seen:
                seen.add(attempt.pod)
                message = f"shard {attempt.shard} attempt failed (pod {attempt.pod}): {attempt.reason}"
                await self._post_event(btj, Event("Warning", "ShardAttemptFailed", message))
        problems = self._seen_problems.setdefault(key, set())
        for problem in derived.progress_problems:
            if problem not in problems:
                problems.add(problem)
                logger.warning("%s/%s: ignoring malformed %s", key[0], key[1], problem)
