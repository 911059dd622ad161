"""Turn a mini-batch's records into the ``ModelInput`` its content format's decoding calls for.

CSV -> ``frame`` (pyarrow's parser, header names or ``csv.columns``, quoted newlines allowed);
JSON Lines / JSON -> ``frame`` from one JSON value per record; Parquet -> the frame read from
row groups; text/plain -> ``texts``; images -> ``tensor`` (see images.py); RecordIO, TFRecord
and octet-stream -> ``records`` only. The input filter is applied here. Records that cannot be
decoded are rejected one by one with the reason; the others go on.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv

from kbt.api.models import Flavor
from kbt.api.resolved import ResolvedJob
from kbt.flavors.base import ModelInput
from kbt.runner.dataproc import FilterMismatch, apply_json, compile_filter, select_positions
from kbt.runner.formats import Decoding, content_format, known_format, media_type
from kbt.runner.images import decode_images
from kbt.runner.reader import Batch


@dataclass
class Decoded:
    """The model input of a batch's decodable records and what happened to the others."""

    model_input: ModelInput
    positions: list[int]  # position in the batch of each model_input record
    rejected: dict[int, str] = field(default_factory=dict)
    values: list[Any] | None = None  # parsed JSON records (for joins), aligned with positions


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
            return Decoded(self._input([batch.records[p] for p in kept], tensor=tensor), kept, rejected)
        return Decoded(self._input(batch.records), list(range(len(batch.records))))

    def _input(self, records: list[Any], **decoded: Any) -> ModelInput:
        return ModelInput(records=records, content_type=self.content_type, **decoded)

    def _parquet(self, batch: Batch) -> Decoded:
        frame = batch.frame if batch.frame is not None else pd.DataFrame()
        if self.input_filter is not None:
            frame = frame.iloc[:, select_positions(self.input_filter, frame.shape[1], "inputFilter")]
        return Decoded(self._input(batch.records, frame=frame), list(range(len(batch.records))))

    def _csv(self, batch: Batch, columns: list[str] | None) -> Decoded:
        positions = list(range(len(batch.records)))
        rejected: dict[int, str] = {}
        try:
            frame = _parse_csv([r.data for r in batch.records], columns, self.delimiter)
        except (pa.ArrowInvalid, UnicodeDecodeError):
            positions, rejected = _check_rows(batch, columns, self.delimiter)
            try:
                frame = _parse_csv([batch.records[p].data for p in positions], columns, self.delimiter)
            except (pa.ArrowInvalid, UnicodeDecodeError):
                frame, positions, rejected = _parse_one_by_one(batch, columns, self.delimiter)
        if self.input_filter is not None and positions:
            frame = frame.iloc[:, select_positions(self.input_filter, frame.shape[1], "inputFilter")]
        return Decoded(self._input([batch.records[p] for p in positions], frame=frame), positions, rejected)

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
        model_input = self._input([batch.records[p] for p in kept], frame=frame)
        return Decoded(model_input, kept, rejected, values=kept_values)

    def _text(self, batch: Batch) -> Decoded:
        texts, positions, rejected = [], [], {}
        for position, record in enumerate(batch.records):
            try:
                texts.append(record.data.decode("utf-8"))
                positions.append(position)
            except UnicodeDecodeError as exc:
                rejected[position] = f"not UTF-8 text: {exc}"
        return Decoded(self._input([batch.records[p] for p in positions], texts=texts), positions, rejected)


def _parse_csv(rows: list[bytes], columns: list[str] | None, delimiter: str) -> pd.DataFrame:
    if not rows:
        return pd.DataFrame(columns=columns)
    read_options = pacsv.ReadOptions(
        column_names=columns, autogenerate_column_names=columns is None, use_threads=False
    )
    parse_options = pacsv.ParseOptions(delimiter=delimiter, newlines_in_values=True)
    table = pacsv.read_csv(
        io.BytesIO(b"\n".join(rows) + b"\n"), read_options=read_options, parse_options=parse_options
    )
    if table.num_rows != len(rows):
        raise pa.ArrowInvalid(f"parsed {table.num_rows} rows from {len(rows)} records")
    frame: pd.DataFrame = table.to_pandas()
    return frame


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
    frames, positions, rejected = [], [], {}
    for position, record in enumerate(batch.records):
        try:
            frames.append(_parse_csv([record.data], columns, delimiter))
            positions.append(position)
        except (pa.ArrowInvalid, UnicodeDecodeError) as exc:
            rejected[position] = f"not a CSV row: {exc}"
    frame = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns)
    return frame, positions, rejected


def _json_frame(values: list[Any]) -> pd.DataFrame:
    if not values:
        return pd.DataFrame()
    if all(isinstance(v, dict) for v in values):
        return pd.DataFrame.from_records(values)
    if all(isinstance(v, list) for v in values):
        return pd.DataFrame(values)
    return pd.DataFrame({"value": values})
