"""One model call for several small mini-batches: many small objects become full batches.

Each input object is its own work item (its own output and done-marker), so an image or a short
file yields a mini-batch of one or a few records. The pipeline groups consecutive mini-batches
up to ``miniBatchSize`` records, decodes each, and predicts each run of consecutive batches whose
model inputs stack (same columns and types, same tensor shape) in one call; the outcome is split
back per batch.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from kbt.flavors.base import ModelInput
from kbt.runner.encode import Rows
from kbt.runner.predict import Outcome


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
        records=[record for i in inputs for record in i.records],
        frame=pd.concat(frames, ignore_index=True) if frames else None,
        tensor=np.concatenate(tensors) if tensors else None,
        texts=[text for i in inputs for text in i.texts or []] if first.texts is not None else None,
        content_type=first.content_type,
    )


def _take(rows: Rows, indexes: list[int]) -> Rows:
    if rows.frame is not None:
        return Rows(frame=rows.frame.iloc[indexes].reset_index(drop=True))
    values = rows.values or []
    return Rows(values=[values[i] for i in indexes])


def split_outcome(outcome: Outcome, sizes: list[int]) -> list[Outcome]:
    """The outcome of a concatenated input, per part of ``sizes`` records (positions rebased)."""
    merged = outcome.merged() if outcome.rows else Rows(values=[])
    parts: list[Outcome] = []
    start = 0
    for size in sizes:
        end = start + size
        kept = [i for i, p in enumerate(outcome.positions) if start <= p < end]
        parts.append(
            Outcome(
                positions=[outcome.positions[i] - start for i in kept],
                rows=[_take(merged, kept)] if kept else [],
                failed={p - start: reason for p, reason in outcome.failed.items() if start <= p < end},
            )
        )
        start = end
    return parts
