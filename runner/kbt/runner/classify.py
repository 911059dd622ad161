"""Class scores -> top classes: the ``classify`` option of a Model.

A classifier returns one row of scores per record (probabilities or logits). With
``classify: {topK: k, labels: [...]}`` each row becomes its k best classes, best first: columns
``class``, ``probability`` for k = 1, else ``class_1``, ``probability_1``, ... ``class_k``,
``probability_k``. A class is its label when ``labels`` is given, else its index. An output
that is not one row of numbers per record is a configuration error for the whole job.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from kbt.api.models import ClassifyOptions
from kbt.frames import is_frame
from kbt.runner.errors import ConfigError

if TYPE_CHECKING:
    import pandas as pd


def _scores(predictions: pd.DataFrame | list[object]) -> np.ndarray:
    try:
        if is_frame(predictions):
            scores = predictions.to_numpy(dtype=np.float64)
        else:
            scores = np.asarray(predictions, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"model classify: the model's output is not class scores ({exc})") from exc
    if scores.ndim != 2 or scores.shape[1] == 0:
        raise ConfigError(
            "model classify: needs one row of class scores per record, "
            f"the model returned shape {scores.shape}"
        )
    return scores


def top_classes(predictions: pd.DataFrame | list[object], options: ClassifyOptions) -> pd.DataFrame:
    """Rows of class scores (a frame or a list of lists) as the top classes and their scores."""
    import pandas as pd  # noqa: PLC0415 (lazy: see kbt.frames)

    scores = _scores(predictions)
    labels = options.labels
    if labels is not None and len(labels) != scores.shape[1]:
        raise ConfigError(
            f"model classify.labels has {len(labels)} names "
            f"but the model returns {scores.shape[1]} class scores"
        )
    k = min(options.topK, scores.shape[1])
    best = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    best_scores = np.take_along_axis(scores, best, axis=1)
    columns: dict[str, object] = {}
    for rank in range(k):
        suffix = "" if options.topK == 1 else f"_{rank + 1}"
        indexes = best[:, rank]
        columns[f"class{suffix}"] = [labels[i] for i in indexes] if labels is not None else indexes
        columns[f"probability{suffix}"] = best_scores[:, rank]
    return pd.DataFrame(columns)
