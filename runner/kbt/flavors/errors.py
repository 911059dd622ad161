"""Errors flavors raise beyond base.py's, so the runner can tell failing fast from failing a record.

All subclass a base.py error, so a runner that only knows the contract still classifies them:
``InputSchemaError`` and ``RecordsRejected`` are ``BatchRejected``; ``DeviceOutOfMemoryError`` is a
plain ``RuntimeError`` (transient: the shard may succeed on a retry or another node).
"""

from __future__ import annotations

from kbt.flavors.base import BatchRejected


class InputSchemaError(BatchRejected):
    """The input cannot fit the model for any record (a required column is missing, a tensor has
    the wrong shape). Every mini-batch would fail the same way: the runner should fail fast
    (exit code INPUT_ERROR) instead of counting each record against errorThreshold."""


class RecordsRejected(BatchRejected):
    """Some records of a mini-batch do not fit the model's schema; the others do.

    ``problems`` maps the position of each bad record in the mini-batch (0-based, as in
    ``ModelInput.records``) to a one-line reason naming the source, record, column and the
    expected versus actual value. The runner can count those records as failed and predict the
    rest again without them.
    """

    def __init__(self, problems: dict[int, str]) -> None:
        self.problems = dict(sorted(problems.items()))
        shown = list(self.problems.values())[:5]
        more = len(self.problems) - len(shown)
        message = f"{len(self.problems)} record(s) do not match the model's input schema: " + "; ".join(shown)
        super().__init__(message + (f"; and {more} more" if more else ""))


class DeviceOutOfMemoryError(RuntimeError):
    """The accelerator ran out of memory even for a single record (batch backoff exhausted)."""
