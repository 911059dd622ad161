"""What flows through the shard pipeline: reader-thread messages and a mini-batch's result.

The reader thread puts, per work item, ``ItemStarted``, a ``BatchRead`` per mini-batch and
``ItemEnded`` on the pipeline's queue (``ReadFailed`` if reading raised, then ``None``: no more
messages); the model workers answer each batch with a ``BatchResult``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from kbt.runner.batching import Failure
from kbt.runner.encode import Encoded
from kbt.runner.plan import WorkItem
from kbt.runner.reader import Batch, ItemReader


@dataclass(frozen=True, slots=True)
class ItemStarted:
    """A work item begins: open its writer."""

    item: WorkItem


@dataclass(frozen=True, slots=True)
class BatchRead:
    """A mini-batch of the current item; ``reader`` knows its CSV header and the bytes read so far."""

    batch: Batch
    reader: ItemReader


@dataclass(frozen=True, slots=True)
class ItemEnded:
    """Every batch of the item has been read: commit it once they are written."""

    item: WorkItem


@dataclass(frozen=True, slots=True)
class ReadFailed:
    """Reading raised; the consumer re-raises ``error``."""

    error: BaseException


ItemEvent = ItemStarted | BatchRead | ItemEnded
Message = ItemEvent | ReadFailed


@dataclass
class BatchResult:
    """A batch after the model: its encoded output, how many records it predicted, its failures."""

    encoded: Encoded
    predicted: int
    failures: list[Failure] = field(default_factory=list)
