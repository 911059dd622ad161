"""Azure ML-style scoring script: ResNet50 (.keras) over JPEG files, top-5 ImageNet labels out.

``init()`` loads ``resnet50.keras`` and ``ImageNetLabels.txt`` from ``AZUREML_MODEL_DIR``;
``run(mini_batch)`` gets a list of image file paths and returns one row per image: file,
label_1..5 and probability_1..5.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from imagenet_top5 import IMAGE_SIZE, load_labels, preprocess, top5
from PIL import Image

loaded: dict[str, Any] = {}  # what init() loads once per process: the model and its labels


def init() -> None:
    import keras  # noqa: PLC0415 (heavy: keras loads tensorflow)

    model_dir = Path(os.environ["AZUREML_MODEL_DIR"])
    model = keras.saving.load_model(model_dir / "resnet50.keras", compile=False)
    loaded["model"] = model
    loaded["labels"] = load_labels(model_dir / "ImageNetLabels.txt", int(model.output_shape[-1]))


def read_image(path: str) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(
            image.convert("RGB").resize(IMAGE_SIZE, Image.Resampling.BILINEAR), dtype=np.float32
        )


def run(mini_batch: list[str]) -> pd.DataFrame:
    images = np.stack([read_image(path) for path in mini_batch])
    probabilities = np.asarray(loaded["model"].predict_on_batch(preprocess(images)))
    result = top5(probabilities, loaded["labels"])
    result.insert(0, "file", [Path(path).name for path in mini_batch])
    return result
