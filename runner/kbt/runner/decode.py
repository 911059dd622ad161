"""Turn a mini-batch's records into the ``ModelInput`` its content format's decoding calls for.

CSV -> ``frame`` (pyarrow's parser, header names or ``csv.columns``, quoted newlines allowed);
JSON Lines / JSON -> ``frame`` from one JSON value per record; Parquet -> the frame read from
row groups; text/plain -> ``texts``; images -> ``tensor`` (see images.py); RecordIO, TFRecord
and octet-stream -> ``records`` only. The input filter is applied here. Records that cannot be
decoded are rejected one by one with the reason; the others go on.

A model call of several CSV mini-batches is parsed in one go (``Decoder.decode_call``) where that
cannot change what each mini-batch's own parse gives: pyarrow infers each column's type from the
values it parses, so a mini-batch of only ``1``/``2`` in a column that other mini-batches fill with
``2.5`` or ``normal`` would get its own type. The call's parse is kept only when every
mini-batch holds, in every column, a value that forces the call's type (``_forced``); else each
mini-batch is parsed alone, as before.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from kbt.api.models import Flavor
from kbt.api.resolved import ResolvedJob
from kbt.flavors.base import ModelInput, Record, Records, lines_payload, take
from kbt.runner.dataproc import FilterMismatch, apply_json, compile_filter, select_positions
from kbt.runner.formats import Decoding, content_format, known_format, media_type
from kbt.runner.images import decode_images
from kbt.runner.reader import Batch

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

# A character that no null, number, boolean, date or timestamp literal of pyarrow's default
# inference holds: a value with one is a string in any mini-batch.
STRING_ONLY = r"[^0-9+\-.:/# adefilnqrstuyzADEFILNQRSTUYZ]"
# pyarrow infers a column's type from the first block it parses: a mini-batch bigger than one
# block is typed by its first block alone, which a call's parse cannot reproduce. (pyarrow's
# default block size, set in ``_parse_table``.)
INFERENCE_BLOCK = 1 << 20


@dataclass
class Decoded:
    """The model input of a batch's decodable records and what happened to the others."""

    model_input: ModelInput
    positions: list[int]  # position in the batch of each model_input record
    rejected: dict[int, str] = field(default_factory=dict)
    values: list[Any] | None = None  # parsed JSON records (for joins), aligned with positions


@dataclass
class CallDecoded:
    """Several mini-batches decoded as one model input (``frame``: theirs, stacked in order), and
    each one's ``Decoded``: its records, all of them decoded (its frame is a slice of the call's,
    not made: nothing reads it)."""

    model_input: ModelInput
    parts: list[Decoded]


class Decoder:
    """Decodes batches of one job (content type, CSV options, input filter, image settings)."""

    def __init__(self, job: ResolvedJob) -> None:
        transform = job.spec.transformInput
        lookup = (
            content_format if job.model.flavor == Flavor.CUSTOM else known_format
        )  # raw bytes: scripts only
        self.format = lookup(transform.contentType, "transformInput.contentType")
        self.content_type = media_type(transform.contentType)
        self.delimiter = transform.csv.delimiter
        self.columns = transform.csv.columns
        processing = job.spec.dataProcessing
        self.input_filter = compile_filter(processing.inputFilter if processing else None, "inputFilter")
        self.images = job.model.imagePreprocessing

    def decode(self, batch: Batch, header: list[str] | None) -> Decoded:
        decoding = self.format.decoding
        if decoding == Decoding.CSV:
            return self._csv(batch, header or self.columns)
        if decoding == Decoding.JSON:
            return self._json(batch)
        if decoding == Decoding.PARQUET:
            return self._parquet(batch)
        if decoding == Decoding.TEXT:
            return self._text(batch)
        if decoding == Decoding.IMAGE:
            tensor, kept, rejected = decode_images(batch.records, self.images)
            return Decoded(self._input(take(batch.records, kept), tensor=tensor), kept, rejected)
        return Decoded(self._input(batch.records), list(range(len(batch.records))))

    def decode_call(self, batches: list[Batch], header: list[str] | None) -> CallDecoded | None:
        """CSV mini-batches of one header parsed as one frame, when each mini-batch's columns come
        out as its own parse would make them (see the module docstring); None otherwise."""
        if self.format.decoding != Decoding.CSV or any(
            not b.records or b.frame is not None or b.payload + len(b.records) > INFERENCE_BLOCK
            for b in batches
        ):
            return None
        import pyarrow as pa  # noqa: PLC0415 (lazy: see kbt.frames)

        sizes = [len(b.records) for b in batches]
        records = Records.concat(b.records for b in batches)
        try:
            table = _parse_table(records.payload(), len(records), header or self.columns, self.delimiter)
        except (pa.ArrowInvalid, UnicodeDecodeError):
            return None
        starts = np.cumsum([0, *sizes[:-1]])
        if not all(_forced(column, starts) for column in table.columns):
            return None
        frame: pd.DataFrame = table.to_pandas()
        if self.input_filter is not None:
            frame = frame.iloc[:, select_positions(self.input_filter, frame.shape[1], "inputFilter")]
        parts = [
            Decoded(self._input(b.records), list(range(size))) for b, size in zip(batches, sizes, strict=True)
        ]
        return CallDecoded(self._input(records, frame=frame), parts)

    def _input(self, records: Sequence[Record], **decoded: Any) -> ModelInput:
        return ModelInput(records=records, content_type=self.content_type, **decoded)

    def _parquet(self, batch: Batch) -> Decoded:
        import pandas as pd  # noqa: PLC0415 (lazy: see kbt.frames)

        frame = batch.frame if batch.frame is not None else pd.DataFrame()
        if self.input_filter is not None:
            frame = frame.iloc[:, select_positions(self.input_filter, frame.shape[1], "inputFilter")]
        return Decoded(self._input(batch.records, frame=frame), list(range(len(batch.records))))

    def _csv(self, batch: Batch, columns: list[str] | None) -> Decoded:
        import pyarrow as pa  # noqa: PLC0415 (lazy: see kbt.frames)

        positions = list(range(len(batch.records)))
        rejected: dict[int, str] = {}
        try:
            frame = _parse_csv(batch.records, columns, self.delimiter)
        except (pa.ArrowInvalid, UnicodeDecodeError):
            positions, rejected = _check_rows(batch, columns, self.delimiter)
            try:
                frame = _parse_csv(take(batch.records, positions), columns, self.delimiter)
            except (pa.ArrowInvalid, UnicodeDecodeError):
                frame, positions, rejected = _parse_one_by_one(batch, columns, self.delimiter)
        if self.input_filter is not None and positions:
            frame = frame.iloc[:, select_positions(self.input_filter, frame.shape[1], "inputFilter")]
        return Decoded(self._input(take(batch.records, positions), frame=frame), positions, rejected)

    def _json(self, batch: Batch) -> Decoded:
        values, positions, rejected = [], [], {}
        for position, record in enumerate(batch.records):
            try:
                value = json.loads(record.data)
                values.append(value)
                positions.append(position)
            except (ValueError, UnicodeDecodeError) as exc:
                rejected[position] = f"not valid JSON: {exc}"
        model_values, kept, kept_values = [], [], []
        for position, value in zip(positions, values, strict=True):
            try:
                model_values.append(apply_json(self.input_filter, value))
                kept.append(position)
                kept_values.append(value)
            except FilterMismatch as exc:
                rejected[position] = str(exc)
        frame = _json_frame(model_values)
        model_input = self._input(take(batch.records, kept), frame=frame)
        return Decoded(model_input, kept, rejected, values=kept_values)

    def _text(self, batch: Batch) -> Decoded:
        texts, positions, rejected = [], [], {}
        for position, record in enumerate(batch.records):
            try:
                texts.append(record.data.decode("utf-8"))
                positions.append(position)
            except UnicodeDecodeError as exc:
                rejected[position] = f"not UTF-8 text: {exc}"
        return Decoded(self._input(take(batch.records, positions), texts=texts), positions, rejected)


def _parse_csv(records: Sequence[Record], columns: list[str] | None, delimiter: str) -> pd.DataFrame:
    import pandas as pd  # noqa: PLC0415 (lazy: see kbt.frames)

    if not records:
        return pd.DataFrame(columns=columns)
    frame: pd.DataFrame = _parse_table(lines_payload(records), len(records), columns, delimiter).to_pandas()
    return frame


def _parse_table(text: bytes, rows: int, columns: list[str] | None, delimiter: str) -> pa.Table:
    """The CSV ``text`` of ``rows`` records (each ending in a newline) as a table."""
    import pyarrow as pa  # noqa: PLC0415 (lazy: see kbt.frames)
    import pyarrow.csv as pacsv  # noqa: PLC0415 (lazy: see kbt.frames)

    read_options = pacsv.ReadOptions(
        column_names=columns,
        autogenerate_column_names=columns is None,
        use_threads=False,
        block_size=INFERENCE_BLOCK,
    )
    parse_options = pacsv.ParseOptions(delimiter=delimiter, newlines_in_values=True)
    # In the main thread (kbt.runner.pipeline.InlineExecutor) read_csv would turn a SIGTERM into
    # ArrowCancelled; the shard's own handler stops it after the current mini-batch instead.
    pa.enable_signal_handlers(False)
    table = pacsv.read_csv(pa.BufferReader(text), read_options=read_options, parse_options=parse_options)
    if table.num_rows != rows:
        raise pa.ArrowInvalid(f"parsed {table.num_rows} rows from {rows} records")
    return table


def _forced(column: pa.ChunkedArray, starts: np.ndarray) -> bool:
    """Whether every mini-batch (rows from each of ``starts``) of a column parsed as one would
    get the column's type and pandas dtype from its own parse: it holds a value only that type
    reads (a non-integral float, a string with a ``STRING_ONLY`` character), or every value is
    (int64 without nulls: so is each part) or none is (null)."""
    import pyarrow as pa  # noqa: PLC0415 (lazy: see kbt.frames)

    kind = column.type
    if pa.types.is_null(kind):
        return True
    if pa.types.is_int64(kind):
        return bool(column.null_count == 0)  # a part without nulls would stay int64 in pandas
    if not (pa.types.is_float64(kind) or pa.types.is_string(kind) or pa.types.is_large_string(kind)):
        return False  # booleans ("1" is an int alone), dates, times: parse each part alone
    if _forcing(column.take(starts)).all():  # each part's first value (most columns): no full pass
        return True
    return bool(np.logical_or.reduceat(_forcing(column), starts).all())


def _forcing(values: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """Which of a float64 or string column's values only its type reads."""
    import pyarrow as pa  # noqa: PLC0415 (lazy: see kbt.frames)
    import pyarrow.compute as pc  # noqa: PLC0415 (lazy: see kbt.frames)

    if pa.types.is_float64(values.type):
        numbers = values.to_numpy()
        with np.errstate(invalid="ignore"):
            forcing: np.ndarray = np.isinf(numbers) | (~np.isnan(numbers) & (numbers != np.floor(numbers)))
        return forcing
    matches = pc.match_substring_regex(values, STRING_ONLY)
    found: np.ndarray = matches.fill_null(False).to_numpy(zero_copy_only=False)
    return found


def _check_rows(batch: Batch, columns: list[str] | None, delimiter: str) -> tuple[list[int], dict[int, str]]:
    """Reject records whose field count differs from the header's (or the first record's)."""
    positions, rejected = [], {}
    expected = len(columns) if columns else None
    for position, record in enumerate(batch.records):
        try:
            fields = next(csv.reader([record.data.decode("utf-8")], delimiter=delimiter))
        except (UnicodeDecodeError, csv.Error, StopIteration) as exc:
            rejected[position] = f"not a CSV row: {exc}"
            continue
        expected = expected if expected is not None else len(fields)
        if len(fields) != expected:
            rejected[position] = f"has {len(fields)} fields, expected {expected}" + (
                f" ({', '.join(columns[:20])})" if columns else ""
            )
            continue
        positions.append(position)
    return positions, rejected


def _parse_one_by_one(
    batch: Batch, columns: list[str] | None, delimiter: str
) -> tuple[pd.DataFrame, list[int], dict[int, str]]:
    import pandas as pd  # noqa: PLC0415 (lazy: see kbt.frames)
    import pyarrow as pa  # noqa: PLC0415 (lazy: see kbt.frames)

    frames, positions, rejected = [], [], {}
    for position, record in enumerate(batch.records):
        try:
            frames.append(_parse_csv([record], columns, delimiter))
            positions.append(position)
        except (pa.ArrowInvalid, UnicodeDecodeError) as exc:
            rejected[position] = f"not a CSV row: {exc}"
    frame = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns)
    return frame, positions, rejected


def _json_frame(values: list[Any]) -> pd.DataFrame:
    import pandas as pd  # noqa: PLC0415 (lazy: see kbt.frames)

    if not values:
        return pd.DataFrame()
    if all(isinstance(v, dict) for v in values):
        return pd.DataFrame.from_records(values)
    if all(isinstance(v, list) for v in values):
        return pd.DataFrame(values)
    return pd.DataFrame({"value": values})
