"""Retry a mini-batch in halves when the accelerator runs out of memory.

``predict_with_backoff`` calls ``predict`` on the whole batch; on a CUDA/TF out-of-memory error
it splits the batch in two halves and tries each, recursively down to single records, then
raises ``DeviceOutOfMemoryError``. The outputs of the halves are joined back in order.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from kbt.flavors.base import ModelInput, ModelOutput
from kbt.flavors.errors import DeviceOutOfMemoryError
from kbt.frames import concat, is_frame, is_series
from kbt.log import get_logger

log = get_logger(__name__)

OOM_ERROR_NAMES = frozenset({"OutOfMemoryError", "ResourceExhaustedError"})
OOM_MESSAGES = ("out of memory", "cuda_error_out_of_memory", "resource exhausted")


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


def join_rows(first: ModelOutput, second: ModelOutput) -> ModelOutput:
    """The predictions of two consecutive halves of a batch as one."""
    if isinstance(first, np.ndarray):
        return np.concatenate([first, np.asarray(second)])
    if is_frame(first) or is_series(first):
        return concat([first, second])  # type: ignore[type-var]  # second: the same kind as first
    if isinstance(first, list) and isinstance(second, list):
        return first + second
    raise TypeError(f"cannot join predictions of types {type(first).__name__} and {type(second).__name__}")


def predict_with_backoff(
    predict: Callable[[ModelInput], ModelOutput],
    batch: ModelInput,
    release_memory: Callable[[], None] = lambda: None,
) -> ModelOutput:
    """``predict(batch)``, halving the batch on out-of-memory errors until single records fail."""
    try:
        return predict(batch)
    except Exception as exc:
        if not is_out_of_memory(exc):
            raise
        release_memory()
        if len(batch) <= 1:
            where = f"{batch.records[0].source} record {batch.records[0].index}" if batch.records else "?"
            raise DeviceOutOfMemoryError(f"out of device memory on a single record ({where}): {exc}") from exc
        half = len(batch) // 2
        log.warning("out of device memory: retrying in halves", records=len(batch), half=half)
    first = predict_with_backoff(predict, slice_batch(batch, 0, half), release_memory)
    second = predict_with_backoff(predict, slice_batch(batch, half, len(batch)), release_memory)
    return join_rows(first, second)
