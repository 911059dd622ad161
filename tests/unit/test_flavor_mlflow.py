"""MLflow flavor on local model directories: signature enforcement and pyfunc for PyTorch models."""

from __future__ import annotations

from pathlib import Path

import mlflow.pyfunc
import mlflow.sklearn
import numpy as np
import pandas as pd
import pytest
from mlflow.models import infer_signature
from mlflow.pyfunc import PyFuncModel
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder

from kbt.api.models import ModelSpec
from kbt.flavors import InputSchemaError, ModelLoadError, RecordsRejected, load_predictor
from kbt.flavors.base import LoadContext, ModelInput, Predictor, Record
from kbt.flavors.mlflow_flavor import MlflowPredictor


@pytest.fixture(scope="module")
def heart_like(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object, pd.DataFrame]:
    """An MLflow sklearn pipeline with a long, a double and a string column in its signature."""
    frame = pd.DataFrame(
        {
            "age": np.array([63, 37, 41, 56, 57, 57, 56, 44], dtype=np.int64),
            "oldpeak": [2.3, 3.5, 1.4, 0.8, 0.6, 0.4, 1.3, 0.0],
            "thal": ["fixed", "normal", "normal", "reversible", "normal", "fixed", "normal", "reversible"],
        }
    )
    labels = [1, 0, 0, 1, 0, 1, 0, 1]
    model = make_pipeline(
        ColumnTransformer(
            [("thal", OneHotEncoder(handle_unknown="ignore"), ["thal"])], remainder="passthrough"
        ),
        LogisticRegression(),
    ).fit(frame, labels)
    path = tmp_path_factory.mktemp("mlflow") / "model"
    signature = infer_signature(frame, model.predict(frame))
    mlflow.sklearn.save_model(model, path, signature=signature, pip_requirements=["scikit-learn"])
    return path, model, frame


def load(path: Path, tmp_path: Path) -> Predictor:
    return load_predictor(LoadContext(ModelSpec(uri=str(path), flavor="mlflow"), path, tmp_path))


def batch(frame: pd.DataFrame) -> ModelInput:
    return ModelInput(records=[Record("heart-0.csv", i, b"") for i in range(len(frame))], frame=frame)


def test_predicts_with_columns_converted_to_the_signature(
    tmp_path: Path, heart_like: tuple[Path, object, pd.DataFrame]
) -> None:
    path, model, frame = heart_like
    predictor = load(path, tmp_path)
    # As a CSV reader may hand them over: all strings, other column order, an extra column.
    as_text = frame.astype(str)[["thal", "oldpeak", "age"]].assign(extra="ignored")
    output = predictor.predict(batch(as_text))
    np.testing.assert_array_equal(np.asarray(output), model.predict(frame))  # type: ignore[attr-defined]
    assert predictor.device == "cpu"


def test_bad_values_reject_only_their_records(
    tmp_path: Path, heart_like: tuple[Path, object, pd.DataFrame]
) -> None:
    path, _, frame = heart_like
    dirty = frame.astype(object)
    dirty.loc[2, "age"] = "forty"
    dirty.loc[5, "age"] = 57.5
    dirty.loc[5, "oldpeak"] = "n/a"
    with pytest.raises(RecordsRejected) as rejected:
        load(path, tmp_path).predict(batch(dirty))
    problems = rejected.value.problems
    assert sorted(problems) == [2, 5]
    assert problems[2] == "heart-0.csv record 2: column 'age' expects long, got 'forty'"
    assert "column 'age' expects long, got 57.5" in problems[5]
    assert "column 'oldpeak' expects double, got 'n/a'" in problems[5]


def test_missing_column_fails_the_whole_input(
    tmp_path: Path, heart_like: tuple[Path, object, pd.DataFrame]
) -> None:
    path, _, frame = heart_like
    with pytest.raises(InputSchemaError, match=r"needs column\(s\) 'thal' \(string\) which the input lacks"):
        load(path, tmp_path).predict(batch(frame.drop(columns="thal")))


def test_not_an_mlflow_model(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="no MLmodel file"):
        load(tmp_path, tmp_path)


def test_mlflow_pytorch_model_through_pyfunc_with_tensor_signature(tmp_path: Path) -> None:
    import mlflow.pytorch
    import torch

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(6, 3)).eval()
    probe = np.random.default_rng(0).normal(size=(4, 2, 3)).astype(np.float32)
    with torch.no_grad():
        expected = net(torch.from_numpy(probe)).numpy()
    mlflow.pytorch.save_model(
        net,
        tmp_path / "torch",
        signature=infer_signature(probe, expected),
        input_example=probe,
        pip_requirements=["torch"],
    )
    predictor = load(tmp_path / "torch", tmp_path)
    flat = ModelInput(
        records=[Record("x", i, b"") for i in range(4)], frame=pd.DataFrame(probe.reshape(4, 6))
    )
    np.testing.assert_allclose(np.asarray(predictor.predict(flat)), expected, rtol=1e-5)  # reshaped to (2, 3)
    with pytest.raises(
        InputSchemaError, match=r"expects per-record tensor shape \(2, 3\), the input has \(5,\)"
    ):
        predictor.predict(
            ModelInput(records=[Record("x", 0, b"")], tensor=np.zeros((1, 5), dtype=np.float32))
        )


def _pyfunc_predictions(path: Path, frame: pd.DataFrame) -> np.ndarray:
    return np.asarray(mlflow.pyfunc.load_model(str(path)).predict(frame))


@pytest.mark.parametrize("serialization", ["skops", "pickle", "cloudpickle"])
def test_sklearn_models_load_without_mlflow_and_predict_as_pyfunc(
    tmp_path: Path, heart_like: tuple[Path, object, pd.DataFrame], serialization: str
) -> None:
    _, model, frame = heart_like
    path = tmp_path / "model"
    mlflow.sklearn.save_model(
        model,
        path,
        signature=infer_signature(frame, model.predict(frame)),  # type: ignore[attr-defined]
        serialization_format=serialization,
        pyfunc_predict_fn="predict_proba",
        pip_requirements=["scikit-learn"],
    )
    predictor = load(path, tmp_path)
    assert isinstance(predictor, MlflowPredictor) and not isinstance(predictor.model, PyFuncModel)
    assert predictor.rows_independent  # kbt sizes its calls (kbt.runner.callsize)
    as_text = frame.astype(str)[["thal", "oldpeak", "age"]]
    np.testing.assert_array_equal(
        np.asarray(predictor.predict(batch(as_text))), _pyfunc_predictions(path, frame)
    )


@pytest.mark.parametrize("model_class", ["XGBClassifier", "Booster"])
def test_xgboost_models_load_without_mlflow_and_predict_as_pyfunc(tmp_path: Path, model_class: str) -> None:
    import mlflow.xgboost
    import xgboost as xgb

    rng = np.random.default_rng(2)
    frame = pd.DataFrame(rng.normal(size=(40, 3)), columns=["a", "b", "c"])
    classifier = xgb.XGBClassifier(n_estimators=4, max_depth=2).fit(frame, (frame["a"] > 0).astype(int))
    model = classifier if model_class == "XGBClassifier" else classifier.get_booster()
    path = tmp_path / "model"
    mlflow.xgboost.save_model(
        model, path, signature=infer_signature(frame, classifier.predict(frame)), pip_requirements=["xgboost"]
    )
    predictor = load(path, tmp_path)
    assert isinstance(predictor, MlflowPredictor) and not isinstance(predictor.model, PyFuncModel)
    assert predictor.rows_independent  # kbt sizes its calls (kbt.runner.callsize)
    np.testing.assert_allclose(
        np.asarray(predictor.predict(batch(frame[["c", "a", "b"]]))), _pyfunc_predictions(path, frame)
    )


def test_custom_pyfunc_models_load_through_mlflow(tmp_path: Path) -> None:
    class AddOne(mlflow.pyfunc.PythonModel):  # type: ignore[misc,name-defined]
        def predict(self, context: object, model_input: pd.DataFrame, params: object = None) -> pd.Series:
            return model_input["x"] + 1

    frame = pd.DataFrame({"x": [1.0, 2.0]})
    mlflow.pyfunc.save_model(tmp_path / "model", python_model=AddOne(), pip_requirements=[])
    predictor = load(tmp_path / "model", tmp_path)
    assert isinstance(predictor, MlflowPredictor)
    assert getattr(predictor.model, "__self__", None).__class__ is PyFuncModel
    assert not predictor.rows_independent  # user code: it sees exactly the mini-batches
    assert list(predictor.predict(batch(frame))) == [2.0, 3.0]
