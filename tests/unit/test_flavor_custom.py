"""Custom flavor: Azure ML scoring scripts (init/run) run unmodified on files and tables."""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import joblib
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from kbt.api.models import MiniBatchMode, ModelSpec
from kbt.flavors import ModelLoadError, load_predictor
from kbt.flavors.base import BatchRejected, LoadContext, ModelInput, Predictor, Record

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
MNIST_DIGITS = [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]  # what 0.png .. 9.png show

# In the style of Azure's mnist batch-deployment example: model folder from AZUREML_MODEL_DIR,
# a global model loaded in init(), run() over image file paths returning a DataFrame.
AZURE_IMAGE_SCRIPT = """
import glob
import os

import numpy as np
import pandas as pd
import torch
from PIL import Image

from mnist_mlp import MnistMLP


def init():
    global model
    model_path = glob.glob(os.environ["AZUREML_MODEL_DIR"] + "/*.pt")[0]
    model = MnistMLP()
    model.load_state_dict(torch.load(model_path))
    model.eval()


def run(mini_batch):
    print(f"run method start: {__file__}, run({len(mini_batch)} files)")
    results = []
    for image in mini_batch:
        data = np.asarray(Image.open(image), dtype=np.float32).reshape(1, 784)
        with torch.no_grad():
            scores = torch.softmax(model(torch.from_numpy(data)), dim=1)[0]
        results.append([os.path.basename(image), int(scores.argmax()), float(scores.max())])
    return pd.DataFrame(results, columns=["file", "class", "probability"])
"""

# Azure batch-endpoint tabular style: CSV file paths in, a DataFrame with one row per CSV row out.
AZURE_TABULAR_FILES_SCRIPT = """
import os
import joblib
import pandas as pd


def init():
    global model
    model = joblib.load(os.path.join(os.environ["AZUREML_MODEL_DIR"], "model.joblib"))


def run(mini_batch):
    results = []
    for file_path in mini_batch:
        data = pd.read_csv(file_path)
        df = pd.DataFrame(model.predict(data), columns=["predictions"])
        df["file"] = os.path.basename(file_path)
        results.append(df)
    return pd.concat(results)
"""

# Azure ParallelRunStep tabular style: the mini-batch is a DataFrame.
AZURE_DATAFRAME_SCRIPT = """
import os
import joblib


def init():
    global model
    model = joblib.load(os.path.join(os.environ["AZUREML_MODEL_DIR"], "model.joblib"))


def run(mini_batch):
    mini_batch["target"] = model.predict(mini_batch[["a", "b"]])
    return mini_batch[["id", "target"]].values.tolist()
"""

OWN_FILES_SCRIPT = """
import os


def init():
    global out
    out = os.environ["AZUREML_BI_OUTPUT_PATH"]


def run(mini_batch):
    for path in mini_batch:
        with open(os.path.join(out, os.path.basename(path) + ".len"), "w") as f:
            f.write(str(os.path.getsize(path)))
"""


@pytest.fixture(autouse=True)
def restore_azure_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AZUREML_MODEL_DIR", "AZUREML_BI_OUTPUT_PATH"):
        monkeypatch.setenv(name, "unset")


def write_script(folder: Path, source: str, name: str = "score.py") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(textwrap.dedent(source))
    return folder / name


def load(model: Path, script: Path, tmp_path: Path, **spec: object) -> Predictor:
    model_spec = ModelSpec(uri=str(model), flavor="custom", scoringScript=str(script), **spec)
    return load_predictor(LoadContext(model_spec, model, tmp_path / "scratch", output_dir=tmp_path / "out"))


@pytest.fixture
def tabular_model(tmp_path: Path) -> tuple[Path, LogisticRegression, pd.DataFrame]:
    frame = pd.DataFrame({"id": range(8), "a": [0, 1, 2, 3, 4, 5, 6, 7], "b": [1.0, 0, 1, 0, 1, 0, 1, 0]})
    model = LogisticRegression().fit(frame[["a", "b"]], (frame["a"] > 3).astype(int))
    (tmp_path / "model").mkdir()
    joblib.dump(model, tmp_path / "model" / "model.joblib")
    return tmp_path / "model", model, frame


def test_azure_image_script_gets_files_named_like_their_sources(tmp_path: Path, datasets: Path) -> None:
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    shutil.copy(datasets / "mnist" / "torch-model" / "model.pt", model_dir / "model.pt")
    script = write_script(tmp_path / "code", AZURE_IMAGE_SCRIPT)
    predictor = load(model_dir, script, tmp_path, codePaths=[str(FIXTURES / "mnist")])
    sources = [f"digits/{i}.png" for i in range(10)]
    records = [
        Record(source, 0, (datasets / "mnist" / "images" / Path(source).name).read_bytes())
        for source in sources
    ]
    output = predictor.predict(ModelInput(records=records, content_type="image/png"))
    assert isinstance(output, pd.DataFrame)
    assert output["file"].tolist() == [f"{i}.png" for i in range(10)]
    correct = sum(int(p == d) for p, d in zip(output["class"], MNIST_DIGITS, strict=True))
    assert correct >= 9
    assert not any((tmp_path / "scratch" / "custom-inputs").iterdir())  # scratch files cleaned up


def test_tabular_as_files_like_azure_batch_endpoints(
    tmp_path: Path, tabular_model: tuple[Path, LogisticRegression, pd.DataFrame]
) -> None:
    model_dir, model, frame = tabular_model
    script = write_script(tmp_path / "code", AZURE_TABULAR_FILES_SCRIPT)
    inputs = frame[["a", "b"]]
    records = [Record("part-1.csv" if i < 5 else "part-2.csv", i, b"") for i in range(len(frame))]
    model_spec = ModelSpec(uri=str(model_dir), flavor="custom", scoringScript=str(script))
    ctx = LoadContext(model_spec, model_dir, tmp_path / "scratch", mini_batch=MiniBatchMode.FILES)
    predictor = load_predictor(ctx)
    output = predictor.predict(ModelInput(records=records, frame=inputs, content_type="text/csv"))
    assert isinstance(output, pd.DataFrame)
    assert output["predictions"].tolist() == model.predict(inputs).tolist()
    assert output["file"].tolist() == ["part-1.csv"] * 5 + ["part-2.csv"] * 3


def test_tabular_as_dataframe(
    tmp_path: Path, tabular_model: tuple[Path, LogisticRegression, pd.DataFrame]
) -> None:
    model_dir, model, frame = tabular_model
    predictor = load(model_dir, write_script(model_dir, AZURE_DATAFRAME_SCRIPT), tmp_path)
    records = [Record("t.csv", i, b"") for i in range(len(frame))]
    output = predictor.predict(ModelInput(records=records[2:], frame=frame.iloc[2:], content_type="text/csv"))
    assert output == [
        [i, int(t)] for i, t in zip(frame["id"][2:], model.predict(frame[["a", "b"]][2:]), strict=True)
    ]


def test_script_writing_its_own_outputs(tmp_path: Path) -> None:
    predictor = load(tmp_path, write_script(tmp_path / "code", OWN_FILES_SCRIPT), tmp_path)
    records = [Record("blobs/a.bin", 0, b"abc"), Record("blobs/b.bin", 0, b"hello")]
    output = predictor.predict(ModelInput(records=records, content_type="application/octet-stream"))
    assert isinstance(output, pd.DataFrame) and output.shape == (2, 0)
    assert (tmp_path / "out" / "a.bin.len").read_text() == "3"
    assert (tmp_path / "out" / "b.bin.len").read_text() == "5"


def test_script_errors_are_named(tmp_path: Path) -> None:
    failing_init = write_script(
        tmp_path / "c1", "def init():\n    raise RuntimeError('no GPU')\n\ndef run(b):\n    return b\n"
    )
    with pytest.raises(ModelLoadError, match=r"score.py init\(\) failed: RuntimeError: no GPU at score.py:2"):
        load(tmp_path, failing_init, tmp_path)
    with pytest.raises(ModelLoadError, match=r"defines no run\(\) function"):
        load(tmp_path, write_script(tmp_path / "c2", "def init():\n    pass\n"), tmp_path)
    with pytest.raises(ModelLoadError, match=r"scoringScript 'absent\.py' not found"):
        load(tmp_path, Path("absent.py"), tmp_path)
    short = load(
        tmp_path,
        write_script(tmp_path / "c3", "def init():\n    pass\n\ndef run(b):\n    return b[:1]\n"),
        tmp_path,
    )
    records = [Record("x.bin", 0, b"1"), Record("y.bin", 0, b"2")]
    with pytest.raises(BatchRejected, match=r"score.py run\(\) returned 1 predictions for 2 records"):
        short.predict(ModelInput(records=records, content_type="application/octet-stream"))
    crashing = load(
        tmp_path,
        write_script(tmp_path / "c4", "def init():\n    pass\n\ndef run(b):\n    return 1 / 0\n"),
        tmp_path,
    )
    with pytest.raises(BatchRejected, match=r"starting at x.bin record 0: ZeroDivisionError"):
        crashing.predict(ModelInput(records=records, content_type="application/octet-stream"))
