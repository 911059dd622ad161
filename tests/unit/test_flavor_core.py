"""Flavor plumbing without a framework: dispatch, OOM backoff, device choice, outputs, file names."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from kbt.api.models import ModelSpec
from kbt.flavors import FLAVOR_MODULES, DeviceOutOfMemoryError, ModelLoadError, load_predictor
from kbt.flavors.backoff import is_out_of_memory, predict_with_backoff
from kbt.flavors.base import BatchRejected, LoadContext, ModelInput, Record
from kbt.flavors.custom_flavor import record_file_names
from kbt.flavors.device import choose_device, keras_dtype_policy, torch_dtype
from kbt.flavors.errors import RecordsRejected
from kbt.flavors.outputs import array_rows, named_arrays_frame
from kbt.runner.model_fetch import fetch_model


def make_batch(count: int) -> ModelInput:
    records = [Record("data/part.csv", i, f"{i}".encode()) for i in range(count)]
    return ModelInput(
        records=records,
        frame=pd.DataFrame({"x": range(count)}),
        tensor=np.arange(count, dtype=np.float32).reshape(count, 1),
        texts=[str(i) for i in range(count)],
    )


def test_every_flavor_has_a_module() -> None:
    from kbt.api.models import Flavor

    assert set(FLAVOR_MODULES) == set(Flavor)


def test_load_predictor_exports_environment_and_reports_missing_models(tmp_path: Path) -> None:
    spec = ModelSpec(uri=str(tmp_path), flavor="sklearn")
    ctx = LoadContext(spec, tmp_path, tmp_path, environment={"KBT_TEST_FLAVOR_ENV": "set"})
    with pytest.raises(ModelLoadError, match="no scikit-learn model file"):
        load_predictor(ctx)
    import os

    assert os.environ["KBT_TEST_FLAVOR_ENV"] == "set"


def test_fetch_local_and_file_uris(tmp_path: Path) -> None:
    model = tmp_path / "my model.pkl"
    model.write_bytes(b"x")
    assert fetch_model(ModelSpec(uri=str(model), flavor="sklearn"), tmp_path) == model
    assert (
        fetch_model(ModelSpec(uri="file://" + str(model).replace(" ", "%20"), flavor="sklearn"), tmp_path)
        == model
    )
    with pytest.raises(ModelLoadError, match="model not found"):
        fetch_model(ModelSpec(uri=str(tmp_path / "absent"), flavor="sklearn"), tmp_path)


def test_fetch_leaves_mlflow_uris_to_the_mlflow_flavor(tmp_path: Path) -> None:
    spec = ModelSpec(uri="models:/heart@champion", flavor="mlflow")
    assert fetch_model(spec, tmp_path) == Path("")


def test_backoff_halves_on_cuda_oom_and_keeps_order() -> None:
    sizes: list[int] = []

    def predict(batch: ModelInput) -> np.ndarray:
        sizes.append(len(batch))
        if len(batch) > 3:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        assert batch.frame is not None and batch.tensor is not None and batch.texts is not None
        assert list(batch.frame["x"]) == [r.index for r in batch.records] == [int(t) for t in batch.texts]
        return batch.tensor[:, 0] * 10

    output = predict_with_backoff(predict, make_batch(10))
    assert list(output) == [i * 10 for i in range(10)]
    assert sizes == [10, 5, 2, 3, 5, 2, 3]


def test_backoff_joins_frames_and_lists() -> None:
    frames = predict_with_backoff(
        _oom_above(1, lambda b: pd.DataFrame({"y": b.frame["x"] + 1})), make_batch(4)
    )
    assert list(frames["y"]) == [1, 2, 3, 4]
    lists = predict_with_backoff(_oom_above(2, lambda b: list(b.texts or [])), make_batch(5))
    assert lists == ["0", "1", "2", "3", "4"]


def _oom_above(limit: int, fn):  # type: ignore[no-untyped-def]
    def predict(batch: ModelInput):  # type: ignore[no-untyped-def]
        if len(batch) > limit:
            raise RuntimeError("CUDA error: out of memory")
        return fn(batch)

    return predict


def test_backoff_gives_up_on_a_single_record_and_passes_other_errors() -> None:
    def always_oom(batch: ModelInput) -> np.ndarray:
        raise torch.cuda.OutOfMemoryError("CUDA out of memory")

    with pytest.raises(DeviceOutOfMemoryError, match=r"data/part.csv record 0"):
        predict_with_backoff(always_oom, make_batch(3))

    def broken(batch: ModelInput) -> np.ndarray:
        raise ValueError("bad input")

    with pytest.raises(ValueError, match="bad input"):
        predict_with_backoff(broken, make_batch(3))
    assert not is_out_of_memory(ValueError("out of memory"))


def test_device_choice() -> None:
    auto = ModelSpec(uri="m", flavor="pytorch")
    assert choose_device(auto, 0, "torch") == "cpu"
    assert choose_device(auto, 2, "torch") == "cuda:0"
    assert choose_device(ModelSpec(uri="m", flavor="pytorch", device="cpu"), 2, "torch") == "cpu"
    with pytest.raises(ModelLoadError, match="cuda but torch sees no GPU"):
        choose_device(ModelSpec(uri="m", flavor="pytorch", device="cuda"), 0, "torch")


def test_precision_applies_on_gpu_only() -> None:
    half = ModelSpec(uri="m", flavor="pytorch", precision="fp16")
    assert torch_dtype(half, "cpu") == torch.float32
    assert torch_dtype(half, "cuda:0") == torch.float16
    assert torch_dtype(ModelSpec(uri="m", flavor="pytorch", precision="bf16"), "cuda:0") == torch.bfloat16
    assert keras_dtype_policy(half, "cpu") is None
    assert keras_dtype_policy(half, "cuda:0") == "mixed_float16"


def test_output_rows() -> None:
    assert array_rows(np.zeros((3, 2), dtype=np.float16), 3, "m").dtype == np.float32  # type: ignore[union-attr]
    assert array_rows(np.zeros((2, 2, 2)), 2, "m") == [[[0.0, 0.0], [0.0, 0.0]]] * 2
    with pytest.raises(BatchRejected, match="m returned 2 predictions for 3 records"):
        array_rows(np.zeros(2), 3, "m")
    frame = named_arrays_frame({"label": np.array([1, 2]), "probs": np.eye(2)}, 2, "m")
    assert list(frame.columns) == ["label", "probs_0", "probs_1"]


def test_records_rejected_lists_positions_and_reasons() -> None:
    error = RecordsRejected({7: "b.csv record 7: bad", 2: "a.csv record 2: bad"})
    assert list(error.problems) == [2, 7]
    assert str(error).startswith("2 record(s) do not match")
    assert isinstance(error, BatchRejected)


def test_custom_file_names_keep_whole_objects_and_number_split_records() -> None:
    records = [
        Record("images/3.png", 0, b""),
        Record("texts/a.txt", 4, b""),
        Record("texts/a.txt", 5, b""),
        Record("../escape.bin", 0, b""),
    ]
    names = [str(name) for name in record_file_names(records)]
    assert names == ["images/3.png", "texts/a-4.txt", "texts/a-5.txt", "escape.bin"]
