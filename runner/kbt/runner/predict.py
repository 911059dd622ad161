"""Run the model on one decoded mini-batch: timeout, retries, and isolating bad records.

Each attempt runs ``predict`` on a watchdog thread with ``retrySettings.timeoutSeconds``; an
exception or timeout is retried ``maxRetries`` times with a short backoff. Then:
``RecordsRejected`` fails the named records and predicts the rest; ``BatchRejected`` (and a
generic error that survived the retries) bisects the batch until the bad records stand alone;
a timeout fails the whole batch. With ``whole_files`` (a scoring script handed whole files,
kbt.api.azureml) bisection cuts only between input files, and a file that fails alone fails all
its records: a script never sees part of a file. ``InputSchemaError`` (every record would fail)
and ``DeviceOutOfMemoryError`` propagate and end the shard.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from kbt.api.models import RetrySettings
from kbt.flavors.base import BatchRejected, ModelInput, Predictor
from kbt.flavors.errors import DeviceOutOfMemoryError, InputSchemaError, RecordsRejected
from kbt.runner.encode import Rows, normalize

BACKOFF_SECONDS = 0.05
BACKOFF_CAP_SECONDS = 2.0


class BatchTimeout(Exception):
    """predict() did not return within the mini-batch timeout."""


@dataclass
class Outcome:
    """Predictions for the records at ``positions`` (of the model input) and the failures."""

    positions: list[int] = field(default_factory=list)
    rows: list[Rows] = field(default_factory=list)
    failed: dict[int, str] = field(default_factory=dict)

    def merged(self) -> Rows:
        frames = [r.frame for r in self.rows if r.frame is not None]
        if frames and len(frames) == len(self.rows):
            return Rows(frame=pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0])
        values: list[Any] = []
        for rows in self.rows:
            values.extend(rows.values if rows.values is not None else rows.json_values())
        return Rows(values=values)


def subset(batch: ModelInput, positions: list[int]) -> ModelInput:
    """The records at ``positions`` with their decoded forms."""
    return ModelInput(
        records=[batch.records[p] for p in positions],
        frame=batch.frame.iloc[positions].reset_index(drop=True) if batch.frame is not None else None,
        tensor=batch.tensor[np.asarray(positions, dtype=np.intp)] if batch.tensor is not None else None,
        texts=[batch.texts[p] for p in positions] if batch.texts is not None else None,
        content_type=batch.content_type,
    )


def _call_with_timeout(predictor: Predictor, batch: ModelInput, timeout: float) -> Rows:
    answer: Future[Rows] = Future()

    def target() -> None:
        try:
            answer.set_result(normalize(predictor.predict(batch), len(batch)))
        except BaseException as exc:
            answer.set_exception(exc)

    worker = threading.Thread(target=target, name="kbt-predict", daemon=True)
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        raise BatchTimeout(f"predict did not return within {timeout:g} s")
    return answer.result()


class ModelRunner:
    """Predicts mini-batches with the job's retry settings."""

    def __init__(self, predictor: Predictor, retry: RetrySettings, whole_files: bool = False) -> None:
        self.predictor = predictor
        self.retry = retry
        self.whole_files = whole_files

    def _attempts(self, batch: ModelInput, retries: int) -> Rows:
        for attempt in range(retries + 1):
            try:
                return _call_with_timeout(self.predictor, batch, float(self.retry.timeoutSeconds))
            except (BatchRejected, InputSchemaError, DeviceOutOfMemoryError):
                raise
            except Exception:
                if attempt == retries:
                    raise
                time.sleep(min(BACKOFF_CAP_SECONDS, BACKOFF_SECONDS * 2**attempt))
        raise AssertionError("unreachable")

    def run(self, batch: ModelInput, retries: int | None = None) -> Outcome:
        """Predict ``batch``; every record ends up predicted or failed with a reason."""
        outcome = Outcome()
        self._run(
            batch, list(range(len(batch))), self.retry.maxRetries if retries is None else retries, outcome
        )
        return outcome

    def _run(self, batch: ModelInput, positions: list[int], retries: int, outcome: Outcome) -> None:
        if not positions:
            return
        piece = batch if len(positions) == len(batch) and positions[0] == 0 else subset(batch, positions)
        try:
            rows = self._attempts(piece, retries)
        except RecordsRejected as exc:
            bad = {positions[p] for p in exc.problems if 0 <= p < len(positions)}
            for p, reason in exc.problems.items():
                if 0 <= p < len(positions):
                    outcome.failed[positions[p]] = reason
            if not bad:
                self._fail_all(positions, str(exc), outcome)
                return
            self._run(batch, [p for p in positions if p not in bad], retries, outcome)
            return
        except (InputSchemaError, DeviceOutOfMemoryError):
            raise
        except BatchTimeout as exc:
            self._fail_all(positions, f"{exc} (after {retries + 1} attempts)", outcome)
            return
        except Exception as exc:
            reason = str(exc) if isinstance(exc, BatchRejected) else f"{type(exc).__name__}: {exc}"
            half = self._half(batch, positions)
            if half == 0:
                self._fail_all(positions, " ".join(reason.split()), outcome)
                return
            self._run(batch, positions[:half], 0, outcome)
            self._run(batch, positions[half:], 0, outcome)
            return
        outcome.positions.extend(positions)
        outcome.rows.append(rows)

    def _half(self, batch: ModelInput, positions: list[int]) -> int:
        """Where to bisect failing ``positions``: their middle, or with whole files the file
        boundary nearest to it; 0 when they cannot be split (one record, or one whole file)."""
        if not self.whole_files:
            return len(positions) // 2
        sources = [batch.records[p].source for p in positions]
        cuts = [i for i in range(1, len(sources)) if sources[i] != sources[i - 1]]
        return min(cuts, key=lambda cut: abs(cut - len(positions) / 2), default=0)

    @staticmethod
    def _fail_all(positions: list[int], reason: str, outcome: Outcome) -> None:
        for position in positions:
            outcome.failed[position] = reason
