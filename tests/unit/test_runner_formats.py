"""The content-format registry: one format per API content type, one lookup, clear errors."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from kbt.api.models import AcceptType, ContentType, SplitType
from kbt.runner.errors import ConfigError
from kbt.runner.formats import (
    FORMATS,
    RAW_BYTES,
    Decoding,
    Encoding,
    Framing,
    Splitting,
    content_format,
    known_format,
)

ARCHITECTURE = Path(__file__).parents[2] / "docs" / "architecture.md"


def test_every_api_content_type_has_exactly_its_own_format() -> None:
    assert set(FORMATS) == set(ContentType)
    for content_type, fmt in FORMATS.items():
        assert fmt.content_type is content_type
        assert content_format(content_type.value, "transformInput.contentType") is fmt


def test_every_accept_type_is_a_format_that_encodes() -> None:
    for accept in AcceptType:
        assert content_format(accept, "transformOutput.accept").encoding is not None
    for fmt in FORMATS.values():
        assert content_format(fmt.default_accept, "transformOutput.accept").encoding is not None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("text/csv; charset=utf-8", ContentType.CSV),
        ("Text/CSV", ContentType.CSV),
        ("  application/jsonlines ;charset=UTF-8 ", ContentType.JSONLINES),
        ("application/vnd.apache.parquet; version=2", ContentType.PARQUET_ALT),
        ("IMAGE/JPEG", ContentType.JPEG),
    ],
)
def test_lookup_normalises_case_and_parameters(value: str, expected: ContentType) -> None:
    assert content_format(value, "transformInput.contentType").content_type is expected


def test_unknown_type_names_the_field_and_the_value() -> None:
    with pytest.raises(ConfigError) as caught:
        known_format("application/x-npy", "transformOutput.accept")
    message = str(caught.value)
    assert message.startswith("transformOutput.accept: unknown content type 'application/x-npy'")
    assert "text/csv" in message  # lists what is known
    assert content_format("application/x-npy", "transformInput.contentType") is RAW_BYTES  # scripts only


def test_row_formats_keep_their_framing_whatever_split_type_says() -> None:
    for content_type, framing in [
        (ContentType.CSV, Framing.CSV_LINES),
        (ContentType.JSONLINES, Framing.LINES),
        (ContentType.PARQUET, Framing.ROW_GROUPS),
    ]:
        fmt = FORMATS[content_type]
        assert {fmt.record_framing(split) for split in SplitType} == {framing}


def test_split_type_frames_the_other_formats() -> None:
    image = FORMATS[ContentType.PNG]
    assert image.record_framing(SplitType.NONE) == Framing.WHOLE
    assert image.record_framing(SplitType.LINE) == Framing.LINES
    assert image.record_framing(SplitType.RECORDIO) == Framing.RECORDIO
    assert image.record_framing(SplitType.TFRECORD) == Framing.TFRECORD
    assert FORMATS[ContentType.JSON].record_framing(SplitType.NONE) == Framing.JSON_ELEMENTS


def test_only_line_formats_split_by_line_and_only_with_split_type_line() -> None:
    by_line = {ct for ct, fmt in FORMATS.items() if fmt.splits_by_line(SplitType.LINE)}
    assert by_line == {ContentType.CSV, ContentType.JSONLINES, ContentType.X_JSONLINES, ContentType.TEXT}
    assert not any(fmt.splits_by_line(SplitType.NONE) for fmt in FORMATS.values())
    assert FORMATS[ContentType.CSV].splitting == Splitting.CSV_RECORDS


def test_join_targets_follow_sagemaker() -> None:
    assert FORMATS[ContentType.CSV].joins_into == {Encoding.CSV_ROWS}
    assert FORMATS[ContentType.JSONLINES].joins_into == {Encoding.JSON_VALUES}
    assert FORMATS[ContentType.PARQUET].joins_into == set(Encoding)
    assert FORMATS[ContentType.TEXT].joins_into == frozenset()


def test_tabular_formats_are_the_ones_decoded_into_frames() -> None:
    frames = {Decoding.CSV, Decoding.JSON, Decoding.PARQUET}
    for fmt in FORMATS.values():
        assert (fmt.tabular_file is not None) == (fmt.decoding in frames)


def test_architecture_doc_lists_every_format_with_its_default_accept() -> None:
    rows = {
        match.group(1): match.group(2)
        for match in re.finditer(r"^\| `([^`]+)` \|.*\| `([^`]+)` \|[^|]*\|$", ARCHITECTURE.read_text(), re.M)
    }
    assert rows == {ct.value: fmt.default_accept.value for ct, fmt in FORMATS.items()}
