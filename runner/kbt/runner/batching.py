"""What a mini-batch may hold and how a bad record is reported: ``BatchLimit`` and ``Failure``.

Both the reader (packing records into mini-batches) and the pipeline (grouping small batches into
one model call) ask ``BatchLimit.from_job`` for ``miniBatchSize`` within ``maxPayloadInMB``; every
record that fails (framing, decoding, the model, encoding, writing) travels as a ``Failure`` to the
item's error file, the shard's failure counts and the error threshold.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import NamedTuple

from kbt.api.azureml import whole_files
from kbt.api.models import BatchStrategy
from kbt.api.resolved import ResolvedJob

MIB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class BatchLimit:
    """At most ``records`` records and, unless ``payload_bytes`` is 0, that many payload bytes."""

    records: int
    payload_bytes: int
    files: int = 0  # > 0: at most this many input files (work items) per model call, each whole

    @classmethod
    def from_job(cls, job: ResolvedJob) -> BatchLimit:
        """``miniBatchSize`` records (1 with ``SingleRecord``) within ``maxPayloadInMB`` (0: no limit);
        ``miniBatchSize`` whole files when the job's mini-batches are files (kbt.api.azureml)."""
        spec = job.spec
        if whole_files(spec, job.model):
            return cls(records=sys.maxsize, payload_bytes=0, files=spec.miniBatchSize)
        records = 1 if spec.batchStrategy == BatchStrategy.SINGLE_RECORD else spec.miniBatchSize
        return cls(records=records, payload_bytes=spec.maxPayloadInMB * MIB)

    @property
    def payload_mb(self) -> int:
        """The payload limit as configured, in MB (for messages)."""
        return self.payload_bytes // MIB

    def exceeded_by(self, records: int, payload: int, files: int = 1) -> bool:
        """Whether ``records`` records of ``payload`` bytes from ``files`` input files are more
        than one batch may hold."""
        if self.files:
            return files > self.files
        return records > self.records or bool(self.payload_bytes and payload > self.payload_bytes)


class Failure(NamedTuple):
    """A record that failed, where, and why; failures sort in input order (record, then offset)."""

    record: int  # record number within the work item
    offset: int  # byte offset of the record in the stored object, -1 where there is none (Parquet)
    reason: str
