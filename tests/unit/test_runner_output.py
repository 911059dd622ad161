"""ItemWriter's output: small outputs go up from memory, large ones spool to scratch, same bytes."""

from __future__ import annotations

from pathlib import Path

from test_runner_batching import item_of, job

from kbt.runner.encode import Encoded
from kbt.runner.output import MEMORY_LIMIT, ItemWriter
from kbt.runner.state import Layout
from kbt.storage import LocalStore


def _write(tmp_path: Path, chunks: list[bytes]) -> tuple[bytes, list[str]]:
    """The uploaded output of one item written in ``chunks``, and the scratch files it left."""
    data = tmp_path / "in" / "x.jsonl"
    data.parent.mkdir()
    data.write_bytes(b"{}\n")
    out, scratch = tmp_path / "out", tmp_path / "scratch"
    scratch.mkdir()
    layout = Layout(LocalStore(), f"{out.as_posix()}/", "f" * 16)
    writer = ItemWriter(job(data.parent, out), layout, item_of(data), scratch, data.as_posix())
    spooled = []
    for chunk in chunks:
        assert writer.write(Encoded(data=chunk), 1) is None
        spooled.append(str(writer.path.exists()))
    marker = writer.commit()
    assert marker["records"] == len(chunks)
    assert writer.key is not None
    return Path(writer.key).read_bytes(), spooled + sorted(p.name for p in scratch.iterdir())


def test_small_output_is_put_from_memory(tmp_path: Path) -> None:
    uploaded, trace = _write(tmp_path, [b"a\n", b"b\n"])
    assert uploaded == b"a\nb\n"
    assert trace == ["False", "False"]  # no scratch file, none left


def test_output_past_the_memory_limit_spools_to_scratch_with_the_same_bytes(tmp_path: Path) -> None:
    chunks = [b"x" * (MEMORY_LIMIT // 2), b"y" * (MEMORY_LIMIT // 2), b"z\n"]
    uploaded, trace = _write(tmp_path, chunks)
    assert uploaded == b"".join(chunks)
    assert trace == ["False", "False", "True"]  # spooled once past the limit, removed after upload


def test_an_item_without_output_uploads_an_empty_object(tmp_path: Path) -> None:
    uploaded, trace = _write(tmp_path, [])
    assert (uploaded, trace) == (b"", [])
