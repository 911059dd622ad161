"""One frozen record per content type, and the one lookup every stage asks (like MLServer's codecs).

A ``ContentFormat`` says how records of its type are framed (whatever ``splitType`` says, or as
it says), how the plan may split a large object, how a mini-batch decodes to model input, how
predictions encode when it is the ``accept`` type, which outputs ``joinSource: Input`` can join
it into, its default ``accept``, whether it has a header row, how a scoring script gets it as a
file, and its usual file extensions. Filters follow the decoding and encoding: CSV and Parquet
select columns by position, JSON types apply the JSONPath to each value.
``known_format`` normalises the media type (case, parameters such as ``; charset=utf-8``) and
names the spec field in its error when the type is unknown; ``content_format`` gives such a type
``RAW_BYTES`` (whole objects, records as stored bytes), which only a scoring script accepts.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, replace
from enum import StrEnum

from kbt.api.models import AcceptType, ContentType, SplitType
from kbt.runner.errors import ConfigError


class Framing(StrEnum):
    """How a stream of stored bytes becomes records."""

    CSV_LINES = "csv-lines"  # one record per line; a quoted field may hold newlines
    LINES = "lines"  # one record per line
    RECORDIO = "recordio"  # MXNet RecordIO framing
    TFRECORD = "tfrecord"  # TFRecord framing (checksums verified)
    JSON_ELEMENTS = "json-elements"  # one JSON document; an array gives one record per element
    WHOLE = "whole"  # the object is one record
    ROW_GROUPS = "row-groups"  # Parquet row groups, read into frames


class Splitting(StrEnum):
    """How the plan may cut an object larger than the split size into work items."""

    CSV_RECORDS = "csv-records"  # at record boundaries (quote-aware scan), with splitType Line
    LINE_RANGES = "line-ranges"  # at byte offsets the reader aligns to lines, with splitType Line
    ROW_GROUPS = "row-groups"  # by Parquet row groups, whatever splitType says
    NEVER = "never"


class Decoding(StrEnum):
    """What a mini-batch of this type becomes for the model (``ModelInput``)."""

    CSV = "csv"  # frame, parsed by pyarrow
    JSON = "json"  # frame from one JSON value per record
    PARQUET = "parquet"  # the frame read from row groups
    TEXT = "text"  # texts (UTF-8)
    IMAGE = "image"  # tensor (kbt.runner.images)
    BYTES = "bytes"  # the records' bytes only


class Encoding(StrEnum):
    """How predictions are written when this type is the ``accept`` type."""

    CSV_ROWS = "csv-rows"
    JSON_VALUES = "json-values"
    PARQUET_TABLE = "parquet-table"


class TabularFile(StrEnum):
    """How a scoring script's file mini-batch holds a tabular source's records."""

    CSV = "csv"  # DataFrame.to_csv
    PARQUET = "parquet"  # DataFrame.to_parquet
    JSON_RECORDS = "json-records"  # DataFrame.to_json(orient="records")
    RECORD_LINES = "record-lines"  # the records' own bytes, one per line


LINE_SPLITTING = frozenset({Splitting.CSV_RECORDS, Splitting.LINE_RANGES})
SPLIT_FRAMING = {
    SplitType.NONE: Framing.WHOLE,
    SplitType.LINE: Framing.LINES,
    SplitType.RECORDIO: Framing.RECORDIO,
    SplitType.TFRECORD: Framing.TFRECORD,
}


@dataclass(frozen=True)
class ContentFormat:
    """Everything kbt does differently for one content type (defaults: an opaque binary type)."""

    content_type: ContentType
    framing: Framing = Framing.WHOLE  # with splitType None (and always, when fixed_framing)
    fixed_framing: bool = False  # splitType does not change the framing (row formats, Parquet)
    splitting: Splitting = Splitting.NEVER
    decoding: Decoding = Decoding.BYTES
    default_accept: AcceptType = AcceptType.JSONLINES
    encoding: Encoding | None = None  # None: not an output type
    joins_into: frozenset[Encoding] = frozenset()  # outputs joinSource Input can join this input into
    header: bool = False  # the first record may hold column names
    tabular_file: TabularFile | None = None  # None: a scoring script gets one file per record
    extensions: tuple[str, ...] = ()

    def record_framing(self, split_type: SplitType) -> Framing:
        """The framing of this type's objects under ``split_type``."""
        if self.fixed_framing or split_type == SplitType.NONE:
            return self.framing
        return SPLIT_FRAMING[split_type]

    def splits_by_line(self, split_type: SplitType) -> bool:
        """Whether the plan may cut a large object at line boundaries."""
        return split_type == SplitType.LINE and self.splitting in LINE_SPLITTING


_JSON_OUT = frozenset({Encoding.JSON_VALUES})
_JSON_LINES = ContentFormat(
    ContentType.JSONLINES,
    Framing.LINES,
    fixed_framing=True,
    splitting=Splitting.LINE_RANGES,
    decoding=Decoding.JSON,
    encoding=Encoding.JSON_VALUES,
    joins_into=_JSON_OUT,
    tabular_file=TabularFile.RECORD_LINES,
    extensions=(".jsonl",),
)
_PARQUET = ContentFormat(
    ContentType.PARQUET,
    Framing.ROW_GROUPS,
    fixed_framing=True,
    splitting=Splitting.ROW_GROUPS,
    decoding=Decoding.PARQUET,
    default_accept=AcceptType.PARQUET,
    encoding=Encoding.PARQUET_TABLE,
    joins_into=frozenset(Encoding),
    tabular_file=TabularFile.PARQUET,
    extensions=(".parquet",),
)
FORMATS: dict[ContentType, ContentFormat] = {
    fmt.content_type: fmt
    for fmt in (
        ContentFormat(
            ContentType.CSV,
            Framing.CSV_LINES,
            fixed_framing=True,
            splitting=Splitting.CSV_RECORDS,
            decoding=Decoding.CSV,
            default_accept=AcceptType.CSV,
            encoding=Encoding.CSV_ROWS,
            joins_into=frozenset({Encoding.CSV_ROWS}),
            header=True,
            tabular_file=TabularFile.CSV,
            extensions=(".csv",),
        ),
        _JSON_LINES,
        replace(_JSON_LINES, content_type=ContentType.X_JSONLINES),
        replace(
            _JSON_LINES,
            content_type=ContentType.JSON,
            framing=Framing.JSON_ELEMENTS,
            fixed_framing=False,
            splitting=Splitting.NEVER,
            default_accept=AcceptType.JSON,
            tabular_file=TabularFile.JSON_RECORDS,
            extensions=(".json",),
        ),
        _PARQUET,
        replace(_PARQUET, content_type=ContentType.PARQUET_ALT),
        ContentFormat(
            ContentType.TEXT, splitting=Splitting.LINE_RANGES, decoding=Decoding.TEXT, extensions=(".txt",)
        ),
        ContentFormat(ContentType.PNG, decoding=Decoding.IMAGE, extensions=(".png",)),
        ContentFormat(ContentType.JPEG, decoding=Decoding.IMAGE, extensions=(".jpg", ".jpeg")),
        ContentFormat(ContentType.IMAGE, decoding=Decoding.IMAGE),
        ContentFormat(ContentType.RECORDIO, extensions=(".rec",)),
        ContentFormat(ContentType.TFRECORD, extensions=(".tfrecord",)),
        ContentFormat(ContentType.OCTET_STREAM),
    )
}


def media_type(value: str) -> str:
    """``value`` without parameters, lower-cased: ``Text/CSV; charset=utf-8`` -> ``text/csv``."""
    return value.split(";", 1)[0].strip().lower()


RAW_BYTES = ContentFormat(ContentType.OCTET_STREAM)  # a type kbt cannot decode: its bytes as stored


@functools.cache  # asked once per work item and batch
def known_format(value: str, field: str) -> ContentFormat:
    """The format of media type ``value`` read from spec field ``field``; ConfigError if kbt
    cannot decode (or encode) it itself."""
    try:
        return FORMATS[ContentType(media_type(value))]
    except ValueError:
        known = ", ".join(FORMATS)
        raise ConfigError(
            f"{field}: unknown content type {value!r} (known: {known}; a scoring script, flavor"
            " custom, gets any other type as the stored bytes)"
        ) from None


@functools.cache
def content_format(value: str, field: str) -> ContentFormat:
    """``known_format``, or ``RAW_BYTES`` for a type kbt cannot decode (a scoring script gets
    such records as the stored bytes; ``known_format`` refuses them for the built-in flavors)."""
    try:
        return known_format(value, field)
    except ConfigError:
        return RAW_BYTES
