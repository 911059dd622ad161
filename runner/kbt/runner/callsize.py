"""How many records kbt hands a built-in model in one call: ``CallSizer`` and ``call_sizer``.

A scoring script (``flavor: custom``) gets exactly its mini-batches, and for the tensor flavors
(pytorch, tensorflow, transformers) and any model on an accelerator the call is the device batch
the flavor sizes (and halves on out-of-memory), so their calls stay the mini-batches. Predictors
that declare ``rows_independent`` (scikit-learn, XGBoost, and the MLflow models of those two that
kbt loads itself) on CPU score each row on its own and no user code sees the call, so kbt joins
consecutive mini-batches into calls it sizes itself, per shard:

- A call starts at one mini-batch and doubles after each clean call while the model's time per
  record (the best seen at each size) still drops by at least ``GAIN``: the per-call overhead is
  not yet amortised. A size whose doubling gained less in two calls in a row is kept.
- Timings taken while other work shares the CPUs can stop the doubling too early, so after every
  ``PROBE_EVERY`` clean calls at the kept size one call is made twice as big: if its time per
  record beats the kept size's best since the last probe by ``GAIN``, doubling resumes from
  there; otherwise the calls go back to the kept size.
- A call in which the model rejected records halves the size (never below one mini-batch): the
  bad records of a rejected call are searched for (kbt.runner.predict), which costs a call per
  halving, so where records are often bad the size settles where about half the calls are clean.
- A call that ran out of memory caps the size at half that call's records for the rest of the shard.
- A call holds at most ``RECORD_CAP`` records and ``maxPayloadInMB`` of payload (``PAYLOAD_CAP``
  when that is 0, unlimited).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from kbt.api.resolved import ResolvedJob
from kbt.flavors.base import Predictor
from kbt.runner.batching import MIB, BatchLimit

# A bigger call saved nothing measurable: the heart example's 10M rows on 2 workers took the same
# 18.1 s with calls of at most 40k records as of 100k, and a worker's peak RSS fell by ~70 MiB
# (an 80k-row call of its pipeline peaks at ~75 MiB of buffers).
RECORD_CAP = 40_000
PAYLOAD_CAP = 64 * MIB
GAIN = 0.05
PROBE_EVERY = 32


@dataclass
class CallSizer:
    """The records and payload of the next model call; told how each call went (thread-safe)."""

    floor: int  # one mini-batch's records
    payload_bytes: int
    cap: int = RECORD_CAP
    level: int = 0  # the call holds floor * 2**level records (within cap)
    top: int | None = None  # the level past which doubling stopped paying, once known
    strikes: int = 0  # clean calls in a row at this level that were not GAIN cheaper than the one below
    costs: dict[int, float] = field(default_factory=dict)  # best seconds per record at each level
    kept_calls: int = 0  # clean calls at the kept level ``top`` since the last probe
    kept_cost: float = float("inf")  # their best seconds per record
    probing: bool = False  # the next clean call is the probe one level above ``top``
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def records(self) -> int:
        return max(self.floor, min(self.floor << self.level, self.cap))

    def limit(self) -> BatchLimit:
        return BatchLimit(records=self.records, payload_bytes=self.payload_bytes)

    def clean_call(self, records: int, seconds: float) -> None:
        """A call of ``records`` records returned every prediction in ``seconds``."""
        with self._lock:
            if records * 2 <= self.records:
                return  # a short call (end of input, a flush): it says little about this size
            level = self.level
            if self.probing:
                self._probed(seconds / records)
                return
            cost = min(self.costs.get(level, float("inf")), seconds / records)
            self.costs[level] = cost
            if level == self.top:
                self._kept(seconds / records)
                return
            below = self.costs.get(level - 1)
            if self.top is None and below is not None and cost > below * (1 - GAIN):
                self.strikes += 1  # once may be noise (other work on the machine): measure again
                if self.strikes < 2:
                    return
                self.top = level  # doubling no longer pays: the per-call overhead is amortised
            self.strikes = 0
            if (self.top is None or level < self.top) and self.floor << level < self.cap:
                self.level = level + 1

    def _kept(self, cost: float) -> None:
        """A clean call at the kept level: every ``PROBE_EVERY`` of them, probe the next level."""
        self.kept_calls += 1
        self.kept_cost = min(self.kept_cost, cost)
        if self.kept_calls >= PROBE_EVERY and self.floor << self.level < self.cap:
            self.probing, self.level = True, self.level + 1

    def _probed(self, cost: float) -> None:
        """The probe's time per record: resume doubling from it if it paid, else go back."""
        assert self.top is not None
        if cost < self.kept_cost * (1 - GAIN):
            self.costs = {self.top: self.kept_cost, self.level: cost}
            self.top = None
            if self.floor << self.level < self.cap:
                self.level += 1
        else:
            self.level = self.top
        self._end_probe()

    def _end_probe(self) -> None:
        self.probing, self.kept_calls, self.kept_cost, self.strikes = False, 0, float("inf"), 0

    def rejected_call(self) -> None:
        """The model rejected records of the last call: the next calls are half as big."""
        with self._lock:
            if self.probing and self.top is not None:
                self.level = self.top
            self.level = max(0, self.level - 1)
            self._end_probe()

    def out_of_memory(self, records: int) -> None:
        """A call of ``records`` records ran out of memory: calls stay below half of that."""
        with self._lock:
            if self.probing and self.top is not None:
                self.level = self.top
            self._end_probe()
            self.cap = max(self.floor, min(self.cap, records // 2))
            while self.level and self.floor << self.level > self.cap:
                self.level -= 1


def call_sizer(job: ResolvedJob, predictor: Predictor, unit: BatchLimit) -> CallSizer | None:
    """The sizer for ``job``'s model calls, or None where each call stays one mini-batch ``unit``
    (scoring scripts, tensor flavors, any model on an accelerator)."""
    if not predictor.rows_independent or predictor.device != "cpu" or unit.files:
        return None
    return CallSizer(floor=unit.records, payload_bytes=unit.payload_bytes or PAYLOAD_CAP)
