"""ImageNet top-5 decoding shared by the scoring script and the MLflow model.

``ImageNetLabels.txt`` has 1001 names, index 0 being ``background`` (TF-Slim models predict
1001 classes); Keras ResNet50 predicts the 1000 real classes, so class ``i`` is line ``i + 1``.
``load_labels`` checks which case applies instead of silently shifting every label by one.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

TOP_K = 5
IMAGE_SIZE = (224, 224)
# keras.applications.resnet50.preprocess_input ("caffe" mode): RGB -> BGR, minus ImageNet means.
BGR_MEANS = np.array([103.939, 116.779, 123.68], dtype=np.float32)


def load_labels(path: Path, classes: int) -> list[str]:
    """The label of each of the model's `classes` outputs, in output order."""
    names = [line.strip() for line in path.read_text().splitlines() if line.strip()]
    if len(names) == classes:
        return names
    if len(names) == classes + 1 and names[0].lower() == "background":
        return names[1:]
    raise ValueError(
        f"{path.name} has {len(names)} labels but the model predicts {classes} classes "
        f"(expected {classes}, or {classes + 1} starting with 'background')"
    )


def preprocess(images: np.ndarray) -> np.ndarray:
    """(N, 224, 224, 3) RGB pixels 0..255 -> ResNet50's input (BGR, mean-subtracted)."""
    return images[..., ::-1].astype(np.float32) - BGR_MEANS


def top5(probabilities: np.ndarray, labels: list[str]) -> pd.DataFrame:
    """label_1..label_5 and probability_1..probability_5, most probable first, one row per image."""
    if probabilities.shape[1] != len(labels):
        raise ValueError(f"model returned {probabilities.shape[1]} classes for {len(labels)} labels")
    best = np.argsort(-probabilities, axis=1, kind="stable")[:, :TOP_K]
    columns: dict[str, list[object]] = {}
    for rank in range(TOP_K):
        columns[f"label_{rank + 1}"] = [labels[i] for i in best[:, rank]]
        columns[f"probability_{rank + 1}"] = [
            round(float(p), 6)
            for p in np.take_along_axis(probabilities, best[:, rank : rank + 1], axis=1)[:, 0]
        ]
    return pd.DataFrame(columns)
