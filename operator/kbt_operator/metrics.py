"""Prometheus metrics of the operator (served on KBT_METRICS_PORT at /metrics).

* ``kbt_batchtransformjobs{status}``: jobs per transformJobStatus (jobs this operator tracks);
* ``kbt_shards{state}``: shards of those jobs that are active, succeeded or failed;
* ``kbt_reconcile_duration_seconds``: time of one reconcile (create/update/resume handler),
  waiting for its turn included (buckets up to 10 minutes: a burst of jobs queues for minutes);
* ``kbt_reconciles_waiting``: reconciles waiting for their turn (see ``scaling.Turns``);
* ``kbt_status_updates_total``: status writes; ``kbt_jobs_created_total``: Indexed Jobs created;
* ``kbt_operator_errors_total{reason}``: setup problems (ModelNotFound, ...) and API errors.
"""

from __future__ import annotations

from collections import Counter as Tally
from collections.abc import Hashable

from prometheus_client import Counter, Gauge, Histogram

from kbt.api.models import ShardCounts, TransformJobStatus

JOBS = Gauge("kbt_batchtransformjobs", "BatchTransformJobs by transformJobStatus", ["status"])
SHARDS = Gauge("kbt_shards", "Shards of tracked BatchTransformJobs by state", ["state"])
RECONCILE_SECONDS = Histogram(
    "kbt_reconcile_duration_seconds",
    "Duration of one reconcile of a BatchTransformJob",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600),
)
RECONCILES_WAITING = Gauge("kbt_reconciles_waiting", "Reconciles waiting for their turn")
STATUS_UPDATES = Counter("kbt_status_updates_total", "Status writes to BatchTransformJobs")
JOBS_CREATED = Counter("kbt_jobs_created_total", "Indexed Jobs created")
ERRORS = Counter("kbt_operator_errors_total", "Setup problems and API errors", ["reason"])
SHARD_STATES = ("active", "succeeded", "failed")


class JobTracker:
    """Keeps the per-status and per-shard-state gauges equal to the sums over tracked jobs."""

    def __init__(self) -> None:
        self._states: dict[Hashable, str] = {}
        self._shards: dict[Hashable, Tally[str]] = {}
        for status in TransformJobStatus:
            JOBS.labels(status=status.value).set(0)
        for state in SHARD_STATES:
            SHARDS.labels(state=state).set(0)

    def update(self, key: Hashable, status: str | None, shards: ShardCounts | None) -> None:
        self.remove(key)
        if status is not None:
            self._states[key] = status
            JOBS.labels(status=status).inc()
        if shards is not None:
            tally = Tally({"active": shards.active, "succeeded": shards.succeeded, "failed": shards.failed})
            self._shards[key] = tally
            for state, count in tally.items():
                SHARDS.labels(state=state).inc(count)

    def remove(self, key: Hashable) -> None:
        status = self._states.pop(key, None)
        if status is not None:
            JOBS.labels(status=status).dec()
        for state, count in self._shards.pop(key, Tally()).items():
            SHARDS.labels(state=state).dec(count)
