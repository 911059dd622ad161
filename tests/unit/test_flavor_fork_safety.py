"""Which loaded models `kbt run` may fork workers from (`fork_safe`): scikit-learn, XGBoost on CPU
and the MLflow models kbt loads without mlflow; never TensorFlow, torch, scripts or mlflow pyfunc."""

from __future__ import annotations

from pathlib import Path

import mlflow.pyfunc
import mlflow.sklearn
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from kbt.api.models import ModelSpec
from kbt.flavors import fork_safe


@pytest.mark.parametrize(
    ("flavor", "safe"),
    [
        ("sklearn", True),
        ("xgboost", True),  # on a node without an NVIDIA GPU, as here
        ("pytorch", False),
        ("transformers", False),
        ("tensorflow", False),
        ("custom", False),
    ],
)
def test_flavors(tmp_path: Path, flavor: str, safe: bool) -> None:
    extra = {"scoringScript": "score.py"} if flavor == "custom" else {}
    extra |= {"task": "text-classification"} if flavor == "transformers" else {}
    assert fork_safe(ModelSpec(uri=str(tmp_path), flavor=flavor, **extra), tmp_path) is safe


def test_mlflow_models_fork_only_when_kbt_loads_them(tmp_path: Path) -> None:
    frame = pd.DataFrame({"x": [0.0, 1.0, 2.0, 3.0]})
    mlflow.sklearn.save_model(LogisticRegression().fit(frame, [0, 0, 1, 1]), tmp_path / "sk")

    class Echo(mlflow.pyfunc.PythonModel):  # type: ignore[misc,name-defined]
        def predict(self, context: object, model_input: pd.DataFrame, params: object = None) -> pd.DataFrame:
            return model_input

    mlflow.pyfunc.save_model(tmp_path / "custom", python_model=Echo(), pip_requirements=[])
    assert fork_safe(ModelSpec(uri=str(tmp_path / "sk"), flavor="mlflow"), tmp_path / "sk")
    assert not fork_safe(ModelSpec(uri=str(tmp_path / "custom"), flavor="mlflow"), tmp_path / "custom")
    assert not fork_safe(ModelSpec(uri="models:/heart/1", flavor="mlflow"), Path(""))
