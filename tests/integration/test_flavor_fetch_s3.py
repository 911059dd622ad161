"""The runner's fetch_model against a real (moto) S3 server: prefixes, objects, model.tar.gz, errors."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LinearRegression

from kbt.api.models import ModelSpec
from kbt.flavors import ModelLoadError, load_predictor
from kbt.flavors.base import LoadContext, ModelInput, Record
from kbt.runner.model_fetch import fetch_model
from kbt.storage import S3Settings


def trained_model_bytes() -> tuple[bytes, LinearRegression]:
    frame = pd.DataFrame({"x": [0.0, 1.0, 2.0, 3.0]})
    model = LinearRegression().fit(frame, [1.0, 3.0, 5.0, 7.0])
    buffer = io.BytesIO()
    joblib.dump(model, buffer)
    return buffer.getvalue(), model


def predict(spec: ModelSpec, local: Path, scratch: Path) -> list[float]:
    predictor = load_predictor(LoadContext(spec, local, scratch))
    batch = ModelInput(records=[Record("in.csv", 0, b"10")], frame=pd.DataFrame({"x": [10.0]}))
    return np.asarray(predictor.predict(batch)).tolist()


def test_prefix_is_downloaded_with_its_layout(s3_client, bucket: str, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    payload, _ = trained_model_bytes()
    s3_client.put_object(Bucket=bucket, Key="models/heart/model.joblib", Body=payload)
    s3_client.put_object(Bucket=bucket, Key="models/heart/code/helper.py", Body=b"X = 1\n")
    s3_client.put_object(Bucket=bucket, Key="models/heart/", Body=b"")  # a console-made folder marker
    s3_client.put_object(Bucket=bucket, Key="models/heart2/other.joblib", Body=b"not this one")
    spec = ModelSpec(uri=f"s3://{bucket}/models/heart", flavor="sklearn")
    local = fetch_model(spec, tmp_path)
    files = sorted(str(p.relative_to(local)) for p in local.rglob("*") if p.is_file())
    assert files == ["code/helper.py", "model.joblib"]
    assert predict(spec, local, tmp_path) == pytest.approx([21.0])


def test_single_object_and_tarball(s3_client, bucket: str, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    payload, _ = trained_model_bytes()
    s3_client.put_object(Bucket=bucket, Key="single/model.joblib", Body=payload)
    spec = ModelSpec(uri=f"s3://{bucket}/single/model.joblib", flavor="sklearn")
    local = fetch_model(spec, tmp_path / "a")
    assert local.is_file() and local.name == "model.joblib"
    assert predict(spec, local, tmp_path) == pytest.approx([21.0])

    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w:gz") as tar:
        info = tarfile.TarInfo("model.joblib")
        info.size = len(payload)
        tar.addfile(info, io.BytesIO(payload))
    s3_client.put_object(Bucket=bucket, Key="sagemaker/model.tar.gz", Body=archive.getvalue())
    tar_spec = ModelSpec(uri=f"s3://{bucket}/sagemaker/model.tar.gz", flavor="sklearn")
    unpacked = fetch_model(tar_spec, tmp_path / "b")
    assert [p.name for p in unpacked.iterdir()] == ["model.joblib"]
    assert predict(tar_spec, unpacked, tmp_path) == pytest.approx([21.0])


def test_missing_models_are_load_errors(s3_client, bucket: str, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ModelLoadError, match=f"no object or prefix at s3://{bucket}/absent"):
        fetch_model(ModelSpec(uri=f"s3://{bucket}/absent", flavor="sklearn"), tmp_path)
    with pytest.raises(ModelLoadError, match="cannot fetch model s3://no-such-bucket-kbt/m"):
        fetch_model(ModelSpec(uri="s3://no-such-bucket-kbt/m", flavor="sklearn"), tmp_path)


def test_the_jobs_endpoint_is_used_not_only_the_environment(  # type: ignore[no-untyped-def]
    s3_client, s3_env: str, bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    payload, _ = trained_model_bytes()
    s3_client.put_object(Bucket=bucket, Key="by-spec/model.joblib", Body=payload)
    monkeypatch.delenv("AWS_ENDPOINT_URL_S3", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    spec = ModelSpec(uri=f"s3://{bucket}/by-spec/model.joblib", flavor="sklearn")
    local = fetch_model(spec, tmp_path, S3Settings(endpoint_url=s3_env, region="us-east-1"))
    assert predict(spec, local, tmp_path) == pytest.approx([21.0])
