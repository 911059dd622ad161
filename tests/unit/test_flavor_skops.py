"""skops loading without skops' estimator walk: the same trust as skops, names checked per file."""

from __future__ import annotations

import inspect
import subprocess
import sys
from pathlib import Path

import mlflow.sklearn
import numpy as np
import pandas as pd
import pytest
import skops.io
import yaml
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline

from kbt.api.models import ModelSpec
from kbt.flavors import ModelLoadError, load_predictor
from kbt.flavors.base import LoadContext, ModelInput, Record
from kbt.flavors.skops_loading import _listed_by_nearby_module, _walked_estimator_names, load_skops

STEP = """
from sklearn.base import BaseEstimator, TransformerMixin


class Doubler(BaseEstimator, TransformerMixin):
    def fit(self, frame, y=None):
        return self

    def transform(self, frame):
        return frame * 2
"""


@pytest.fixture(scope="module")
def training() -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(1)
    frame = pd.DataFrame(rng.normal(size=(60, 2)), columns=["a", "b"])
    return frame, (frame["a"] + frame["b"] > 0).astype(int).to_numpy()


@pytest.fixture
def custom_step(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A module with a transformer class of our own (a type skops does not trust by default)."""
    module = tmp_path / "kbt_test_step.py"
    module.write_text(STEP)
    monkeypatch.syspath_prepend(str(tmp_path))
    return module


def test_quick_check_agrees_with_the_walk_on_every_loaded_class() -> None:
    walked = _walked_estimator_names()  # the walk skops runs on import (seconds): once, here
    loaded = {
        f"{cls.__module__}.{cls.__qualname__}"
        for name, module in list(sys.modules.items())
        if name.startswith("sklearn.")
        for _, cls in inspect.getmembers(module, inspect.isclass)
        if cls.__module__.startswith("sklearn.")
    }
    accepted = {name for name in loaded | walked if _listed_by_nearby_module(name)}
    assert accepted <= walked  # never trusts what skops would not
    assert len(accepted) >= 0.95 * len(walked)  # and places nearly all without walking
    assert not _listed_by_nearby_module("sklearn.base.BaseEstimator")
    assert not _listed_by_nearby_module("sklearn.utils._bunch.Bunch")


def test_mlflow_skops_trust_comes_from_skops_trusted_types(
    tmp_path: Path, training: tuple[pd.DataFrame, np.ndarray], custom_step: Path
) -> None:
    from kbt_test_step import Doubler  # type: ignore[import-not-found]

    frame, labels = training
    model = make_pipeline(Doubler(), LogisticRegression()).fit(frame, labels)
    path = tmp_path / "model"
    mlflow.sklearn.save_model(
        model, path, serialization_format="skops", skops_trusted_types=["kbt_test_step.Doubler"]
    )
    spec = ModelSpec(uri=str(path), flavor="mlflow")
    predictor = load_predictor(LoadContext(spec, path, tmp_path))
    batch = ModelInput([Record("x.csv", i, b"") for i in range(len(frame))], frame=frame)
    np.testing.assert_array_equal(np.asarray(predictor.predict(batch)), model.predict(frame))

    mlmodel = yaml.safe_load((path / "MLmodel").read_text())
    del mlmodel["flavors"]["sklearn"]["skops_trusted_types"]
    (path / "MLmodel").write_text(yaml.safe_dump(mlmodel))
    with pytest.raises(ModelLoadError, match=r"not trusted: kbt_test_step\.Doubler; list them in"):
        load_predictor(LoadContext(spec, path, tmp_path))


def test_mlflow_models_obey_the_pickle_deserialization_gate(
    tmp_path: Path, training: tuple[pd.DataFrame, np.ndarray], monkeypatch: pytest.MonkeyPatch
) -> None:
    frame, labels = training
    path = tmp_path / "model"
    mlflow.sklearn.save_model(LogisticRegression().fit(frame, labels), path, serialization_format="skops")
    spec = ModelSpec(uri=str(path), flavor="mlflow")
    monkeypatch.setenv("MLFLOW_ALLOW_PICKLE_DESERIALIZATION", "false")
    with pytest.raises(ModelLoadError, match="disallowed because MLFLOW_ALLOW_PICKLE_DESERIALIZATION"):
        load_predictor(LoadContext(spec, path, tmp_path))
    monkeypatch.setenv("MLFLOW_ALLOW_PICKLE_DESERIALIZATION", "maybe")
    with pytest.raises(ModelLoadError, match="must be one of true, false, 1, 0"):
        load_predictor(LoadContext(spec, path, tmp_path))


def test_plain_skops_files_trust_their_types(
    tmp_path: Path, training: tuple[pd.DataFrame, np.ndarray], custom_step: Path
) -> None:
    from kbt_test_step import Doubler

    frame, labels = training
    model = make_pipeline(Doubler(), LogisticRegression()).fit(frame, labels)
    skops.io.dump(model, tmp_path / "model.skops")
    loaded = load_skops(tmp_path / "model.skops", trusted=None)  # the job's owner chose the file
    np.testing.assert_array_equal(loaded.predict(frame), model.predict(frame))
    with pytest.raises(ModelLoadError, match=r"not trusted: kbt_test_step\.Doubler"):
        load_skops(tmp_path / "model.skops", trusted=[])
    (tmp_path / "junk.skops").write_bytes(b"not a zip file")
    with pytest.raises(ModelLoadError, match="cannot read skops file"):
        load_skops(tmp_path / "junk.skops", trusted=None)


FRESH_LOAD = """
import sys
from pathlib import Path

from kbt.api.models import ModelSpec
from kbt.flavors import load_predictor
from kbt.flavors.base import LoadContext

path = Path(sys.argv[1])
load_predictor(LoadContext(ModelSpec(uri=str(path), flavor="mlflow"), path, path.parent))
markers = ("mlflow", "torch", "sklearn.gaussian_process", "sklearn.semi_supervised")
print(sorted(name for name in markers if name in sys.modules))
"""


def test_mlflow_skops_model_loads_without_mlflow_or_the_walk(
    tmp_path: Path, training: tuple[pd.DataFrame, np.ndarray]
) -> None:
    frame, labels = training
    path = tmp_path / "model"
    mlflow.sklearn.save_model(LogisticRegression().fit(frame, labels), path, serialization_format="skops")
    done = subprocess.run(
        [sys.executable, "-c", FRESH_LOAD, str(path)], check=False, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-3000:]
    # The walk would have imported every scikit-learn module (gaussian_process, semi_supervised, ...).
    assert done.stdout.strip().splitlines()[-1] == "[]"
