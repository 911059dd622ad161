"""The minimal script a user would write to score one record: import the framework, load, predict.

    python bench/compare/first_prediction.py FLAVOR MODEL INPUT OUTPUT

The baseline of the "time to first prediction" table: run as a fresh process and timed from
process start to exit, against ``kbt run`` on the same one-record input and model. It imports
only the standard library and the framework of FLAVOR (each loader imports its framework
lazily, so one flavor's imports are not charged to another), reads the one record, predicts it
and writes the prediction to OUTPUT. Flavors: sklearn, xgboost, mlflow-sklearn, torch, keras, hf.
"""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any


def sklearn(model: Path, record: Path) -> Any:
    import joblib  # noqa: PLC0415 (only this flavor's framework is imported)
    import pandas as pd  # noqa: PLC0415 (only this flavor's framework is imported)

    return joblib.load(next(model.glob("*.joblib"))).predict(pd.read_csv(record)).tolist()


def xgboost(model: Path, record: Path) -> Any:
    import numpy as np  # noqa: PLC0415 (only this flavor's framework is imported)
    import xgboost as xgb  # noqa: PLC0415 (only this flavor's framework is imported)

    booster = xgb.Booster(model_file=str(next(model.glob("*.json"))))
    with record.open() as handle:
        header = handle.readline().strip().split(",")
    values = np.loadtxt(record, delimiter=",", skiprows=1, ndmin=2)
    return booster.predict(xgb.DMatrix(values, feature_names=header)).tolist()


def mlflow_sklearn(model: Path, record: Path) -> Any:
    import mlflow.pyfunc  # noqa: PLC0415 (only this flavor's framework is imported)
    import pandas as pd  # noqa: PLC0415 (only this flavor's framework is imported)

    loaded = mlflow.pyfunc.load_model(str(model))
    return list(loaded.predict(pd.read_csv(record, dtype={"thal": str})))


def _gray_pixels(record: Path) -> Any:
    import numpy as np  # noqa: PLC0415 (only this flavor's framework is imported)
    from PIL import Image  # noqa: PLC0415 (only this flavor's framework is imported)

    with Image.open(record) as image:
        return np.asarray(image.convert("L"), dtype=np.float32)[None]  # (1, 28, 28)


def torch(model: Path, record: Path) -> Any:
    import torch as pt  # noqa: PLC0415 (only this flavor's framework is imported)

    sys.path.insert(0, str(model))
    from torch_nets import MnistDigits  # type: ignore[import-not-found]  # noqa: PLC0415 (the model's module)

    net = MnistDigits()
    net.load_state_dict(pt.load(model / "model.pt", map_location="cpu"))
    with pt.inference_mode():
        return net.eval()(pt.from_numpy(_gray_pixels(record).reshape(1, -1))).tolist()


def keras(model: Path, record: Path) -> Any:
    import tensorflow as tf  # noqa: PLC0415 (only this flavor's framework is imported)
    from tensorflow.python.saved_model import load_v1_in_v2  # noqa: PLC0415 (TF1-style SavedModel)

    signature = load_v1_in_v2.load(str(model), tags=["serve"]).signatures["serving_default"]
    name = next(iter(signature.structured_input_signature[1]))
    outputs = signature(**{name: tf.constant(_gray_pixels(record) / 255.0, dtype=tf.float32)})
    return [int(tf.argmax(tensor, axis=1)[0]) for tensor in outputs.values()]


def hf(model: Path, record: Path) -> Any:
    """Seq2seq generation (transformers 5 has no summarization pipeline; kbt generates too)."""
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer  # noqa: PLC0415 (only this framework)

    generation = json.loads((model / "bench-generation.json").read_text())
    csv.field_size_limit(sys.maxsize)
    with record.open(newline="") as handle:
        texts = [row["text"] for row in csv.DictReader(handle)]
    tokenizer = AutoTokenizer.from_pretrained(model)
    seq2seq = AutoModelForSeq2SeqLM.from_pretrained(model).eval()
    encoded = tokenizer(texts, truncation=True, padding=True, return_tensors="pt")
    return tokenizer.batch_decode(seq2seq.generate(**encoded, **generation), skip_special_tokens=True)


SCRIPTS: dict[str, Callable[[Path, Path], Any]] = {
    "sklearn": sklearn,
    "xgboost": xgboost,
    "mlflow-sklearn": mlflow_sklearn,
    "torch": torch,
    "keras": keras,
    "hf": hf,
}


def main() -> None:
    if len(sys.argv) != 5 or sys.argv[1] not in SCRIPTS:
        raise SystemExit(f"usage: first_prediction.py {{{','.join(SCRIPTS)}}} MODEL INPUT OUTPUT")
    flavor, model, record, output = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3]), Path(sys.argv[4])
    predictions = SCRIPTS[flavor](model, record)
    output.write_text("".join(f"{json.dumps(p, default=lambda o: o.item())}\n" for p in predictions))


if __name__ == "__main__":
    main()
