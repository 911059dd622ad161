"""Flavor overhead on CPU: records/s through ``Predictor.predict`` vs a bare in-process loop.

For each model the same pre-decoded tensors are scored twice in the same process, in the same
mini-batches: once by calling the framework directly (the ceiling) and once through the kbt
flavor (``load_predictor`` + ``predict`` over ``ModelInput`` batches). The ratio flavor/ceiling
is the share of the ceiling the flavor keeps (1.00 = no overhead). Models: the seed MNIST
PyTorch MLP (state_dict) and Keras SavedModel, and a randomly initialised Keras ResNet50.

    .venv/bin/python bench/flavors_bench.py [--records 4000] [--resnet-records 32]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

from kbt.api.models import ModelSpec
from kbt.datasets import DatasetNotFoundError, dataset_root
from kbt.flavors import load_predictor
from kbt.flavors.base import LoadContext, ModelInput, Record

REPO = Path(__file__).resolve().parent.parent
MNIST_CLASS_DIR = REPO / "tests" / "fixtures" / "mnist"


def mnist_dir() -> Path:
    """The seed MNIST dataset, found by ``kbt.datasets`` ($KBT_DATASETS, then ../shared/datasets)."""
    return dataset_root("mnist") / "mnist"


def mnist_tensor(records: int) -> np.ndarray:
    images = [np.asarray(Image.open(mnist_dir() / "images" / f"{i}.png").convert("L")) for i in range(10)]
    tiled = np.stack(images * (records // 10 + 1))[:records]
    return tiled.astype(np.float32)[..., None]  # NHWC, raw 0..255, as the runner decodes them


def batches(tensor: np.ndarray, size: int) -> list[ModelInput]:
    out = []
    for start in range(0, len(tensor), size):
        chunk = tensor[start : start + size]
        records = [Record(f"bench/{start + i}.png", 0, b"") for i in range(len(chunk))]
        out.append(ModelInput(records=records, tensor=chunk, content_type="image/png"))
    return out


def rate(run: Callable[[], None], records: int, repeats: int = 3) -> float:
    run()  # warm-up: lazy initialisation, graph tracing, allocator
    best = min(_timed(run) for _ in range(repeats))
    return records / best


def _timed(run: Callable[[], None]) -> float:
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def report(name: str, ceiling: float, flavor: float) -> None:
    print(
        f"{name:<28} ceiling {ceiling:>10.0f} rec/s   flavor {flavor:>10.0f} rec/s   "
        f"ratio {flavor / ceiling:5.2f}"
    )


def bench_torch_mnist(tensor: np.ndarray, batch_size: int, scratch: Path) -> None:
    import torch

    sys.path.insert(0, str(MNIST_CLASS_DIR))
    from mnist_mlp import MnistMLP

    weights = mnist_dir() / "torch-model" / "model.pt"
    model = MnistMLP()
    model.load_state_dict(torch.load(weights, weights_only=True))
    model.eval()

    def ceiling() -> None:
        with torch.inference_mode():
            for start in range(0, len(tensor), batch_size):
                model(torch.from_numpy(tensor[start : start + batch_size])).numpy()

    spec = ModelSpec(
        uri=str(weights), flavor="pytorch", modelClass="mnist_mlp:MnistMLP", codePaths=[str(MNIST_CLASS_DIR)]
    )
    predictor = load_predictor(LoadContext(spec, weights, scratch))
    inputs = batches(tensor, batch_size)
    report(
        "mnist torch state_dict",
        rate(ceiling, len(tensor)),
        rate(lambda: _all(predictor, inputs), len(tensor)),
    )


def bench_keras_mnist(tensor: np.ndarray, batch_size: int, scratch: Path) -> None:
    import tensorflow as tf
    from tensorflow.python.saved_model import load_v1_in_v2

    path = mnist_dir() / "keras-savedmodel"
    signature = load_v1_in_v2.load(str(path), tags=["serve"]).signatures["serving_default"]
    name = next(iter(signature.structured_input_signature[1]))
    flat = tensor[..., 0]

    def ceiling() -> None:
        for start in range(0, len(flat), batch_size):
            signature(**{name: tf.constant(flat[start : start + batch_size])})["softmax"].numpy()

    predictor = load_predictor(LoadContext(ModelSpec(uri=str(path), flavor="tensorflow"), path, scratch))
    inputs = batches(tensor, batch_size)
    report(
        "mnist keras SavedModel",
        rate(ceiling, len(tensor)),
        rate(lambda: _all(predictor, inputs), len(tensor)),
    )


def bench_keras_resnet50(records: int, batch_size: int, scratch: Path) -> None:
    import keras

    model = keras.applications.ResNet50(weights=None)
    path = scratch / "resnet50.keras"
    model.save(path)
    images = np.random.default_rng(0).uniform(0, 255, size=(records, 224, 224, 3)).astype(np.float32)

    def ceiling() -> None:
        for start in range(0, records, batch_size):
            model.predict_on_batch(images[start : start + batch_size])

    predictor = load_predictor(LoadContext(ModelSpec(uri=str(path), flavor="tensorflow"), path, scratch))
    inputs = batches(images, batch_size)
    report(
        "resnet50 keras (random)",
        rate(ceiling, records, repeats=1),
        rate(lambda: _all(predictor, inputs), records, repeats=1),
    )


def _all(predictor: object, inputs: list[ModelInput]) -> None:
    for batch in inputs:
        predictor.predict(batch)  # type: ignore[attr-defined]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--records", type=int, default=4000, help="MNIST records per pass")
    parser.add_argument("--batch-size", type=int, default=200, help="MNIST mini-batch size")
    parser.add_argument("--resnet-records", type=int, default=32, help="ResNet50 images per pass (0: skip)")
    args = parser.parse_args()
    try:
        tensor = mnist_tensor(args.records)
    except DatasetNotFoundError as exc:
        raise SystemExit(f"bench/flavors_bench.py: {exc}") from None
    print(f"CPU, {os.cpu_count()} cores; best of 3 passes (ResNet50: 1) after a warm-up pass")
    with tempfile.TemporaryDirectory() as scratch:
        bench_torch_mnist(tensor, args.batch_size, Path(scratch))
        bench_keras_mnist(tensor, args.batch_size, Path(scratch))
        if args.resnet_records:
            bench_keras_resnet50(args.resnet_records, 16, Path(scratch))


if __name__ == "__main__":
    main()
