"""The contract between the runner pipeline and model flavors.

The pipeline hands a flavor's ``Predictor`` one ``ModelInput`` per mini-batch and gets back
one prediction per record. Flavors are plug-ins: ``kbt.flavors.load_predictor`` imports only
the module of the flavor asked for, so heavy frameworks load only when used.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import partial
from itertools import repeat
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol, TypeAlias, overload

from kbt.api.models import MiniBatchMode, ModelSpec

if TYPE_CHECKING:  # the contract names pandas and numpy types; importing it needs neither
    import numpy as np
    import pandas as pd


class Record(NamedTuple):
    """One input record and where it came from (for errors, joins and ordering)."""

    source: str  # input object key relative to the input prefix
    index: int  # type: ignore[assignment]  # record number within the source object, 0-based (shadows tuple.index)
    data: bytes  # raw bytes as split from the source (a CSV row, a JSON line, a whole image)


_MAKE = partial(tuple.__new__, Record)  # a Record without running Python code (no __new__ call)


class Records(Sequence[Record]):
    """Records kept as runs of consecutive records of one source (their bytes), made into
    ``Record`` tuples only when asked for.

    A reader frames millions of lines and most are only handed on as bytes (``datas``): making a
    tuple for each, and the garbage collector's walks over them, cost about as much as parsing
    the lines did. Every run's list of bytes belongs to its ``Records`` alone.
    """

    __slots__ = ("_ends", "_runs")

    def __init__(self) -> None:
        self._runs: list[tuple[str, int, list[bytes]]] = []
        self._ends: list[int] = []  # the number of records up to the end of each run

    @classmethod
    def concat(cls, parts: Iterable[Sequence[Record]]) -> Records:
        joined = cls()
        for part in parts:
            if isinstance(part, Records):
                for source, first, datas in part._runs:
                    joined.append_run(source, first, list(datas))
            else:
                for record in part:
                    joined.append_run(record.source, record.index, [record.data])
        return joined

    def append_run(self, source: str, first: int, datas: list[bytes]) -> None:
        """Add records ``first, first + 1, ...`` of ``source``; ``datas`` (a new list) becomes
        this object's."""
        if not datas:
            return
        if self._runs:
            last_source, last_first, last_datas = self._runs[-1]
            if last_source == source and last_first + len(last_datas) == first:
                last_datas.extend(datas)
                self._ends[-1] += len(datas)
                return
        self._runs.append((source, first, datas))
        self._ends.append(len(self) + len(datas))

    def datas(self) -> list[bytes]:
        """Every record's bytes, in order (do not modify the list)."""
        if len(self._runs) == 1:
            return self._runs[0][2]
        return [data for _, _, datas in self._runs for data in datas]

    def __len__(self) -> int:
        return self._ends[-1] if self._ends else 0

    @overload
    def __getitem__(self, index: int) -> Record: ...

    @overload
    def __getitem__(self, index: slice) -> Records: ...

    def __getitem__(self, index: int | slice) -> Record | Records:
        if isinstance(index, slice):
            start, stop, step = index.indices(len(self))
            if step != 1:
                raise ValueError("Records slices take every record (step 1)")
            return self._slice(start, stop)
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError("record position out of range")
        run = bisect_right(self._ends, index)
        source, first, datas = self._runs[run]
        offset = index - (self._ends[run] - len(datas))
        return Record(source, first + offset, datas[offset])

    def _slice(self, start: int, stop: int) -> Records:
        part = Records()
        for (source, first, datas), end in zip(self._runs, self._ends, strict=True):
            begin = end - len(datas)
            low, high = max(start, begin), min(stop, end)
            if low < high:
                part.append_run(source, first + low - begin, datas[low - begin : high - begin])
        return part

    def __iter__(self) -> Iterator[Record]:
        for source, first, datas in self._runs:
            yield from map(_MAKE, zip(repeat(source), range(first, first + len(datas)), datas))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Sequence) and list(self) == list(other)

    __hash__ = None  # type: ignore[assignment]  # mutable, compared by content

    def __repr__(self) -> str:
        return f"Records({list(self)!r})"


def new_records(source: str, first_index: int, datas: list[bytes]) -> Records:
    """Records ``first_index, first_index + 1, ...`` of ``source`` (``datas`` becomes theirs)."""
    records = Records()
    records.append_run(source, first_index, datas)
    return records


def record_datas(records: Sequence[Record]) -> list[bytes]:
    """The records' bytes, in order, without making a ``Record`` of each where they are ``Records``."""
    return records.datas() if isinstance(records, Records) else [record.data for record in records]


def take(records: Sequence[Record], positions: Sequence[int]) -> Sequence[Record]:
    """The records at ``positions`` (ascending); ``records`` itself when that is all of them."""
    if len(positions) == len(records):
        return records
    return [records[position] for position in positions]


@dataclass
class ModelInput:
    """A mini-batch in the form(s) the pipeline could decode for this content type.

    ``frame`` is set for tabular content (CSV, JSON Lines, JSON, Parquet), ``tensor`` for images
    decoded per the model's ``imagePreprocessing``, ``texts`` for text/plain; ``records`` always.
    """

    records: Sequence[Record]
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
