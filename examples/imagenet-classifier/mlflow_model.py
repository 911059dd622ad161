"""The ResNet50 classifier as an MLflow pyfunc model: decoded images in, top-5 labels out.

kbt decodes the JPEGs (``imagePreprocessing``: RGB, 224x224, NHWC, pixels 0..255) and hands the
tensor to ``predict``, which applies ResNet50's preprocessing and returns label_1..5 and
probability_1..5 per image.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from imagenet_top5 import load_labels, preprocess, top5
from mlflow.pyfunc.model import PythonModel, PythonModelContext


class ResNet50Top5(PythonModel):
    def load_context(self, context: PythonModelContext) -> None:
        import keras  # noqa: PLC0415 (heavy: keras loads tensorflow)

        self.model = keras.saving.load_model(context.artifacts["model"], compile=False)
        self.labels = load_labels(Path(context.artifacts["labels"]), int(self.model.output_shape[-1]))

    def predict(
        self, context: PythonModelContext, model_input: Any, params: dict[str, Any] | None = None
    ) -> pd.DataFrame:
        images = np.asarray(model_input, dtype=np.float32)
        return top5(np.asarray(self.model.predict_on_batch(preprocess(images))), self.labels)
