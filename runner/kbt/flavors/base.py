"""The contract between the runner pipeline and model flavors.

The pipeline hands a flavor's ``Predictor`` one ``ModelInput`` per mini-batch and gets back
one prediction per record. Flavors are plug-ins: ``kbt.flavors.load_predictor`` imports only
the module of the flavor asked for, so heavy frameworks load only when used.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial
from itertools import repeat
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol, TypeAlias

from kbt.api.models import MiniBatchMode, ModelSpec

if TYPE_CHECKING:  # the contract names pandas and numpy types; importing it needs neither
    import numpy as np
    import pandas as pd


class Record(NamedTuple):
    """One input record and where it came from (for errors, joins and ordering).

    A named tuple, not a dataclass: readers make millions of them, and ``new_records`` builds
    them without running Python code per record.
    """

    source: str  # input object key relative to the input prefix
    index: int  # type: ignore[assignment]  # record number within the source object, 0-based (shadows tuple.index)
    data: bytes  # raw bytes as split from the source (a CSV row, a JSON line, a whole image)


def new_records(source: str, first_index: int, datas: list[bytes]) -> list[Record]:
    """Records ``first_index, first_index + 1, ...`` of ``source``, built in C (no __init__ calls)."""
    make = partial(tuple.__new__, Record)
    return list(map(make, zip(repeat(source), range(first_index, first_index + len(datas)), datas)))


@dataclass
class ModelInput:
    """A mini-batch in the form(s) the pipeline could decode for this content type.

    ``frame`` is set for tabular content (CSV, JSON Lines, JSON, Parquet), ``tensor`` for images
    decoded per the model's ``imagePreprocessing``, ``texts`` for text/plain; ``records`` always.
    """

    records: list[Record]
    frame: pd.DataFrame | None = None
    tensor: np.ndarray | None = None
    texts: list[str] | None = None
    content_type: str = "text/csv"

    def __len__(self) -> int:
        return len(self.records)


# What a predictor may return: one entry (row) per input record, in order.
ModelOutput: TypeAlias = "pd.DataFrame | pd.Series | np.ndarray | list[Any] | dict[str, Any]"


class Predictor(Protocol):
    """A loaded model, ready for mini-batches. Loaded once per shard process."""

    device: str  # "cpu", "cuda", "cuda:0" ... reported by the runner
    # True where each output row depends on its input row alone and the call's size changes no
    # output bits (tabular models on CPU): kbt may join mini-batches into calls it sizes itself.
    rows_independent: bool

    def predict(self, batch: ModelInput) -> ModelOutput: ...


class ModelLoadError(Exception):
    """The model cannot be loaded or is incompatible with the input (non-retriable)."""


class BatchRejected(Exception):
    """The model rejected a whole mini-batch for a reason tied to its records (not retriable)."""


@dataclass
class LoadContext:
    """Everything a flavor needs to load: the local copy of the model and the job's settings."""

    spec: ModelSpec
    local_path: Path  # model files fetched locally (file or directory); "" for registry URIs
    scratch_dir: Path
    output_dir: Path | None = None  # custom scoring scripts may write their own files here
    environment: dict[str, str] = field(default_factory=dict)
    mini_batch: MiniBatchMode = MiniBatchMode.RECORDS  # scoring scripts: tabular input as files or a frame
    discard_predictions: bool = False  # summaryOnly: what the model returns is not written
