"""Run the model on decoded mini-batches: timeout, retries, and isolating bad records.

A call may hold several mini-batches ("units", see kbt.runner.callsize). Each attempt runs
``predict`` on a watchdog thread with ``retrySettings.timeoutSeconds`` per unit. A call of several
units is tried once: ``RecordsRejected`` fails the named records and predicts the rest; a timeout
runs each unit alone; ``BatchRejected`` isolates the bad records (below); any other error bisects
the call between units. One unit is treated as a mini-batch always was: an exception or timeout
is retried ``maxRetries`` times with a short backoff, then ``RecordsRejected`` fails the named
records and predicts the rest; ``BatchRejected`` (and a generic error that survived the retries)
bisects the batch until the bad records stand alone; a timeout fails the whole batch.

Where kbt sizes the calls (a ``sizer``), a rejected piece is searched instead of bisected both
ways: its left half is called; if clean, the rejection lies in the right half, which is searched
at once; if rejected, the search goes on in it and the right half waits, with everything right
of the search, to be called as one piece once the first bad record is found. A bad record always
fails from its own call, with its own reason, as with bisection, in fewer calls.

With ``whole_files`` (a scoring script handed whole files, kbt.api.azureml) bisection cuts only
between input files, and a file that fails alone fails all its records: a script never sees part
of a file. ``InputSchemaError`` (every record would fail) and ``DeviceOutOfMemoryError``
propagate and end the shard.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

import numpy as np

from kbt.api.models import RetrySettings
from kbt.flavors.backoff import is_out_of_memory
from kbt.flavors.base import BatchRejected, ModelInput, Predictor, take
from kbt.flavors.errors import DeviceOutOfMemoryError, InputSchemaError, RecordsRejected
from kbt.frames import concat
from kbt.runner.callsize import CallSizer
from kbt.runner.encode import Rows, normalize

BACKOFF_SECONDS = 0.05
BACKOFF_CAP_SECONDS = 2.0


class BatchTimeout(Exception):
    """predict() did not return within the mini-batch timeout."""


class Probe(Enum):
    """How a call of a piece of a rejected batch went (ModelRunner._probe)."""

    CLEAN = "every record predicted"
    REJECTED = "rejected whole (BatchRejected), 2+ records: the search goes on in it"
    SETTLED = "handled otherwise: its records are predicted or failed"


@dataclass
class Outcome:
    """Predictions for the records at ``positions`` (of the model input) and the failures."""

    positions: list[int] = field(default_factory=list)
    rows: list[Rows] = field(default_factory=list)
    failed: dict[int, str] = field(default_factory=dict)

    def merged(self) -> Rows:
        frames = [r.frame for r in self.rows if r.frame is not None]
        if frames and len(frames) == len(self.rows):
            if len(frames) == 1:
                return Rows(frame=frames[0])
            return Rows(frame=concat(frames))
        values: list[Any] = []
        for rows in self.rows:
            values.extend(rows.values if rows.values is not None else rows.json_values())
        return Rows(values=values)


def subset(batch: ModelInput, positions: list[int]) -> ModelInput:
    """The records at ``positions`` with their decoded forms."""
    return ModelInput(
        records=take(batch.records, positions),
        frame=batch.frame.iloc[positions].reset_index(drop=True) if batch.frame is not None else None,
        tensor=batch.tensor[np.asarray(positions, dtype=np.intp)] if batch.tensor is not None else None,
        texts=[batch.texts[p] for p in positions] if batch.texts is not None else None,
        content_type=batch.content_type,
    )


def _is_memory(exc: BaseException) -> bool:
    return isinstance(exc, MemoryError) or is_out_of_memory(exc)


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
    """Predicts calls of one or more mini-batches with the job's retry settings; tells ``sizer``
    (kbt.runner.callsize) how each call went."""

    def __init__(
        self,
        predictor: Predictor,
        retry: RetrySettings,
        whole_files: bool = False,
        sizer: CallSizer | None = None,
    ) -> None:
        self.predictor = predictor
        self.retry = retry
        self.whole_files = whole_files
        self.sizer = sizer

    def _attempts(self, batch: ModelInput, retries: int, units: int = 1) -> Rows:
        for attempt in range(retries + 1):
            try:
                return _call_with_timeout(self.predictor, batch, float(self.retry.timeoutSeconds * units))
            except (BatchRejected, InputSchemaError, DeviceOutOfMemoryError):
                raise
            except Exception:
                if attempt == retries:
                    raise
                time.sleep(min(BACKOFF_CAP_SECONDS, BACKOFF_SECONDS * 2**attempt))
        raise AssertionError("unreachable")

    def run(self, batch: ModelInput, units: list[int] | None = None) -> Outcome:
        """Predict ``batch``, the records of consecutive mini-batches of ``units`` records each
        (default: one mini-batch); every record ends up predicted or failed with a reason."""
        outcome = Outcome()
        spans, start = [], 0
        for size in units or [len(batch)]:
            spans.append(list(range(start, start + size)))
            start += size
        started = time.perf_counter()
        failure = self._run_units(batch, spans, outcome)
        if self.sizer is None:
            return outcome
        if failure is None:
            self.sizer.clean_call(len(batch), time.perf_counter() - started)
        elif not (isinstance(failure, BatchTimeout | RecordsRejected) or _is_memory(failure)):
            self.sizer.rejected_call()  # isolating bad records costs fewer calls in smaller calls
        return outcome

    def _run_units(self, batch: ModelInput, spans: list[list[int]], outcome: Outcome) -> Exception | None:
        """Predict the units ``spans`` (positions in ``batch``) in one call; on failure isolate the
        bad records or bisect between units. What that first call raised, None when clean."""
        if len(spans) <= 1:
            return self._run(batch, spans[0], self.retry.maxRetries, outcome) if spans else None
        positions = [p for span in spans for p in span]
        try:
            rows = self._attempts(self._piece(batch, positions), 0, len(spans))
        except RecordsRejected as exc:
            bad = self._reject(exc, positions, outcome)
            rest = [kept for span in spans if (kept := [p for p in span if p not in bad])]
            if bad:
                self._run_units(batch, rest, outcome)
            else:
                self._bisect_units(batch, spans, outcome)
            return exc
        except (InputSchemaError, DeviceOutOfMemoryError):
            raise
        except BatchTimeout as exc:
            for span in spans:
                self._run(batch, span, self.retry.maxRetries, outcome)
            return exc
        except Exception as exc:
            self._note_memory(exc, len(positions))
            if isinstance(exc, BatchRejected) and self.sizer is not None:
                self._isolate(batch, positions, outcome)
            else:
                self._bisect_units(batch, spans, outcome)
            return exc
        outcome.positions.extend(positions)
        outcome.rows.append(rows)
        return None

    def _bisect_units(self, batch: ModelInput, spans: list[list[int]], outcome: Outcome) -> None:
        half = len(spans) // 2
        self._run_units(batch, spans[:half], outcome)
        self._run_units(batch, spans[half:], outcome)

    def _run(
        self, batch: ModelInput, positions: list[int], retries: int, outcome: Outcome
    ) -> Exception | None:
        """One mini-batch (or part of one); what its first call raised (None: clean)."""
        if not positions:
            return None
        try:
            rows = self._attempts(self._piece(batch, positions), retries)
        except (InputSchemaError, DeviceOutOfMemoryError):
            raise
        except Exception as exc:
            self._handle(batch, positions, retries, exc, outcome)
            return exc
        outcome.positions.extend(positions)
        outcome.rows.append(rows)
        return None

    def _handle(
        self, batch: ModelInput, positions: list[int], retries: int, exc: Exception, outcome: Outcome
    ) -> None:
        """Settle ``positions`` after their call raised ``exc`` (retries spent)."""
        if isinstance(exc, RecordsRejected):
            bad = self._reject(exc, positions, outcome)
            if not bad:
                self._fail_all(positions, str(exc), outcome)
                return
            self._run(batch, [p for p in positions if p not in bad], retries, outcome)
            return
        if isinstance(exc, BatchTimeout):
            self._fail_all(positions, f"{exc} (after {retries + 1} attempts)", outcome)
            return
        self._note_memory(exc, len(positions))
        reason = str(exc) if isinstance(exc, BatchRejected) else f"{type(exc).__name__}: {exc}"
        half = self._half(batch, positions)
        if half == 0:
            self._fail_all(positions, " ".join(reason.split()), outcome)
        elif isinstance(exc, BatchRejected) and self.sizer is not None:
            self._isolate(batch, positions, outcome)
        else:
            self._run(batch, positions[:half], 0, outcome)
            self._run(batch, positions[half:], 0, outcome)

    def _isolate(self, batch: ModelInput, window: list[int], outcome: Outcome) -> None:
        """``window`` (2+ records) was rejected whole: search it for its first bad record,
        predicting the clean records on the way, then call all that lies right of it as one
        piece, and search that when it is rejected too (see the module docstring)."""
        rest: list[int] = []  # right of the window, not called yet
        while window or rest:
            if not window:
                window, rest = rest, []
                if self._probe(batch, window, outcome) is not Probe.REJECTED:
                    window = []
            elif len(window) == 1:
                self._run(batch, window, 0, outcome)  # its own call: its own reason
                window = []
            else:
                half = len(window) // 2
                probe = self._probe(batch, window[:half], outcome)
                if probe is Probe.CLEAN:
                    window = window[half:]  # the rejection lies here
                else:
                    rest = window[half:] + rest
                    window = window[:half] if probe is Probe.REJECTED else []

    def _probe(self, batch: ModelInput, piece: list[int], outcome: Outcome) -> Probe:
        """Call ``piece`` once; settle it unless it was rejected whole and can be searched."""
        try:
            rows = self._attempts(self._piece(batch, piece), 0)
        except (InputSchemaError, DeviceOutOfMemoryError):
            raise
        except Exception as exc:
            if isinstance(exc, BatchRejected) and not isinstance(exc, RecordsRejected) and len(piece) > 1:
                return Probe.REJECTED
            self._handle(batch, piece, 0, exc, outcome)
            return Probe.SETTLED
        outcome.positions.extend(piece)
        outcome.rows.append(rows)
        return Probe.CLEAN

    def _note_memory(self, exc: Exception, records: int) -> None:
        if self.sizer is not None and _is_memory(exc):
            self.sizer.out_of_memory(records)

    @staticmethod
    def _piece(batch: ModelInput, positions: list[int]) -> ModelInput:
        return batch if len(positions) == len(batch) and positions[0] == 0 else subset(batch, positions)

    @staticmethod
    def _reject(exc: RecordsRejected, positions: list[int], outcome: Outcome) -> set[int]:
        """Fail the records ``exc`` names (positions of the piece called); their batch positions."""
        bad = set()
        for p, reason in exc.problems.items():
            if 0 <= p < len(positions):
                outcome.failed[positions[p]] = reason
                bad.add(positions[p])
        return bad

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
