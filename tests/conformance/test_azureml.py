"""Conformance: Azure ML batch deployments, as documented, against a real S3 server (moto).

Each case states one documented Azure behaviour (input, settings, expected bytes) and cites the
page and section it comes from. Azure's own published scoring scripts run byte for byte from
``azureml_scripts/`` (MIT, Azure/azureml-examples); the others are written here in the shape the
cited page shows. Docs cited:

- SCORING = "Author scoring scripts for batch deployments",
  https://learn.microsoft.com/azure/machine-learning/how-to-batch-scoring-script
- CUSTOM = "Customize outputs in batch deployments",
  https://learn.microsoft.com/azure/machine-learning/how-to-deploy-model-custom-output
"""

from __future__ import annotations

import io
import json
import pickle
import textwrap
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder

from harness.lost_markers import forget_items
from kbt.api.models import BatchTransformJobSpec
from kbt.api.resolved import ResolvedJob
from kbt.runner.shard import run_shard

SCRIPTS = Path(__file__).parent / "azureml_scripts"
HEART_FILES = [f"heart-unlabeled-{i}.csv" for i in range(4)]

# Records what each run() call got: one JSON file per call under AZUREML_BI_OUTPUT_PATH.
RECORDING_SCRIPT = """
import json, os
import pandas as pd

def init():
    global output_path, calls
    output_path, calls = os.environ["AZUREML_BI_OUTPUT_PATH"], 0

def run(mini_batch):
    global calls
    calls += 1
    files = {os.path.basename(p): len(pd.read_csv(p)) for p in mini_batch}
    with open(os.path.join(output_path, f"call-{calls}.json"), "w") as f:
        json.dump(files, f)
    return mini_batch
"""

# init() of the scripts below: the pickled model, found as the published script finds it.
LOAD_PICKLED_MODEL = """
import glob, os, pickle
import pandas as pd

def init():
    global model
    with open(glob.glob(os.environ["AZUREML_MODEL_DIR"] + "/*/*.pkl")[-1], "rb") as f:
        model = pickle.load(f)
"""

# A generator run(): one DataFrame per file, yielded (SCORING, "The run method").
GENERATOR_SCRIPT = (
    LOAD_PICKLED_MODEL
    + """
def run(mini_batch):
    for file_path in mini_batch:
        data = pd.read_csv(file_path)
        yield pd.DataFrame({"file": os.path.basename(file_path), "prediction": model.predict(data)})
"""
)

# The DataFrame-returning shape of SCORING, "The run method" (one row per input row).
DATAFRAME_SCRIPT = (
    LOAD_PICKLED_MODEL
    + """
def run(mini_batch):
    results = []
    for file_path in mini_batch:
        data = pd.read_csv(file_path)
        results.append(pd.DataFrame({"file": os.path.basename(file_path), "prediction": model.predict(data)}))
    return pd.concat(results)
"""
)


@pytest.fixture(scope="module")
def heart_model(tmp_path_factory: pytest.TempPathFactory, datasets: Path) -> tuple[Path, Pipeline]:
    """A scikit-learn pipeline pickled at ``<model>/model/model.pkl`` (what the script globs)."""
    train = pd.read_csv(datasets / "heart" / "train" / "heart.csv")
    features = train.drop(columns=["target"])
    features["thal"] = features["thal"].astype(str)
    encode = ColumnTransformer(
        [("thal", OneHotEncoder(handle_unknown="ignore"), ["thal"])], remainder="passthrough"
    )
    model = Pipeline([("encode", encode), ("classify", LogisticRegression(max_iter=2000))])
    model.fit(features, train["target"])
    root = tmp_path_factory.mktemp("heart-model")
    (root / "model").mkdir()
    (root / "model" / "model.pkl").write_bytes(pickle.dumps(model))
    return root, model


def upload_heart(s3_client: Any, bucket: str, datasets: Path) -> dict[str, bytes]:
    files = {name: (datasets / "heart" / "unlabeled" / name).read_bytes() for name in HEART_FILES}
    for name, data in files.items():
        s3_client.put_object(Bucket=bucket, Key=f"in/{name}", Body=data)
    return files


def azure_job(bucket: str, model: Path, script: Path, **spec: Any) -> ResolvedJob:
    """An Azure-shaped job: a scoring script over unframed CSV files (kbt.api.azureml)."""
    output = spec.pop("output", {})
    parsed = BatchTransformJobSpec.model_validate(
        {
            "transformInput": {
                "contentType": "text/csv",
                "dataSource": {"s3DataSource": {"s3Uri": f"s3://{bucket}/in/"}},
            },
            "transformOutput": {"s3OutputPath": f"s3://{bucket}/out/", **output},
            "transformResources": {"instanceType": "ml.m5.large"},
            "model": {"uri": str(model), "flavor": "custom", "scoringScript": str(script)},
            "s3": {"addressingStyle": "path"},
            "errorThreshold": -1,  # the published deployments' error_threshold
            **spec,
        }
    )
    assert parsed.model is not None
    return ResolvedJob(name="azure", spec=parsed, model=parsed.model, model_ref="inline")


def keys(s3_client: Any, bucket: str, prefix: str = "out/") -> list[str]:
    pages = s3_client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return sorted(o["Key"] for page in pages for o in page.get("Contents", []))


def body(s3_client: Any, bucket: str, key: str) -> bytes:
    return s3_client.get_object(Bucket=bucket, Key=key)["Body"].read()  # type: ignore[no-any-return]


def user_keys(s3_client: Any, bucket: str) -> list[str]:
    return [k for k in keys(s3_client, bucket) if not k.startswith(("out/_kbt/", "out/_manifest.json"))]


def write_script(folder: Path, source: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "score.py"
    path.write_text(textwrap.dedent(source))
    return path


def expected_parquet(data: bytes, model: Pipeline) -> pd.DataFrame:
    frame = pd.read_csv(io.BytesIO(data))
    frame["prediction"] = model.predict(frame)
    return frame


# CUSTOM, "Creating a batch driver script" and "Analyzing the outputs": the published
# custom-outputs-parquet script writes <input stem>.parquet to AZUREML_BI_OUTPUT_PATH for every
# input file (output_action summary_only, mini_batch_size 2); the job's output holds one parquet
# file per input file, each with all of that file's rows and a `prediction` column.
def test_published_custom_outputs_parquet_script(
    s3_client: Any,
    bucket: str,
    datasets: Path,
    heart_model: tuple[Path, Pipeline],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    model_dir, model = heart_model
    monkeypatch.setenv("KBT_SCRATCH_DIR", str(tmp_path / "scratch"))
    files = upload_heart(s3_client, bucket, datasets)
    script = SCRIPTS / "custom-outputs-parquet" / "batch_driver.py"
    job = azure_job(bucket, model_dir, script, miniBatchSize=2, output={"outputAction": "summaryOnly"})
    result = run_shard(job, 0)
    assert result.finalized and result.failed == 0
    assert user_keys(s3_client, bucket) == [f"out/{Path(n).stem}.parquet" for n in HEART_FILES]
    for name, data in files.items():
        stored = pd.read_parquet(io.BytesIO(body(s3_client, bucket, f"out/{Path(name).stem}.parquet")))
        pd.testing.assert_frame_equal(stored, expected_parquet(data, model))
    manifest = json.loads(body(s3_client, bucket, "out/_manifest.json"))
    assert manifest["outputs"] == [f"s3://{bucket}/out/{Path(n).stem}.parquet" for n in HEART_FILES]
    assert not any((tmp_path / "scratch").iterdir())  # the shard's scratch folder is removed


# CUSTOM (custom outputs must survive a retry, written exactly once): a shard that died after some
# work items were marked done reruns only the others; every custom output is there once, unchanged.
def test_custom_outputs_resume_after_a_lost_shard(
    s3_client: Any, bucket: str, datasets: Path, heart_model: tuple[Path, Pipeline]
) -> None:
    model_dir, model = heart_model
    files = upload_heart(s3_client, bucket, datasets)
    script = SCRIPTS / "custom-outputs-parquet" / "batch_driver.py"
    job = azure_job(bucket, model_dir, script, miniBatchSize=1, output={"outputAction": "summaryOnly"})
    run_shard(job, 0)
    first = user_keys(s3_client, bucket)
    # the state a shard leaves when it dies while scoring the third file: that item unmarked, the
    # shard and the job unfinished, the file's custom output not (or half) written
    state = keys(s3_client, bucket, "out/_kbt/state/")
    assert forget_items(job, {2}) == 1
    lost = [k for k in state if k.endswith("/finalized.json") or "/shards/" in k]
    for key in [*lost, "out/heart-unlabeled-2.parquet"]:
        s3_client.delete_object(Bucket=bucket, Key=key)
    result = run_shard(job, 0)
    assert result.finalized
    assert user_keys(s3_client, bucket) == first
    stored = pd.read_parquet(io.BytesIO(body(s3_client, bucket, "out/heart-unlabeled-2.parquet")))
    pd.testing.assert_frame_equal(stored, expected_parquet(files["heart-unlabeled-2.csv"], model))


# SCORING, "The run method" (note "How is work distributed?"): "Batch deployments distribute work
# at the file level ... a folder containing 100 files with mini-batches of 10 files will generate
# 10 batches of 10 files each", "regardless of the size of the files": mini_batch_size counts
# files, and run() receives a list of file paths, each file whole.
def test_mini_batch_is_a_list_of_whole_files(
    s3_client: Any, bucket: str, datasets: Path, heart_model: tuple[Path, Pipeline], tmp_path: Path
) -> None:
    upload_heart(s3_client, bucket, datasets)
    script = write_script(tmp_path / "code", RECORDING_SCRIPT)
    job = azure_job(
        bucket,
        heart_model[0],
        script,
        miniBatchSize=2,
        maxPayloadInMB=1,
        output={"outputAction": "summaryOnly"},
    )
    run_shard(job, 0)
    calls = [json.loads(body(s3_client, bucket, f"out/call-{i}.json")) for i in (1, 2)]
    assert calls == [
        {"heart-unlabeled-0.csv": 100, "heart-unlabeled-1.csv": 100},
        {"heart-unlabeled-2.csv": 100, "heart-unlabeled-3.csv": 3},
    ]
    assert user_keys(s3_client, bucket) == ["out/call-1.json", "out/call-2.json"]


# kbt's explicit alternative (not Azure): miniBatchMode records hands a scoring script a DataFrame of
# up to miniBatchSize rows (documented in docs/migration-azureml.md, "Scoring scripts").
def test_records_mode_is_an_explicit_choice(
    s3_client: Any, bucket: str, datasets: Path, heart_model: tuple[Path, Pipeline], tmp_path: Path
) -> None:
    upload_heart(s3_client, bucket, datasets)
    script = write_script(
        tmp_path / "code",
        """
        def init():
            pass

        def run(mini_batch):
            return [f"{type(mini_batch).__name__}:{len(mini_batch)}"] * len(mini_batch)
    """,
    )
    output = {"outputAction": "appendRow", "accept": "application/jsonlines"}
    job = azure_job(bucket, heart_model[0], script, miniBatchSize=50, miniBatchMode="records", output=output)
    run_shard(job, 0)
    lines = body(s3_client, bucket, "out/predictions.csv").decode().splitlines()
    assert sorted(set(lines)) == ['"DataFrame:3"', '"DataFrame:50"']
    assert len(lines) == 303


# SCORING, "The run method": "The resulting DataFrame or array is appended to the output file",
# "Although pandas DataFrame may contain column names, they are not included in the output file";
# Azure's own notebooks read the append_row file with pd.read_csv(..., sep=" ", header=None).
# Expected bytes: "<file> <prediction>\n" per input row, in input order, no header.
@pytest.mark.parametrize(
    "script_source", [DATAFRAME_SCRIPT, GENERATOR_SCRIPT], ids=["dataframe", "generator"]
)
def test_append_row_file_is_space_separated_without_header(
    s3_client: Any,
    bucket: str,
    datasets: Path,
    heart_model: tuple[Path, Pipeline],
    tmp_path: Path,
    script_source: str,
) -> None:
    model_dir, model = heart_model
    files = upload_heart(s3_client, bucket, datasets)
    script = write_script(tmp_path / "code", script_source)
    job = azure_job(bucket, model_dir, script, miniBatchSize=3, output={"outputAction": "appendRow"})
    assert run_shard(job, 0).failed == 0
    expected = "".join(
        f"{name} {p}\n" for name in HEART_FILES for p in model.predict(pd.read_csv(io.BytesIO(files[name])))
    )
    stored = body(s3_client, bucket, "out/predictions.csv")
    assert stored.decode() == expected
    table = pd.read_csv(io.BytesIO(stored), sep=" ", header=None)
    assert table.shape == (303, 2)


# kbt's explicit layouts stay available: accept text/csv writes commas (kbt, not Azure).
def test_append_row_with_explicit_csv_accept_keeps_commas(
    s3_client: Any, bucket: str, datasets: Path, heart_model: tuple[Path, Pipeline], tmp_path: Path
) -> None:
    model_dir, model = heart_model
    files = upload_heart(s3_client, bucket, datasets)
    script = write_script(tmp_path / "code", DATAFRAME_SCRIPT)
    output = {"outputAction": "appendRow", "accept": "text/csv"}
    run_shard(azure_job(bucket, model_dir, script, output=output), 0)
    first = pd.read_csv(io.BytesIO(files[HEART_FILES[0]]))
    lines = body(s3_client, bucket, "out/predictions.csv").decode().splitlines()
    assert lines[0] == f"{HEART_FILES[0]},{model.predict(first)[0]}"


# SCORING, "The run method": "Each returned output element indicates one successful run of an
# input element in the input mini_batch": a failing run() fails its input files, never part of
# one. kbt retries the mini-batch, then isolates the failing file; its records are counted against
# errorThreshold and listed in _errors/, the other files' custom outputs are written whole.
def test_a_failing_file_fails_whole_and_alone(
    s3_client: Any, bucket: str, datasets: Path, heart_model: tuple[Path, Pipeline], tmp_path: Path
) -> None:
    model_dir, model = heart_model
    files = upload_heart(s3_client, bucket, datasets)
    source = (SCRIPTS / "custom-outputs-parquet" / "batch_driver.py").read_text()
    failing = source.replace(
        "        data = pd.read_csv(file_path)\n",
        '        data = pd.read_csv(file_path)\n        assert "unlabeled-1" not in file_path, "bad file"\n',
    )
    script = write_script(tmp_path / "code", failing)
    output = {"outputAction": "summaryOnly"}
    job = azure_job(
        bucket, model_dir, script, miniBatchSize=2, retrySettings={"maxRetries": 0}, output=output
    )
    result = run_shard(job, 0)
    assert (result.records, result.failed) == (303, 100)
    good = [n for n in HEART_FILES if n != "heart-unlabeled-1.csv"]
    assert user_keys(s3_client, bucket) == [
        "out/_errors/heart-unlabeled-1.csv.errors.jsonl",
        *(f"out/{Path(n).stem}.parquet" for n in good),
    ]
    for name in good:
        stored = pd.read_parquet(io.BytesIO(body(s3_client, bucket, f"out/{Path(name).stem}.parquet")))
        pd.testing.assert_frame_equal(stored, expected_parquet(files[name], model))
