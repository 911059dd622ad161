"""One model call for several mini-batches: ``CallPacker``, stacking, and splitting the outcome.

Each input object is its own work item (its own output and done-marker), so an image or a short
file yields a mini-batch of one or a few records. The pipeline packs consecutive mini-batches into
**units** of up to ``miniBatchSize`` records (``BatchLimit``: what one call always held, and what a
scoring script sees) and consecutive units into **calls** up to the ``CallSizer``'s limit
(kbt.runner.callsize; one unit per call where there is none). It decodes each mini-batch, and
predicts each run of consecutive batches whose model inputs stack (same columns and types, same
tensor shape) in one call, naming its units so a failing call is bisected between them; the
outcome is split back per batch.
"""

from __future__ import annotations

from bisect import bisect_left

import numpy as np

from kbt.flavors.base import ModelInput, Records
from kbt.frames import concat
from kbt.runner.batching import BatchLimit
from kbt.runner.callsize import CallSizer
from kbt.runner.encode import Rows
from kbt.runner.predict import Outcome
from kbt.runner.reader import Batch


class CallPacker:
    """Places consecutive mini-batches into units and units into calls, with running totals."""

    def __init__(self, unit: BatchLimit, sizer: CallSizer | None) -> None:
        self.unit_limit, self.sizer = unit, sizer
        self.unit = 0  # the current unit's number; grows by one per unit
        self._call = (0, 0, 0)  # batches, records, payload of the current call
        self._current = (0, 0, 0, frozenset[int]())  # batches, records, payload, input files of the unit

    def call_limit(self) -> BatchLimit:
        return self.sizer.limit() if self.sizer is not None else self.unit_limit

    def starts_call(self, batch: Batch) -> bool:
        """Whether ``batch`` no longer fits the current call (the caller submits that call first)."""
        batches, records, payload = self._call
        if not batches:
            return False
        if self.sizer is None:
            return self._exceeds_unit(batch)
        return self.sizer.limit().exceeded_by(records + len(batch.records), payload + batch.payload)

    def place(self, batch: Batch) -> int:
        """Add ``batch`` to the current call (after ``starts_call``); the number of its unit."""
        if self._exceeds_unit(batch):
            self.unit += 1
            self._current = (0, 0, 0, frozenset())
        unit_batches, unit_records, unit_payload, files = self._current
        self._current = (
            unit_batches + 1,
            unit_records + len(batch.records),
            unit_payload + batch.payload,
            files | {batch.item.ordinal},
        )
        batches, records, payload = self._call
        self._call = (batches + 1, records + len(batch.records), payload + batch.payload)
        return self.unit

    def flush(self) -> None:
        """The current call was submitted: the next batch starts a new call and unit."""
        if self._call[0]:
            self.unit += 1
        self._call, self._current = (0, 0, 0), (0, 0, 0, frozenset())

    def _exceeds_unit(self, batch: Batch) -> bool:
        batches, records, payload, files = self._current
        return bool(batches) and self.unit_limit.exceeded_by(
            records + len(batch.records), payload + batch.payload, len(files | {batch.item.ordinal})
        )


def _stackable(a: ModelInput, b: ModelInput) -> bool:
    if (a.frame is None, a.tensor is None, a.texts is None, a.content_type) != (
        b.frame is None,
        b.tensor is None,
        b.texts is None,
        b.content_type,
    ):
        return False
    if (
        a.frame is not None
        and b.frame is not None
        and (list(a.frame.columns) != list(b.frame.columns) or not a.frame.dtypes.equals(b.frame.dtypes))
    ):
        return False
    if a.tensor is not None and b.tensor is not None:
        return a.tensor.shape[1:] == b.tensor.shape[1:] and a.tensor.dtype == b.tensor.dtype
    return True


def stack_runs(inputs: list[ModelInput]) -> list[list[int]]:
    """Indexes of ``inputs`` in runs of consecutive inputs that stack into one model input."""
    runs: list[list[int]] = []
    for index, model_input in enumerate(inputs):
        if runs and _stackable(inputs[runs[-1][0]], model_input):
            runs[-1].append(index)
        else:
            runs.append([index])
    return runs


def concat_inputs(inputs: list[ModelInput]) -> ModelInput:
    """Stackable inputs (see ``stack_runs``) as one."""
    first = inputs[0]
    if len(inputs) == 1:
        return first
    frames = [i.frame for i in inputs if i.frame is not None]
    tensors = [i.tensor for i in inputs if i.tensor is not None]
    return ModelInput(
        records=Records.concat(i.records for i in inputs),
        frame=concat(frames) if frames else None,
        tensor=np.concatenate(tensors) if tensors else None,
        texts=[text for i in inputs for text in i.texts or []] if first.texts is not None else None,
        content_type=first.content_type,
    )


def unit_sizes(units: list[int], inputs: list[ModelInput]) -> list[int]:
    """The records of each run of consecutive ``inputs`` in the same unit (``units``: their units)."""
    sizes: list[int] = []
    for index, model_input in enumerate(inputs):
        if index and units[index] == units[index - 1]:
            sizes[-1] += len(model_input)
        else:
            sizes.append(len(model_input))
    return sizes


def _take(rows: Rows, start: int, stop: int) -> Rows:
    if rows.frame is not None:
        return Rows(frame=rows.frame.iloc[start:stop].reset_index(drop=True))
    return Rows(values=(rows.values or [])[start:stop])


def split_outcome(outcome: Outcome, sizes: list[int]) -> list[Outcome]:
    """The outcome of a concatenated input, per part of ``sizes`` records (positions rebased).
    Its positions ascend (ModelRunner predicts pieces in input order), so each part's are a slice."""
    merged = outcome.merged() if outcome.rows else Rows(values=[])
    positions, failed = outcome.positions, sorted(outcome.failed)
    parts: list[Outcome] = []
    start = 0
    for size in sizes:
        end = start + size
        first, stop = bisect_left(positions, start), bisect_left(positions, end)
        bad = failed[bisect_left(failed, start) : bisect_left(failed, end)]
        parts.append(
            Outcome(
                positions=[p - start for p in positions[first:stop]],
                rows=[_take(merged, first, stop)] if stop > first else [],
                failed={p - start: outcome.failed[p] for p in bad},
            )
        )
        start = end
    return parts
