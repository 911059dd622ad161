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


class Lines(Sequence[bytes]):
    """Lines ``low`` to ``high`` of one buffer, kept as where each starts and ends in it (numpy
    arrays shared by every slice) and made into bytes only when asked for.

    A reader's 4 MiB CSV chunk holds about 100k lines: one bytes object per line, their lengths and
    their join back into one text for the parser cost about as much as the parse itself; kept as
    positions, the lines of a mini-batch go to the parser as one slice of the buffer (``payload``).
    Slicing and re-joining neighbouring slices (``then``) cost no array operations.
    """

    __slots__ = ("buffer", "ends", "high", "low", "starts")

    def __init__(
        self, buffer: bytes, starts: np.ndarray, ends: np.ndarray, low: int = 0, high: int | None = None
    ) -> None:
        self.buffer, self.starts, self.ends = buffer, starts, ends
        self.low, self.high = low, len(starts) if high is None else high

    def __len__(self) -> int:
        return self.high - self.low

    @overload
    def __getitem__(self, index: int) -> bytes: ...

    @overload
    def __getitem__(self, index: slice) -> Lines: ...

    def __getitem__(self, index: int | slice) -> bytes | Lines:
        if isinstance(index, slice):
            start, stop = _span(index, len(self), "line")
            return Lines(self.buffer, self.starts, self.ends, self.low + start, self.low + stop)
        at = self.low + _position(index, len(self), "line")
        return self.buffer[self.starts[at] : self.ends[at]]

    def __iter__(self) -> Iterator[bytes]:
        starts, ends = self.starts[self.low : self.high], self.ends[self.low : self.high]
        return map(self.buffer.__getitem__, map(slice, starts.tolist(), ends.tolist()))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Sequence) and list(self) == list(other)

    __hash__ = None  # type: ignore[assignment]  # compared by content, like the list it stands for

    def __repr__(self) -> str:
        return f"Lines({list(self)!r})"

    def then(self, following: Lines) -> Lines | None:
        """These lines and ``following`` as one ``Lines``, when it is the slice right after them."""
        if following.starts is not self.starts or following.low != self.high:
            return None
        return Lines(self.buffer, self.starts, self.ends, self.low, following.high)

    def sizes(self) -> np.ndarray:
        """Each line's length in bytes."""
        sizes: np.ndarray = self.ends[self.low : self.high] - self.starts[self.low : self.high]
        return sizes

    def payload(self) -> bytes:
        """The lines, each followed by a newline: one slice of the buffer where they lie in it so
        (no blank line dropped and no carriage return stripped between them)."""
        if not len(self):
            return b""
        starts, ends = self.starts[self.low : self.high], self.ends[self.low : self.high]
        last = int(ends[-1])
        if self.buffer[last : last + 1] == b"\n" and bool((starts[1:] == ends[:-1] + 1).all()):
            return self.buffer[int(starts[0]) : last + 1]
        return _joined(list(self))


def _span(index: slice, length: int, what: str) -> tuple[int, int]:
    """The bounds of a step-1 slice of ``length`` items (start == stop when it is empty)."""
    start, stop, step = index.indices(length)
    if step != 1:
        raise ValueError(f"slices of {what}s take every {what} (step 1)")
    return start, max(start, stop)


def _position(index: int, length: int, what: str) -> int:
    """``index`` (negative: from the end) of ``length`` items, checked."""
    position = index + length if index < 0 else index
    if not 0 <= position < length:
        raise IndexError(f"{what} position out of range")
    return position


def _joined(datas: Sequence[bytes]) -> bytes:
    return b"\n".join(datas) + b"\n" if datas else b""


Datas: TypeAlias = "list[bytes] | Lines"


class Records(Sequence[Record]):
    """Records kept as runs of consecutive records of one source (their bytes: a list, or the
    ``Lines`` of a reader's chunk), made into ``Record`` tuples only when asked for.

    A reader frames millions of lines and most are only handed on as bytes (``payload``): making a
    tuple for each, and the garbage collector's walks over them, cost about as much as parsing
    the lines did. Every run's list of bytes belongs to its ``Records`` alone (``Lines`` are never
    changed, so they are shared; neighbouring slices of one chunk's lines join into one run).
    """

    __slots__ = ("_ends", "_runs")

    def __init__(self) -> None:
        self._runs: list[tuple[str, int, Datas]] = []
        self._ends: list[int] = []  # the number of records up to the end of each run

    @classmethod
    def concat(cls, parts: Iterable[Sequence[Record]]) -> Records:
        joined = cls()
        for part in parts:
            if isinstance(part, Records):
                for source, first, datas in part._runs:
                    joined.append_run(source, first, datas if isinstance(datas, Lines) else list(datas))
            else:
                for record in part:
                    joined.append_run(record.source, record.index, [record.data])
        return joined

    def append_run(self, source: str, first: int, datas: Datas) -> None:
        """Add records ``first, first + 1, ...`` of ``source``; ``datas`` (a new list, or
        ``Lines``) becomes this object's."""
        if not len(datas):
            return
        if self._runs:
            last_source, last_first, last_datas = self._runs[-1]
            if last_source == source and last_first + len(last_datas) == first:
                if isinstance(last_datas, list) and isinstance(datas, list):
                    last_datas.extend(datas)
                    self._ends[-1] += len(datas)
                    return
                if isinstance(last_datas, Lines) and isinstance(datas, Lines):
                    joined = last_datas.then(datas)
                    if joined is not None:
                        self._runs[-1] = (source, last_first, joined)
                        self._ends[-1] += len(datas)
                        return
        self._runs.append((source, first, datas))
        self._ends.append(len(self) + len(datas))

    def payload(self) -> bytes:
        """Every record's bytes, each followed by a newline."""
        return b"".join(
            datas.payload() if isinstance(datas, Lines) else _joined(datas) for _, _, datas in self._runs
        )

    def size(self) -> int:
        """The bytes of every record's data."""
        return sum(
            int(datas.sizes().sum()) if isinstance(datas, Lines) else sum(map(len, datas))
            for _, _, datas in self._runs
        )

    def __len__(self) -> int:
        return self._ends[-1] if self._ends else 0

    @overload
    def __getitem__(self, index: int) -> Record: ...

    @overload
    def __getitem__(self, index: slice) -> Records: ...

    def __getitem__(self, index: int | slice) -> Record | Records:
        if isinstance(index, slice):
            return self._slice(*_span(index, len(self), "record"))
        index = _position(index, len(self), "record")
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


def new_records(source: str, first_index: int, datas: Datas) -> Records:
    """Records ``first_index, first_index + 1, ...`` of ``source`` (``datas`` becomes theirs)."""
    records = Records()
    records.append_run(source, first_index, datas)
    return records


def lines_payload(records: Sequence[Record]) -> bytes:
    """The records' bytes, each followed by a newline (a CSV parser's input)."""
    return records.payload() if isinstance(records, Records) else _joined([r.data for r in records])


def data_size(records: Sequence[Record]) -> int:
    """The bytes of the records' data."""
    return records.size() if isinstance(records, Records) else sum(len(r.data) for r in records)


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
