"""Custom outputs (files a scoring script writes to AZUREML_BI_OUTPUT_PATH) reach the output
store once per content version, under their relative path; kbt's own names are refused."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from kbt.flavors.base import ModelInput, ModelOutput, Record
from kbt.runner.custom_outputs import CustomOutputs, SyncedPredictor
from kbt.runner.errors import ConfigError
from kbt.runner.state import Layout
from kbt.storage import S3Settings, open_location


def outputs(tmp_path: Path) -> CustomOutputs:
    store, prefix = open_location(f"{tmp_path / 'out'}/", S3Settings())
    folder = tmp_path / "local"
    folder.mkdir()
    return CustomOutputs(folder, Layout(store, prefix, "fp"), frozenset({"_manifest.json", "all.csv"}))


def stored(synced: CustomOutputs) -> dict[str, bytes]:
    store = synced.layout.store
    return {info.key: store.read(info.key) for info in store.list_objects(synced.layout.prefix)}


def test_new_and_changed_files_are_uploaded_once_per_version(tmp_path: Path) -> None:
    synced = outputs(tmp_path)
    (synced.folder / "a.parquet").write_bytes(b"one")
    (synced.folder / "nested").mkdir()
    (synced.folder / "nested" / "b.txt").write_bytes(b"two")
    prefix = synced.layout.prefix
    assert synced.sync() == [f"{prefix}a.parquet", f"{prefix}nested/b.txt"]
    assert synced.sync() == []  # nothing changed
    path = synced.folder / "a.parquet"
    path.write_bytes(b"three!")
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 1))
    assert synced.sync() == [f"{prefix}a.parquet"]
    assert stored(synced) == {f"{prefix}a.parquet": b"three!", f"{prefix}nested/b.txt": b"two"}


@pytest.mark.parametrize("name", ["_manifest.json", "all.csv", "_kbt/x", "_errors/y"])
def test_names_kbt_writes_itself_are_refused(tmp_path: Path, name: str) -> None:
    synced = outputs(tmp_path)
    path = synced.folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")
    with pytest.raises(ConfigError, match=f"wrote {name} to AZUREML_BI_OUTPUT_PATH"):
        synced.sync()


class WritingPredictor:
    device = "cuda:0"

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def predict(self, batch: ModelInput) -> ModelOutput:
        (self.folder / f"{batch.records[0].source}.out").write_bytes(batch.records[0].data)
        if batch.records[0].data == b"bad":
            raise ValueError("bad record")
        return [1] * len(batch)


def test_synced_predictor_uploads_after_every_call_even_a_failed_one(tmp_path: Path) -> None:
    synced = outputs(tmp_path)
    predictor = SyncedPredictor(WritingPredictor(synced.folder), synced)
    assert predictor.device == "cuda:0"
    assert predictor.predict(ModelInput(records=[Record("a", 0, b"good")])) == [1]
    with pytest.raises(ValueError, match="bad record"):
        predictor.predict(ModelInput(records=[Record("b", 0, b"bad")]))
    prefix = synced.layout.prefix
    assert stored(synced) == {f"{prefix}a.out": b"good", f"{prefix}b.out": b"bad"}
