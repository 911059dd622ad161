"""scikit-learn and XGBoost flavors on tiny models trained here, saved in every supported format."""

from __future__ import annotations

import pickle
import subprocess
import sys
from pathlib import Path

import joblib
import mlflow.sklearn
import numpy as np
import pandas as pd
import pytest
import skops.io
import xgboost as xgb
from sklearn.linear_model import LogisticRegression

from kbt.api.models import ModelSpec
from kbt.flavors import InputSchemaError, ModelLoadError, load_predictor
from kbt.flavors.base import BatchRejected, LoadContext, ModelInput, Predictor, Record

FEATURES = ["age", "chol", "thalach"]


@pytest.fixture(scope="module")
def training() -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(80, 3)) * [10, 40, 20] + [50, 240, 150], columns=FEATURES)
    labels = ((frame["age"] - 50) / 10 + (frame["chol"] - 240) / 40 > 0).astype(int).to_numpy()
    return frame, labels


def batch_of(frame: pd.DataFrame) -> ModelInput:
    return ModelInput(records=[Record("in/heart.csv", i, b"") for i in range(len(frame))], frame=frame)


def load(path: Path, flavor: str, **spec: object) -> Predictor:
    return load_predictor(LoadContext(ModelSpec(uri=str(path), flavor=flavor, **spec), path, path.parent))


@pytest.mark.parametrize("suffix", [".skops", ".joblib", ".pkl"])
def test_sklearn_formats_predict_like_the_estimator(
    tmp_path: Path, training: tuple[pd.DataFrame, np.ndarray], suffix: str
) -> None:
    frame, labels = training
    model = LogisticRegression().fit(frame, labels)
    path = tmp_path / f"model{suffix}"
    if suffix == ".skops":
        skops.io.dump(model, path)
    elif suffix == ".joblib":
        joblib.dump(model, path)
    else:
        path.write_bytes(pickle.dumps(model))
    predictor = load(tmp_path, "sklearn")  # the directory: the one model file is found
    extra = frame.assign(id=range(len(frame)))[["id", "thalach", "chol", "age"]]  # reordered, extra id
    np.testing.assert_array_equal(predictor.predict(batch_of(extra)), model.predict(frame))
    assert predictor.device == "cpu"


def test_sklearn_predict_proba_has_a_column_per_class(
    tmp_path: Path, training: tuple[pd.DataFrame, np.ndarray]
) -> None:
    frame, labels = training
    model = LogisticRegression().fit(frame, labels)
    joblib.dump(model, tmp_path / "model.joblib")
    proba = load(tmp_path / "model.joblib", "sklearn", predictMethod="predict_proba").predict(batch_of(frame))
    assert isinstance(proba, pd.DataFrame) and list(proba.columns) == ["0", "1"]
    np.testing.assert_allclose(proba.to_numpy(), model.predict_proba(frame))


def test_sklearn_errors_name_the_problem(tmp_path: Path, training: tuple[pd.DataFrame, np.ndarray]) -> None:
    frame, labels = training
    joblib.dump(LogisticRegression().fit(frame, labels), tmp_path / "model.joblib")
    predictor = load(tmp_path / "model.joblib", "sklearn")
    with pytest.raises(InputSchemaError, match=r"column\(s\) 'chol' which the input lacks"):
        predictor.predict(batch_of(frame.drop(columns="chol")))
    with pytest.raises(BatchRejected, match=r"in/heart.csv record 0"):
        predictor.predict(batch_of(frame.assign(age="old")))
    from sklearn.svm import LinearSVC

    joblib.dump(LinearSVC().fit(frame, labels), tmp_path / "svc.joblib")
    with pytest.raises(ModelLoadError, match=r"LinearSVC .* has no predict_proba\(\)"):
        load(tmp_path / "svc.joblib", "sklearn", predictMethod="predict_proba")
    (tmp_path / "junk.pkl").write_bytes(b"not a pickle")
    with pytest.raises(ModelLoadError, match="cannot unpickle"):
        load(tmp_path / "junk.pkl", "sklearn")


@pytest.mark.parametrize("suffix", [".json", ".ubj"])
def test_xgboost_native_booster(
    tmp_path: Path, training: tuple[pd.DataFrame, np.ndarray], suffix: str
) -> None:
    frame, labels = training
    classifier = xgb.XGBClassifier(n_estimators=5, max_depth=2).fit(frame, labels)
    classifier.get_booster().save_model(str(tmp_path / f"model{suffix}"))
    predictor = load(tmp_path / f"model{suffix}", "xgboost")
    shuffled = frame[["thalach", "age", "chol"]]
    np.testing.assert_array_equal(predictor.predict(batch_of(shuffled)), classifier.predict(frame))
    proba = load(tmp_path / f"model{suffix}", "xgboost", predictMethod="predict_proba").predict(
        batch_of(frame)
    )
    assert isinstance(proba, pd.DataFrame)
    np.testing.assert_allclose(proba.to_numpy(), classifier.predict_proba(frame), rtol=1e-6)
    with pytest.raises(InputSchemaError, match="'age'"):
        predictor.predict(batch_of(frame.drop(columns="age")))


def test_xgboost_multiclass_and_regression(tmp_path: Path, training: tuple[pd.DataFrame, np.ndarray]) -> None:
    frame, labels = training
    classes = labels + (frame["thalach"] > 150).to_numpy().astype(int)
    multi = xgb.XGBClassifier(n_estimators=4, max_depth=2).fit(frame, classes)
    multi.get_booster().save_model(str(tmp_path / "multi.json"))
    np.testing.assert_array_equal(
        load(tmp_path / "multi.json", "xgboost").predict(batch_of(frame)), multi.predict(frame)
    )
    regressor = xgb.XGBRegressor(n_estimators=4).fit(frame, frame["chol"] * 2)
    regressor.get_booster().save_model(str(tmp_path / "reg.json"))
    np.testing.assert_allclose(
        load(tmp_path / "reg.json", "xgboost").predict(batch_of(frame)), regressor.predict(frame), rtol=1e-6
    )
    with pytest.raises(ModelLoadError, match="predict_proba needs a classifier"):
        load(tmp_path / "reg.json", "xgboost", predictMethod="predict_proba")


def test_xgboost_sklearn_pickle_goes_through_sklearn(
    tmp_path: Path, training: tuple[pd.DataFrame, np.ndarray]
) -> None:
    frame, labels = training
    classifier = xgb.XGBClassifier(n_estimators=3).fit(frame, labels)
    joblib.dump(classifier, tmp_path / "model.joblib")
    predictor = load(tmp_path / "model.joblib", "xgboost", predictMethod="predict_proba")
    np.testing.assert_allclose(predictor.predict(batch_of(frame)).to_numpy(), classifier.predict_proba(frame))  # type: ignore[union-attr]


FRESH_LOAD = """
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from kbt.api.models import ModelSpec
from kbt.flavors import load_predictor
from kbt.flavors.base import LoadContext, ModelInput, Record

path, flavor = Path(sys.argv[1]), sys.argv[2]
predictor = load_predictor(LoadContext(ModelSpec(uri=str(path), flavor=flavor), path, path.parent))
frame = pd.DataFrame({"age": [30.0, 70.0], "chol": [180.0, 300.0], "thalach": [150.0, 150.0]})
print(list(np.asarray(predictor.predict(ModelInput([Record("x", i, b"") for i in range(2)], frame=frame)))))
print("torch loaded" if "torch" in sys.modules else "torch not loaded")
import sklearn.externals.array_api_compat.torch  # still importable when wanted
print("torch loaded" if "torch" in sys.modules else "torch not loaded")
"""


@pytest.mark.parametrize("packaging", ["skops file", "mlflow skops"])
def test_skops_models_load_without_importing_torch_and_predict(
    tmp_path: Path, training: tuple[pd.DataFrame, np.ndarray], packaging: str
) -> None:
    frame, labels = training
    model = LogisticRegression().fit(frame, labels)
    if packaging == "skops file":
        path, flavor = tmp_path / "model.skops", "sklearn"
        skops.io.dump(model, path)
    else:
        path, flavor = tmp_path / "mlflow-model", "mlflow"
        mlflow.sklearn.save_model(model, path, serialization_format="skops")
    done = subprocess.run(
        [sys.executable, "-c", FRESH_LOAD, str(path), flavor], check=False, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-3000:]
    probe = pd.DataFrame({"age": [30.0, 70.0], "chol": [180.0, 300.0], "thalach": [150.0, 150.0]})
    predicted, before, after = done.stdout.strip().splitlines()[-3:]
    assert predicted == str(list(model.predict(probe)))
    assert (before, after) == ("torch not loaded", "torch loaded")
