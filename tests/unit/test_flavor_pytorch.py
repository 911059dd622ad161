"""PyTorch flavor: TorchScript, torch.export, state_dict + modelClass, and the seed MNIST model."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from kbt.api.models import ModelSpec
from kbt.flavors import InputSchemaError, ModelLoadError, load_predictor
from kbt.flavors.base import BatchRejected, LoadContext, ModelInput, Predictor, Record

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
# What the ten seed images show (verified by eye; the file names are not the digits).
MNIST_DIGITS = {0: 7, 1: 2, 2: 1, 3: 0, 4: 4, 5: 1, 6: 4, 7: 9, 8: 5, 9: 9}

TINY_MODULE = """
import torch
from torch import nn


class Tiny(nn.Module):
    def __init__(self, inputs: int = 4, outputs: int = 3) -> None:
        super().__init__()
        self.linear = nn.Linear(inputs, outputs)
        self.dropout = nn.Dropout(0.9)

    def forward(self, x):
        return self.dropout(self.linear(x))
"""


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, torch.nn.Module]:
    """A folder with the Tiny class module, and a Tiny instance (dropout: eval mode matters)."""
    folder = tmp_path_factory.mktemp("tiny")
    (folder / "tiny_net.py").write_text(TINY_MODULE)
    spec = importlib.util.spec_from_file_location("tiny_net", folder / "tiny_net.py")
    assert spec is not None and spec.loader is not None
    tiny_net = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tiny_net)
    torch.manual_seed(0)
    return folder, tiny_net.Tiny().eval()


def batch(values: np.ndarray) -> ModelInput:
    return ModelInput(records=[Record("x.csv", i, b"") for i in range(len(values))], tensor=values)


def load(path: Path, **spec: object) -> Predictor:
    return load_predictor(LoadContext(ModelSpec(uri=str(path), flavor="pytorch", **spec), path, path.parent))


def expected(module: torch.nn.Module, values: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return module(torch.tensor(values)).numpy()  # type: ignore[no-any-return]


def test_torchscript(tmp_path: Path, tiny: tuple[Path, torch.nn.Module]) -> None:
    _, module = tiny
    torch.jit.script(module).save(str(tmp_path / "model.pt"))
    values = np.random.default_rng(1).normal(size=(5, 4)).astype(np.float32)
    predictor = load(tmp_path)
    output = predictor.predict(batch(values))
    np.testing.assert_allclose(output, expected(module, values), rtol=1e-5)  # eval mode: no dropout
    assert predictor.device == "cpu"


def test_torch_export_program_with_dynamic_batch(tmp_path: Path, tiny: tuple[Path, torch.nn.Module]) -> None:
    _, module = tiny
    program = torch.export.export(
        module, (torch.zeros(2, 4),), dynamic_shapes=({0: torch.export.Dim("batch")},)
    )
    torch.export.save(program, tmp_path / "model.pt2")
    values = np.random.default_rng(2).normal(size=(7, 4)).astype(np.float32)
    np.testing.assert_allclose(
        load(tmp_path / "model.pt2").predict(batch(values)), expected(module, values), rtol=1e-5
    )


def test_state_dict_with_model_class_and_frame_input(
    tmp_path: Path, tiny: tuple[Path, torch.nn.Module]
) -> None:
    folder, module = tiny
    torch.save(module.state_dict(), tmp_path / "weights.pth")
    predictor = load(tmp_path / "weights.pth", modelClass="tiny_net:Tiny", codePaths=[str(folder)])
    frame = pd.DataFrame(np.arange(12, dtype=np.float64).reshape(3, 4), columns=list("abcd"))
    output = predictor.predict(ModelInput(records=[Record("t.csv", i, b"") for i in range(3)], frame=frame))
    np.testing.assert_allclose(output, expected(module, frame.to_numpy(np.float32)), rtol=1e-5)
    with pytest.raises(InputSchemaError, match="column\\(s\\) d are not numeric"):
        predictor.predict(ModelInput(records=[Record("t.csv", 0, b"")], frame=frame.head(1).assign(d="x")))
    with pytest.raises(BatchRejected, match=r"shape \(1, 2\)"):
        predictor.predict(batch(np.zeros((1, 2), dtype=np.float32)))


def test_state_dict_errors(tmp_path: Path, tiny: tuple[Path, torch.nn.Module]) -> None:
    folder, module = tiny
    torch.save(module.state_dict(), tmp_path / "weights.pt")
    with pytest.raises(ModelLoadError, match="is a state_dict: set modelClass"):
        load(tmp_path / "weights.pt")
    with pytest.raises(ModelLoadError, match="does not fit tiny_net:Tiny"):
        load(
            tmp_path / "weights.pt",
            modelClass="tiny_net:Tiny",
            modelClassArgs={"outputs": 5},
            codePaths=[str(folder)],
        )
    with pytest.raises(ModelLoadError, match="cannot import module 'absent_module'"):
        load(tmp_path / "weights.pt", modelClass="absent_module:Net")
    with pytest.raises(ModelLoadError, match="has no 'Missing'"):
        load(tmp_path / "weights.pt", modelClass="tiny_net:Missing", codePaths=[str(folder)])


def mnist_images(datasets: Path) -> np.ndarray:
    """The ten seed PNGs as an (N, 28, 28, 1) float batch of raw 0..255 pixels (NHWC, like the runner)."""
    images = [
        np.asarray(Image.open(datasets / "mnist" / "images" / f"{i}.png").convert("L")) for i in range(10)
    ]
    return np.stack(images).astype(np.float32)[..., None]


def test_seed_mnist_state_dict_classifies_the_seed_images(datasets: Path) -> None:
    predictor = load(
        datasets / "mnist" / "torch-model" / "model.pt",
        modelClass="mnist_mlp:MnistMLP",
        codePaths=[str(FIXTURES / "mnist")],
    )
    logits = predictor.predict(batch(mnist_images(datasets)))
    assert np.asarray(logits).shape == (10, 10)
    predicted = np.asarray(logits).argmax(axis=1)
    correct = sum(int(predicted[i] == digit) for i, digit in MNIST_DIGITS.items())
    assert correct >= 9, f"predicted {predicted.tolist()}"  # this small MLP reads the 5 in 8.png as a 6
