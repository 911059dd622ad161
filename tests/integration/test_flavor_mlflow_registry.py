"""MLflow registry URIs (models:/name/version, models:/name@alias, runs:/) against a real
`mlflow server` on loopback (sqlite backend, artifacts proxied into a temp folder)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LinearRegression

from kbt.api.models import ModelSpec
from kbt.flavors import ModelLoadError, load_predictor
from kbt.flavors.base import LoadContext, ModelInput, Record
from kbt.runner.model_fetch import fetch_model

SERVER_START_SECONDS = 120  # the server imports all of MLflow twice: ~20 s on 2 busy cores
QUIET = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false", "MLFLOW_DISABLE_TELEMETRY": "true"}
pytestmark = pytest.mark.slow


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    folder = tmp_path_factory.mktemp("mlflow-server")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [
        str(Path(sys.executable).parent / "mlflow"),
        "server",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
        "--backend-store-uri",
        f"sqlite:///{folder / 'mlflow.db'}",
        "--artifacts-destination",
        str(folder / "artifacts"),
    ]
    log = (folder / "server.log").open("w")
    server = subprocess.Popen(
        command, stdout=log, stderr=subprocess.STDOUT, cwd=folder, env={**os.environ, **QUIET}
    )
    try:
        deadline = time.monotonic() + SERVER_START_SECONDS
        while True:
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=1) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"mlflow server did not start: {(folder / 'server.log').read_text()[-2000:]}")
            time.sleep(0.3)
        yield url
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


@pytest.fixture(scope="module")
def registered(mlflow_server: str) -> dict[str, str]:
    """Two versions of model `heart`: v1 doubles x, v2 triples it and holds alias `champion`."""
    import mlflow
    import mlflow.sklearn
    from mlflow import MlflowClient

    previous = {name: os.environ.get(name) for name in ("MLFLOW_TRACKING_URI", *QUIET)}
    os.environ.update({"MLFLOW_TRACKING_URI": mlflow_server, **QUIET})
    try:
        frame = pd.DataFrame({"x": [0.0, 1.0, 2.0]})
        run_ids = {}
        for factor in (2, 3):
            model = LinearRegression().fit(frame, frame["x"] * factor)
            with mlflow.start_run() as run:
                mlflow.sklearn.log_model(
                    model,
                    name="model",
                    registered_model_name="heart",
                    pip_requirements=["scikit-learn"],
                    await_registration_for=0,
                )
            run_ids[factor] = run.info.run_id
        MlflowClient().set_registered_model_alias("heart", "champion", "2")
    finally:
        for name, value in previous.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    return {"run_v1": run_ids[2]}


def predict_ten(uri: str, scratch: Path) -> float:
    spec = ModelSpec(uri=uri, flavor="mlflow")
    local = fetch_model(spec, scratch)
    predictor = load_predictor(LoadContext(spec, local, scratch))
    batch = ModelInput(records=[Record("in.csv", 0, b"10")], frame=pd.DataFrame({"x": [10.0]}))
    return float(np.asarray(predictor.predict(batch))[0])


def test_version_alias_and_run_uris(
    mlflow_server: str, registered: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server)
    assert predict_ten("models:/heart/1", tmp_path / "a") == pytest.approx(20.0)
    assert predict_ten("models:/heart@champion", tmp_path / "b") == pytest.approx(30.0)
    assert predict_ten(f"runs:/{registered['run_v1']}/model", tmp_path / "c") == pytest.approx(20.0)


def test_registry_uris_for_other_flavors_are_downloaded(
    mlflow_server: str, registered: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server)
    local = fetch_model(
        ModelSpec(uri="models:/heart@champion", flavor="custom", scoringScript="s.py"), tmp_path
    )
    assert (local / "MLmodel").is_file()
    assert any(path.name.startswith("model.") for path in local.iterdir())  # the pickled estimator


def test_unknown_versions_and_missing_tracking_uri(
    mlflow_server: str, registered: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server)
    with pytest.raises(ModelLoadError, match=f"cannot resolve models:/heart/9 at {mlflow_server}"):
        predict_ten("models:/heart/9", tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    with pytest.raises(ModelLoadError, match="MLFLOW_TRACKING_URI is not set"):
        predict_ten("models:/heart/1", tmp_path)
