"""A corpus of malformed batch inputs, generated on the fly (nothing big is committed).

Every ``BadObject`` says which records of it are broken (0-based, data rows only) or that the
whole object is unusable, so a test can check that the runner reports exactly those, naming the
object and the position. Sizes are parameters: the 1 GB single line is written in chunks.
"""

from __future__ import annotations

import gzip
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

FEATURES = ("f0", "f1", "f2")
HEADER = ",".join(FEATURES) + "\n"


@dataclass(frozen=True)
class BadObject:
    """One input object of the corpus and what is wrong with it."""

    key: str  # relative to the input prefix
    problem: str  # human description, used in assertion messages
    bad_records: tuple[int, ...] = ()  # broken data rows; empty with whole_object=False means all fine
    whole_object: bool = False  # the object as a whole cannot be read (only an object-level error fits)
    records: int = 0  # data rows a correct reader would find (including the bad ones)


def csv_row(index: int) -> str:
    """A deterministic valid data row; the custom test model scores it as f0 + f1 + f2."""
    return f"{index},{index % 7},{(index * 3) % 11}\n"


def good_csv(rows: int, start: int = 0) -> bytes:
    return (HEADER + "".join(csv_row(start + i) for i in range(rows))).encode()


def _csv_with(rows: int, replacements: dict[int, bytes]) -> bytes:
    lines = [HEADER.encode()]
    for i in range(rows):
        lines.append(replacements.get(i, csv_row(i).encode()))
    return b"".join(lines)


def write_csv_corpus(root: Path) -> list[BadObject]:
    """Plain CSV inputs (one job, contentType text/csv, header row) under `root`."""
    objects = {
        BadObject("good.csv", "control: nothing wrong", records=40): good_csv(40),
        BadObject(
            "ragged.csv", "row 7 has an extra field, row 12 a missing one", (7, 12), records=30
        ): _csv_with(30, {7: b"7,0,10,99\n", 12: b"12,5\n"}),
        BadObject("wrong_types.csv", "row 4 holds text where numbers belong", (4,), records=20): _csv_with(
            20, {4: b"four,x,y\n"}
        ),
        BadObject("invalid_utf8.csv", "row 9 is not UTF-8", (9,), records=20): _csv_with(
            20, {9: b"9,\xff\xfe,\xc3\x28\n"}
        ),
        BadObject("header_only.csv", "a header and no rows", records=0): HEADER.encode(),
        BadObject("zero_bytes.csv", "a zero-byte object", records=0): b"",
    }
    for obj, content in objects.items():
        (root / obj.key).write_bytes(content)
    return list(objects)


def write_gzip_corpus(root: Path) -> list[BadObject]:
    """Gzip-compressed CSV inputs (one job, compressionType Gzip): one good, one truncated, one not gzip."""
    whole = gzip.compress(good_csv(2000), mtime=0)
    objects = {
        BadObject("good.csv.gz", "control", records=50): gzip.compress(good_csv(50), mtime=0),
        BadObject("truncated.csv.gz", "gzip stream cut in half", whole_object=True, records=2000): whole[
            : len(whole) // 2
        ],
        BadObject("not_gzip.csv.gz", "plain text where gzip was promised", whole_object=True): good_csv(5),
    }
    for obj, content in objects.items():
        (root / obj.key).write_bytes(content)
    return list(objects)


def png_bytes(width: int = 4, height: int = 4, value: int = 128) -> bytes:
    """A valid grayscale PNG, built without an image library."""
    raw = b"".join(b"\x00" + bytes([value]) * width for _ in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


def write_image_corpus(root: Path) -> list[BadObject]:
    """Image inputs (one job, contentType image/png, one record per object)."""
    good = png_bytes()
    objects = {
        BadObject("good.png", "control", records=1): good,
        BadObject("truncated.png", "PNG cut after its header", (0,), records=1): good[:30],
        BadObject("garbage.png", "PNG signature followed by noise", (0,), records=1): good[:8]
        + bytes(range(256)) * 4,
        BadObject("text.png", "a text file named .png", (0,), records=1): b"this is not an image\n",
        BadObject("zero_bytes.png", "a zero-byte image", (0,), records=1): b"",
    }
    for obj, content in objects.items():
        (root / obj.key).write_bytes(content)
    return list(objects)


def write_jsonlines_corpus(root: Path) -> list[BadObject]:
    """JSON Lines inputs (one job, contentType application/jsonlines, splitType Line)."""
    good = b"".join(b'{"f0": %d, "f1": 1, "f2": 2}\n' % i for i in range(10))
    objects = {
        BadObject("good.jsonl", "control", records=10): good,
        BadObject("broken.jsonl", "line 3 is not JSON, line 5 is cut", (3, 5), records=8): b"".join(
            [
                b'{"f0": 0, "f1": 1, "f2": 2}\n',
                b'{"f0": 1, "f1": 1, "f2": 2}\n',
                b'{"f0": 2, "f1": 1, "f2": 2}\n',
                b"{not json\n",
                b'{"f0": 4, "f1": 1, "f2": 2}\n',
                b'{"f0": 5, "f1": \n',
                b'{"f0": 6, "f1": 1, "f2": 2}\n',
                b'{"f0": 7, "f1": 1, "f2": 2}\n',
            ]
        ),
    }
    for obj, content in objects.items():
        (root / obj.key).write_bytes(content)
    return list(objects)


def write_huge_line(path: Path, size: int, chunk: int = 1 << 20) -> None:
    """A CSV whose only data row is `size` bytes long, written in chunks (never held in memory)."""
    filler = b"9" * chunk
    with path.open("wb") as out:
        out.write(HEADER.encode())
        out.write(b"1,2,")
        written = 0
        while written < size:
            piece = filler[: min(chunk, size - written)]
            out.write(piece)
            written += len(piece)
        out.write(b"\n")


def write_many_tiny(root: Path, count: int) -> None:
    """`count` one-row CSV objects spread over 100 sub-folders."""
    for i in range(count):
        folder = root / f"part-{i % 100:02d}"
        folder.mkdir(exist_ok=True)
        (folder / f"obj-{i:05d}.csv").write_bytes(good_csv(1, start=i))
