"""Retry a mini-batch in halves when the accelerator runs out of memory.

``predict_with_backoff`` calls ``predict`` on the whole batch; on a CUDA/TF out-of-memory error
it splits the batch in two halves and tries each, recursively down to single records, then
raises ``DeviceOutOfMemory``. The outputs of the halves are joined back in order.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TypeVar

import numpy as np
import pandas as pd

from kbt.flavors.base import ModelInput
from kbt.flavors.errors import DeviceOutOfMemory

log = logging.getLogger(__name__)

OOM_ERROR_NAMES = frozenset({"OutOfMemoryError", "ResourceExhaustedError"})
OOM_MESSAGES = ("out of memory", "cuda_error_out_of_memory", "resource exhausted")

Rows = TypeVar("Rows", np.ndarray, pd.DataFrame, list)  # type: ignore[type-arg]


def is_out_of_memory(exc: BaseException) -> bool:
    """True for torch.cuda.OutOfMemoryError, TensorFlow's ResourceExhaustedError and the
    RuntimeErrors CUDA kernels raise with an out-of-memory message."""
    if type(exc).__name__ in OOM_ERROR_NAMES:
        return True
    return isinstance(exc, RuntimeError) and any(text in str(exc).lower() for text in OOM_MESSAGES)


def slice_batch(batch: ModelInput, start: int, stop: int) -> ModelInput:
    """Records start..stop of a mini-batch, with every decoded form sliced alike."""
    return ModelInput(
        records=batch.records[start:stop],
        frame=None if batch.frame is None else batch.frame.iloc[start:stop],
        tensor=None if batch.tensor is None else batch.tensor[start:stop],
        texts=None if batch.texts is None else batch.texts[start:stop],
        content_type=batch.content_type,
    )


def join_rows(first: Rows, second: Rows) -> Rows:
    if isinstance(first, np.ndarray):
        return np.concatenate([first, second])
    if isinstance(first, pd.DataFrame):
        return pd.concat([first, second], ignore_index=True)
    return first + second


def predict_with_backoff(
    predict: Callable[[ModelInput], Rows],
    batch: ModelInput,
    release_memory: Callable[[], None] = lambda: None,
) -> Rows:
    """``predict(batch)``, halving the batch on out-of-memory errors until single records fail."""
    try:
        return predict(batch)
    except Exception as exc:
        if not is_out_of_memory(exc):
            raise
        release_memory()
        if len(batch) <= 1:
            where = f"{batch.records[0].source} record {batch.records[0].index}" if batch.records else "?"
            raise DeviceOutOfMemory(f"out of device memory on a single record ({where}): {exc}") from exc
        half = len(batch) // 2
        log.warning("out of device memory on %d records: retrying in halves of %d", len(batch), half)
    first = predict_with_backoff(predict, slice_batch(batch, 0, half), release_memory)
    second = predict_with_backoff(predict, slice_batch(batch, half, len(batch)), release_memory)
    return join_rows(first, second)
