"""examples/mnist-classifier end to end: one job, the `mnist` Model switched between the
PyTorch state_dict and the Keras SavedModel by re-applying a champion file, accuracy reported."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from example_support import EXAMPLES, kbt_run, load_example, retarget
from PIL import Image

EXAMPLE = EXAMPLES / "mnist-classifier"


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("mnist-work")
    load_example("mnist-classifier", "prepare").prepare(work=folder)
    return folder


def run_with_champion(work: Path, champion: str, tmp_path: Path) -> Path:
    """Run job.yaml (unchanged but for its folders) with `mnist` defined by champion-<name>.yaml."""
    job = retarget(EXAMPLE / "job.yaml", work, tmp_path)
    model = retarget(EXAMPLE / f"champion-{champion}.yaml", work, tmp_path)
    output = tmp_path / "predictions"
    job.write_text(job.read_text().replace(f"{work}/predictions/", f"{output}/"))
    kbt_run(job, "-m", model)
    return output


def torch_classes(work: Path, files: list[str]) -> list[int]:
    """The seed state_dict's classes for the files, computed here without kbt."""
    network = load_example("mnist-classifier", "mnist_mlp").MnistMLP()
    network.load_state_dict(torch.load(work / "models" / "torch" / "model.pt", weights_only=True))
    pixels = np.stack(
        [np.asarray(Image.open(work / "data" / f).convert("L"), dtype=np.float32) for f in files]
    )
    with torch.inference_mode():
        return network(torch.from_numpy(pixels.reshape(len(files), -1))).argmax(dim=1).tolist()


def test_champion_files_match_the_pinned_models() -> None:
    pinned = {
        doc["metadata"]["name"]: doc["spec"] for doc in yaml.safe_load_all((EXAMPLE / "models.yaml").open())
    }
    for name in ("torch", "keras"):
        champion = yaml.safe_load((EXAMPLE / f"champion-{name}.yaml").read_text())
        assert champion["metadata"]["name"] == "mnist"
        assert champion["spec"] == pinned[f"mnist-{name}"]


def test_torch_champion(work: Path, tmp_path: Path) -> None:
    output = run_with_champion(work, "torch", tmp_path)
    report = load_example("mnist-classifier", "report")
    predicted = report.classify(output)
    assert predicted["file"].tolist() == sorted(p.name for p in (work / "data").glob("*.png"))
    assert predicted["class"].tolist() == torch_classes(work, predicted["file"].tolist())
    table = report.score(predicted, report.pd.read_csv(report.LABELS))
    assert table["correct"].sum() >= 9  # a trained model; 8.png (a 5) is its one miss
    assert json.loads((output / "_manifest.json").read_text())["model"]["flavor"] == "pytorch"


def test_keras_champion(work: Path, tmp_path: Path) -> None:
    output = run_with_champion(work, "keras", tmp_path)
    report = load_example("mnist-classifier", "report")
    table = report.score(report.classify(output), report.pd.read_csv(report.LABELS))
    assert len(table) == 10
    assert table["correct"].all(), table
    assert ((table["probability"] > 0.1) & (table["probability"] <= 1.0)).all(), table
    first = (output / "predictions.csv").read_text().splitlines()[0].split(",")
    assert first[:2] == ["0.png", str(table["class"].iloc[0])]
    assert json.loads((output / "_manifest.json").read_text())["model"]["flavor"] == "tensorflow"
