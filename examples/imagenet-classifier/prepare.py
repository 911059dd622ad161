"""Build the ImageNet example: ResNet50 with random weights, as .keras and as an MLflow model.

``work/model/`` holds ``resnet50.keras`` (``keras.applications.ResNet50(weights=None)``, seeded),
``ImageNetLabels.txt`` and the scoring script; ``work/mlflow-model/`` the same network as an
MLflow pyfunc model; ``work/data/`` copies of goldfish.JPEG. No weights are downloaded, so the
labels are those of an untrained network: the point is the plumbing, not the accuracy. With
``--s3-endpoint`` everything is uploaded to ``s3://data/imagenet/``, ``s3://models/imagenet/``
and ``s3://models/imagenet-mlflow/``.

    python examples/imagenet-classifier/prepare.py [--images 4] [--s3-endpoint URL]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]

from imagenet_top5 import IMAGE_SIZE  # noqa: E402

from staging import copy_files, dataset, fresh_dir, run, upload_tree  # noqa: E402

WORK = HERE / "work"
MODEL_CODE = [HERE / "score.py", HERE / "imagenet_top5.py"]


def save_keras_model(model_dir: Path) -> Path:
    import keras  # noqa: PLC0415 (heavy: keras loads tensorflow)

    keras.utils.set_random_seed(0)
    model = keras.applications.ResNet50(weights=None, classes=1000)
    copy_files([dataset("imagenet") / "ImageNetLabels.txt", *MODEL_CODE], model_dir)
    path = model_dir / "resnet50.keras"
    model.save(path)
    return path


def save_mlflow_model(keras_path: Path, target: Path) -> None:
    from mlflow.models import ModelSignature  # noqa: PLC0415 (heavy: mlflow costs seconds)
    from mlflow.types import Schema, TensorSpec  # noqa: PLC0415 (heavy: mlflow costs seconds)

    shutil.rmtree(target, ignore_errors=True)
    signature = ModelSignature(inputs=Schema([TensorSpec(np.dtype("float32"), (-1, *IMAGE_SIZE, 3))]))
    with warnings.catch_warnings():
        # The explicit tensor signature replaces MLflow's type-hint and input-example inference.
        warnings.filterwarnings("ignore", category=UserWarning, module="mlflow")
        _save_pyfunc(target, keras_path, signature)


def _save_pyfunc(target: Path, keras_path: Path, signature: Any) -> None:
    import mlflow.pyfunc  # noqa: PLC0415 (heavy: mlflow costs seconds)
    from mlflow_model import ResNet50Top5  # noqa: PLC0415 (heavy: imports mlflow)

    mlflow.pyfunc.save_model(
        str(target),
        python_model=ResNet50Top5(),
        artifacts={"model": str(keras_path), "labels": str(dataset("imagenet") / "ImageNetLabels.txt")},
        code_paths=[str(HERE / "mlflow_model.py"), str(HERE / "imagenet_top5.py")],
        signature=signature,
        pip_requirements=["keras", "tensorflow", "pandas", "pillow"],
    )


def stage_images(data_dir: Path, copies: int) -> None:
    fresh_dir(data_dir)
    for number in range(copies):
        shutil.copy2(dataset("imagenet") / "goldfish.JPEG", data_dir / f"goldfish-{number}.jpeg")


def prepare(work: Path = WORK, images: int = 4, s3_endpoint: str | None = None) -> None:
    keras_path = save_keras_model(work / "model")
    save_mlflow_model(keras_path, work / "mlflow-model")
    stage_images(work / "data", images)
    if s3_endpoint:
        upload_tree(work / "data", "s3://data/imagenet/", s3_endpoint)
        upload_tree(work / "model", "s3://models/imagenet/", s3_endpoint)
        upload_tree(work / "mlflow-model", "s3://models/imagenet-mlflow/", s3_endpoint)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=4, help="copies of goldfish.JPEG to score")
    parser.add_argument("--s3-endpoint", help="also upload inputs and models to this S3 endpoint")
    args = parser.parse_args()
    prepare(images=args.images, s3_endpoint=args.s3_endpoint)
    print(f"models: {WORK / 'model'}, {WORK / 'mlflow-model'}   inputs: {WORK / 'data'}")


if __name__ == "__main__":
    run(main)
