"""examples/imagenet-classifier end to end: the scoring-script job and the MLflow job must give
the same top-5 ImageNet labels; the 1001-name label file maps onto 1000 classes correctly."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from example_support import EXAMPLES, kbt_run, load_example, retarget

from kbt.datasets import dataset_root

EXAMPLE = EXAMPLES / "imagenet-classifier"
IMAGES = 4


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("imagenet-work")
    load_example("imagenet-classifier", "prepare").prepare(work=folder, images=IMAGES)
    return folder


def test_label_file_with_background_maps_to_1000_classes(tmp_path: Path) -> None:
    top5 = load_example("imagenet-classifier", "imagenet_top5")
    labels_file = dataset_root("imagenet") / "imagenet" / "ImageNetLabels.txt"
    labels = top5.load_labels(labels_file, 1000)
    assert len(labels) == 1000 and labels[0] == "tench" and labels[1] == "goldfish"
    probabilities = np.zeros((1, 1000), dtype=np.float32)
    probabilities[0, 1] = 0.9
    assert top5.top5(probabilities, labels)["label_1"].tolist() == ["goldfish"]
    short = tmp_path / "labels.txt"
    short.write_text("a\nb\n")
    with pytest.raises(ValueError, match="has 2 labels but the model predicts 1000 classes"):
        top5.load_labels(short, 1000)


@pytest.mark.slow  # ResNet50 on CPU, loaded twice (two packagings)
def test_script_and_mlflow_packagings_agree(
    work: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    kbt_run(retarget(EXAMPLE / "job.yaml", work, tmp_path))
    kbt_run(retarget(EXAMPLE / "job-mlflow.yaml", work, tmp_path))
    columns = [f"{kind}_{rank}" for rank in range(1, 6) for kind in ("label", "probability")]
    script = pd.read_csv(work / "predictions" / "predictions.csv", header=None, names=["file", *columns])
    mlflow = pd.read_csv(work / "predictions-mlflow" / "predictions.csv", header=None, names=columns)

    assert script["file"].tolist() == [f"goldfish-{n}.jpeg" for n in range(IMAGES)]
    assert script[[c for c in columns if c.startswith("label")]].equals(
        mlflow[[c for c in columns if c.startswith("label")]]
    )
    np.testing.assert_allclose(script[columns[1::2]].to_numpy(), mlflow[columns[1::2]].to_numpy(), atol=1e-4)

    known = set((work / "model" / "ImageNetLabels.txt").read_text().splitlines()[1:])
    probabilities = script[columns[1::2]].to_numpy()
    assert set(script[columns[0::2]].to_numpy().ravel()) <= known
    assert (np.diff(probabilities, axis=1) <= 0).all() and (probabilities <= 1).all()
