"""TensorFlow/Keras flavor: .keras files, Keras 3 SavedModel exports, and the seed Keras 2 SavedModel."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from kbt.api.models import ModelSpec
from kbt.flavors import InputSchemaError, ModelLoadError, load_predictor
from kbt.flavors.base import LoadContext, ModelInput, Predictor, Record

MNIST_DIGITS = [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]  # what 0.png .. 9.png show (not their names)


@pytest.fixture(scope="module")
def tiny_keras(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, np.ndarray, np.ndarray]:
    """A two-output-class dense model saved as .keras and exported as a SavedModel, plus a
    probe input and the model's own predictions for it."""
    import keras

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((2, 3)), keras.layers.Flatten(), keras.layers.Dense(2)])
    folder = tmp_path_factory.mktemp("keras")
    model.save(folder / "model.keras")
    model.export(str(folder / "savedmodel"), verbose=False)
    probe = np.random.default_rng(0).normal(size=(5, 2, 3)).astype(np.float32)
    return folder / "model.keras", folder / "savedmodel", probe, np.asarray(model.predict_on_batch(probe))


def batch(**forms: object) -> ModelInput:
    first = next(iter(forms.values()))
    return ModelInput(records=[Record("in/x", i, b"") for i in range(len(first))], **forms)  # type: ignore[arg-type]


def load(path: Path) -> Predictor:
    return load_predictor(LoadContext(ModelSpec(uri=str(path), flavor="tensorflow"), path, path.parent))


def test_keras_file_reshapes_flat_rows_to_the_input_shape(
    tiny_keras: tuple[Path, Path, np.ndarray, np.ndarray],
) -> None:
    keras_file, _, probe, expected = tiny_keras
    predictor = load(keras_file)
    np.testing.assert_allclose(predictor.predict(batch(tensor=probe)), expected, rtol=1e-5)
    frame = pd.DataFrame(probe.reshape(5, 6))
    np.testing.assert_allclose(predictor.predict(batch(frame=frame)), expected, rtol=1e-5)
    assert predictor.device == "cpu"
    with pytest.raises(InputSchemaError, match=r"expects per-record shape \(2, 3\), got \(4,\)"):
        predictor.predict(batch(tensor=np.zeros((1, 4), dtype=np.float32)))


def test_savedmodel_export_through_serving_signature(
    tiny_keras: tuple[Path, Path, np.ndarray, np.ndarray],
) -> None:
    _, saved_model, probe, expected = tiny_keras
    with_channel = probe[..., None]  # (N, 2, 3, 1): same values, an extra axis to fit away
    output = load(saved_model).predict(batch(tensor=with_channel))
    np.testing.assert_allclose(output, expected, rtol=1e-5)


def test_load_errors(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("no model here")
    with pytest.raises(ModelLoadError, match=r"no TensorFlow model file \(.keras"):
        load(tmp_path)
    (tmp_path / "broken.keras").write_text("not a zip")
    with pytest.raises(ModelLoadError, match="cannot load TensorFlow model"):
        load(tmp_path / "broken.keras")


def test_seed_keras2_savedmodel_classifies_the_seed_images(datasets: Path) -> None:
    predictor = load(datasets / "mnist" / "keras-savedmodel")
    images = np.stack(
        [np.asarray(Image.open(datasets / "mnist" / "images" / f"{i}.png").convert("L")) for i in range(10)]
    ).astype(np.float32)[..., None]  # NHWC as the runner decodes grayscale images
    probabilities = np.asarray(predictor.predict(batch(tensor=images)))
    assert probabilities.shape == (10, 10)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-4)
    assert probabilities.argmax(axis=1).tolist() == MNIST_DIGITS
