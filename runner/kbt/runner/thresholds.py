"""When bad records fail a job: ``errorThreshold`` (Azure ML) or, unset, SageMaker's rule.

A job has Azure's failure semantics (``azure_errors``) when its manifest sets ``errorThreshold``
or ``failFast``, or the job is Azure-shaped (``kbt.api.azureml``: a scoring script over unsplit
files); without ``errorThreshold`` it gets Azure's default, -1. Any other job has SageMaker's:

* ``errorThreshold`` unset (a SageMaker manifest): the first bad record fails the job, naming
  the object and record, and that object's output is not written (SageMaker writes
  ``<object>.out`` only for an object that succeeded whole).
* ``-1``: bad records never fail the job (Azure: "all failures during batch inference will be
  ignored"); they go to ``_errors/``.
* a count ``N``: the job fails once more than ``N`` records of its whole input failed. A shard
  stops as soon as its own count is over (the job's can only be larger); the finalizer judges
  the sum over all shards.
* a percent ``P%``: judged once, by the finalizer, over the job's whole input (every shard's
  records), never on a prefix of it.

Fail-fast (``failFast``, default on unless ``errorThreshold`` is -1): the first
``FAIL_FAST_RECORDS`` records of a run all failed for the same reason (record numbers and other
digits ignored), so the input does not fit the model and the shard stops with INPUT_ERROR.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from kbt.api.azureml import is_azure_shaped
from kbt.api.resolved import ResolvedJob
from kbt.runner.errors import ErrorThresholdExceeded, InputError

FAIL_FAST_RECORDS = 100
UNLIMITED = -1


def azure_errors(job: ResolvedJob) -> bool:
    """Whether bad records follow Azure's errorThreshold semantics rather than SageMaker's rule."""
    spec = job.spec
    return spec.errorThreshold is not None or spec.failFast is not None or is_azure_shaped(spec, job.model)


@dataclass(frozen=True, slots=True)
class Threshold:
    """The job's ``errorThreshold``: ``None`` (SageMaker rule), -1, a count or a percent."""

    setting: int | str | None

    @classmethod
    def from_job(cls, job: ResolvedJob) -> Threshold:
        """The job's errorThreshold; unset, -1 (Azure's default) for an Azure-style job."""
        if job.spec.errorThreshold is None and azure_errors(job):
            return cls(UNLIMITED)
        return cls(job.spec.errorThreshold)

    @property
    def count(self) -> int | None:
        return self.setting if isinstance(self.setting, int) else None

    @property
    def percent(self) -> float | None:
        return float(self.setting[:-1]) if isinstance(self.setting, str) else None

    def check_shard(self, failed: int, where: str, reason: str) -> None:
        """While a shard runs: fail once its ``failed`` records alone exceed the job's limit."""
        if self.setting is None and failed:
            raise ErrorThresholdExceeded(
                f"{where} failed: {reason}; without errorThreshold a bad record fails the job and "
                "its object gets no output, as in SageMaker (set errorThreshold to tolerate bad records)"
            )
        if self.count is not None and self.count != UNLIMITED and failed > self.count:
            raise ErrorThresholdExceeded(f"{failed} bad records, more than errorThreshold {self.count}")

    def check_job(self, failed: int, records: int) -> None:
        """Once every shard is done: judge ``failed`` of the job's ``records`` in all."""
        if self.setting is None or self.count is not None:
            self.check_shard(failed, f"{failed} of {records} records", "see _errors/")
        if self.percent is not None and records:
            share = 100.0 * failed / records
            if share > self.percent:
                raise ErrorThresholdExceeded(
                    f"{failed} of {records} records bad ({share:.1f}%), "
                    f"more than errorThreshold {self.percent:g}%"
                )


class FailFast:
    """Stops a run whose first ``FAIL_FAST_RECORDS`` records all failed the same way."""

    def __init__(self, job: ResolvedJob) -> None:
        explicit = job.spec.failFast
        self.enabled = explicit if explicit is not None else Threshold.from_job(job).setting != UNLIMITED
        self.reasons: set[str] = set()
        self.first = self.first_reason = ""

    def note(self, where: str, reason: str) -> None:
        """Remember a failure (its reason with digits masked, so record indexes do not count)."""
        if len(self.reasons) < 2:
            self.reasons.add(re.sub(r"\d+", "N", reason))
        if not self.first:
            self.first, self.first_reason = where, reason

    def check(self, seen: int, failed: int, processed: int) -> None:
        """``seen`` records this run, ``failed`` of ``processed`` in all: raise when every one failed
        alike."""
        if self.enabled and seen >= FAIL_FAST_RECORDS and failed == processed and len(self.reasons) == 1:
            raise InputError(
                f"the first {seen} records all failed the same way, so the input does not fit the "
                f"model: {self.first_reason} (first: {self.first}); set failFast: false to go on"
            )
