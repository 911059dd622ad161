"""kbt.storage without a server: URI parsing, local locations, S3 settings, SSE-KMS arguments."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from kbt.storage import (
    LocalStore,
    ObjectNotFound,
    S3Credentials,
    S3Settings,
    StorageError,
    directory_prefix,
    open_location,
    split_s3_uri,
)
from kbt.storage.s3 import encryption_args


def test_s3_uris_split_into_bucket_and_key() -> None:
    assert split_s3_uri("s3://results/heart") == ("results", "heart")
    assert split_s3_uri("s3://results/heart/part-1.csv") == ("results", "heart/part-1.csv")
    assert split_s3_uri("s3://results/") == ("results", "")
    assert directory_prefix(split_s3_uri("s3://results/heart")[1]) == "heart/"
    assert directory_prefix(split_s3_uri("s3://results/")[1]) == ""


def test_local_locations_are_absolute_paths(tmp_path: Path) -> None:
    store, prefix = open_location(f"file://{tmp_path}/out%20dir/")
    assert isinstance(store, LocalStore)
    assert prefix == f"{tmp_path}/out dir/"
    store.put(prefix + "a.out", b"1\n")
    assert store.read(prefix + "a.out") == b"1\n"
    assert [info.key for info in store.list_objects(prefix)] == [prefix + "a.out"]
    with pytest.raises(ObjectNotFound, match="no such file"):
        store.size(prefix + "missing")


def test_settings_hide_secrets_and_bound_attempts(monkeypatch: pytest.MonkeyPatch) -> None:
    keys = S3Credentials("AKIAEXAMPLE", "very-secret", "session-token")
    assert "very-secret" not in repr(keys) and "session-token" not in repr(keys)
    monkeypatch.setenv("KBT_S3_ATTEMPTS", "3")
    assert S3Settings().attempts_per_operation() == 3
    assert S3Settings(attempts=1).attempts_per_operation() == 1
    monkeypatch.delenv("KBT_S3_ATTEMPTS")
    assert S3Settings().attempts_per_operation() == 6


def test_sse_kms_arguments_only_with_a_key() -> None:
    assert encryption_args(S3Settings()) == {}
    assert encryption_args(S3Settings(kms_key_id="arn:aws:kms:us-east-1:1:key/k")) == {
        "ServerSideEncryption": "aws:kms",
        "SSEKMSKeyId": "arn:aws:kms:us-east-1:1:key/k",
    }


def test_the_plugins_storage_import_pulls_in_neither_the_runner_nor_pandas() -> None:
    probe = (
        "import sys, kbt_operator.plugin.archive;"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in {'pandas', 'pyarrow'}"
        " or m.startswith('kbt.runner')))"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_a_file_listed_as_a_folder_has_no_objects(tmp_path: Path) -> None:
    """A single-file model (``model.pt``) listed as a folder is empty, not NotADirectoryError."""
    model = tmp_path / "model.pt"
    model.write_bytes(b"weights")
    store = LocalStore()
    assert store.list_objects(model.as_posix() + "/") == []
    assert [info.key for info in store.list_objects(model.as_posix())] == [model.as_posix()]


def test_local_puts_survive_their_folder_being_removed_in_between(tmp_path: Path) -> None:
    store = LocalStore()
    folder = tmp_path / "out" / "000"
    store.put(f"{folder}/1.png.out", b"7\n")
    shutil.rmtree(tmp_path / "out")  # e.g. a user clearing the output folder during a run
    store.put(f"{folder}/2.png.out", b"2\n")
    store.put_file(f"{folder}/3.png.out", folder / "2.png.out")
    assert sorted(p.name for p in folder.iterdir()) == ["2.png.out", "3.png.out"]
    assert (folder / "3.png.out").read_bytes() == b"2\n"


RANGES = [(0, None), (3, None), (0, 5), (4, 9), (2, 2), (12, None), (9, 40)]


@pytest.mark.parametrize(("start", "end"), RANGES)
def test_local_reads_give_the_range_or_what_the_file_holds_of_it(
    tmp_path: Path, start: int, end: int | None
) -> None:
    path = tmp_path / "object"
    path.write_bytes(b"0123456789")
    assert LocalStore().read(str(path), start, end) == b"0123456789"[start:end]
    with LocalStore().open(str(path), start, end) as stream:  # the stream agrees
        assert stream.read() == b"0123456789"[start:end]


def test_local_reads_of_large_empty_missing_and_folder_keys(tmp_path: Path) -> None:
    large = tmp_path / "large"
    large.write_bytes(bytes(range(256)) * 70_000)  # more than one COPY_CHUNK
    assert LocalStore().read(str(large)) == large.read_bytes()
    assert LocalStore().read(str(large), 17, 9_000_017) == large.read_bytes()[17:9_000_017]
    (tmp_path / "empty").write_bytes(b"")
    assert LocalStore().read(str(tmp_path / "empty")) == b""
    with pytest.raises(ObjectNotFound, match="missing: no such file"):
        LocalStore().read(str(tmp_path / "missing"))
    with pytest.raises(StorageError, match="Is a directory"):
        LocalStore().read(str(tmp_path))


def test_a_local_file_that_grew_since_its_size_was_taken_is_read_to_its_end(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "growing"
    path.write_bytes(b"x" * 100)
    real = os.fstat

    def stale(fd: int) -> os.stat_result:  # the size as it was before 90 bytes were appended
        found = real(fd)
        return os.stat_result((found.st_mode, *found[1:6], found.st_size - 90, *found[7:]))

    monkeypatch.setattr(os, "fstat", stale)
    assert LocalStore().read(str(path)) == b"x" * 100
    assert LocalStore().read(str(path), 5) == b"x" * 95
