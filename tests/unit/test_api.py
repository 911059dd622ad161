"""The API models, the generated CRDs and `kbt validate`."""

from __future__ import annotations

import textwrap
from pathlib import Path

import kubernetes_validate
import pytest
import yaml
from pydantic import ValidationError
from typer.testing import CliRunner

from kbt.api.crd import render_crds
from kbt.api.manifest import ManifestError, load_documents, load_manifest, validate_document
from kbt.api.models import BatchTransformJob, BatchTransformJobSpec
from kbt.cli import app

REPO = Path(__file__).resolve().parents[2]

SAGEMAKER_MANIFEST = """\
apiVersion: kbt.dev/v1alpha1
kind: BatchTransformJob
metadata: {name: xgboost-batch}
spec:
  region: us-west-2
  modelName: heart-classifier
  transformInput:
    contentType: text/csv
    dataSource: {s3DataSource: {s3DataType: S3Prefix, s3Uri: s3://data/heart/}}
  transformOutput: {s3OutputPath: s3://results/heart/}
  transformResources: {instanceCount: 1, instanceType: ml.m4.xlarge}
"""


def _write(tmp_path: Path, text: str, name: str = "job.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def _job(**overrides: object) -> dict:
    doc = yaml.safe_load(SAGEMAKER_MANIFEST)
    doc["spec"].update(overrides)
    return doc


def test_committed_crds_match_the_models() -> None:
    for name, text in render_crds().items():
        committed = REPO / "crds" / name
        assert committed.is_file(), f"{committed} missing: run `make crds`"
        assert committed.read_text() == text, f"{committed} drifted from kbt.api.models: run `make crds`"


@pytest.mark.parametrize("name", sorted(render_crds()))
def test_crds_pass_kubernetes_validate(name: str) -> None:
    crd = yaml.safe_load(render_crds()[name])
    kubernetes_validate.validate(crd, "1.30.0", strict=True)


def test_crd_shape() -> None:
    crd = yaml.safe_load(render_crds()["kbt.dev_batchtransformjobs.yaml"])
    spec = crd["spec"]
    assert spec["group"] == "kbt.dev" and spec["names"]["shortNames"] == ["btj"]
    assert spec["scope"] == "Namespaced"
    version = spec["versions"][0]
    assert version["name"] == "v1alpha1" and version["subresources"] == {"status": {}}
    columns = [c["name"] for c in version["additionalPrinterColumns"]]
    assert columns[:4] == ["Status", "Progress", "Model", "Age"]
    schema = version["schema"]["openAPIV3Schema"]
    text = yaml.safe_dump(schema)
    assert "$ref" not in text and "anyOf" not in text and "title:" not in text
    job_spec = schema["properties"]["spec"]
    assert job_spec["properties"]["batchStrategy"]["enum"] == ["MultiRecord", "SingleRecord"]
    assert job_spec["properties"]["maxPayloadInMB"]["default"] == 6
    assert job_spec["properties"]["errorThreshold"]["x-kubernetes-int-or-string"] is True
    assert "transformInput" in job_spec["required"]
    rules = {r["rule"] for r in job_spec["x-kubernetes-validations"]}
    assert "has(self.modelName) != has(self.model)" in rules


def test_crd_spec_is_immutable_once_started_except_stop_fields() -> None:
    crd = yaml.safe_load(render_crds()["kbt.dev_batchtransformjobs.yaml"])
    root_rules = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["x-kubernetes-validations"]
    guarded = {r["fieldPath"] for r in root_rules}
    assert ".spec.transformInput" in guarded and ".spec.modelName" in guarded
    assert not guarded & {".spec.stop", ".spec.suspend", ".spec.retryFailedShards"}
    assert all("oldSelf.status.startTime" in r["rule"] for r in root_rules)


def test_dataprocessing_accepts_operator_capitalised_spellings() -> None:
    job = BatchTransformJob.model_validate(
        _job(dataProcessing={"InputFilter": "$[1:]", "OutputFilter": "$[-1]", "JoinSource": "Input"})
    )
    assert job.spec.dataProcessing is not None
    assert job.spec.dataProcessing.outputFilter == "$[-1]"
    assert job.spec.dataProcessing.joinSource == "Input"
    assert job.spec.dataProcessing.inputFilter == "$[1:]"
    crd = yaml.safe_load(render_crds()["kbt.dev_batchtransformjobs.yaml"])
    dp = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]["dataProcessing"]
    assert {"OutputFilter", "JoinSource", "outputFilter", "joinSource"} <= set(dp["properties"])


def test_dataprocessing_rejects_both_spellings() -> None:
    with pytest.raises(ValidationError, match="either outputFilter or OutputFilter"):
        BatchTransformJob.model_validate(_job(dataProcessing={"OutputFilter": "$", "outputFilter": "$"}))


def test_defaults_follow_sagemaker_and_azure() -> None:
    spec = BatchTransformJob.model_validate(_job()).spec
    assert spec.batchStrategy == "MultiRecord" and spec.maxPayloadInMB == 6
    assert spec.transformInput.splitType == "None" and spec.transformInput.compressionType == "None"
    assert spec.transformOutput.assembleWith == "Line" and spec.transformOutput.outputAction == "perInput"
    assert spec.errorThreshold == -1 and spec.retrySettings.maxRetries == 3
    assert spec.shards == 1


def test_shard_count_defaults_to_instance_count() -> None:
    spec = BatchTransformJob.model_validate(
        _job(transformResources={"instanceCount": 3, "instanceType": "ml.m5.large"})
    ).spec
    assert spec.shards == 3
    assert BatchTransformJobSpec.model_validate({**spec.model_dump(), "shardCount": 8}).shards == 8


@pytest.mark.parametrize("threshold", [-1, 0, 25, "10", "5%", "2.5%"])
def test_error_threshold_forms(threshold: object) -> None:
    BatchTransformJob.model_validate(_job(errorThreshold=threshold))


@pytest.mark.parametrize("threshold", [-2, "ten", "5 %", "-5%"])
def test_error_threshold_rejects(threshold: object) -> None:
    with pytest.raises(ValidationError, match="errorThreshold"):
        BatchTransformJob.model_validate(_job(errorThreshold=threshold))


def test_exactly_one_model_source() -> None:
    with pytest.raises(ValidationError, match="exactly one of modelName or model"):
        BatchTransformJob.model_validate(_job(model={"uri": "s3://m/x", "flavor": "mlflow"}))
    doc = _job(model={"uri": "s3://m/x", "flavor": "mlflow"})
    del doc["spec"]["modelName"]
    assert BatchTransformJob.model_validate(doc).spec.model is not None


def test_sagemaker_manifest_validates(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["validate", str(_write(tmp_path, SAGEMAKER_MANIFEST))])
    assert result.exit_code == 0, result.output
    assert "BatchTransformJob/xgboost-batch is valid" in result.output


@pytest.mark.parametrize(
    ("change", "field", "line", "fragment"),
    [
        ("    contentType: text/csv", "spec.transformInput.splitType", 9, "unsupported value 'Lines'"),
        ("    dataSource: {s3DataSource: {s3DataType: S3Prefix}}", "spec.transformInput.dataSource.s3DataSource", 9, "'s3Uri' is required"),
        ("  transformResources: {instanceCount: -1, instanceType: ml.m4.xlarge}", "spec.transformResources.instanceCount", 11, "minimum of 1"),
    ],
)
def test_invalid_manifests_name_the_field_and_line(
    tmp_path: Path, change: str, field: str, line: int, fragment: str
) -> None:
    text = SAGEMAKER_MANIFEST
    if "splitType" in field:
        text = text.replace(change, change + "\n    splitType: Lines")
    elif "s3DataSource" in field:
        text = text.replace("    dataSource: {s3DataSource: {s3DataType: S3Prefix, s3Uri: s3://data/heart/}}", change)
    else:
        text = text.replace("  transformResources: {instanceCount: 1, instanceType: ml.m4.xlarge}", change)
    path = _write(tmp_path, text)
    result = CliRunner().invoke(app, ["validate", str(path)])
    assert result.exit_code == 1
    assert f"{path}:{line}: {field}: " in result.output
    assert fragment in result.output


def test_unknown_field_and_wrong_api_version(tmp_path: Path) -> None:
    doc = load_documents(_write(tmp_path, SAGEMAKER_MANIFEST.replace("  region:", "  regoin:")))[0]
    issues = validate_document(doc)
    assert [(".".join(map(str, i.path)), i.line) for i in issues] == [("spec.regoin", 5)]
    assert "Extra inputs are not permitted" in issues[0].message
    other = load_documents(_write(tmp_path, SAGEMAKER_MANIFEST.replace("kbt.dev/v1alpha1", "sagemaker.aws.amazon.com/v1"), "b.yaml"))[0]
    assert "must be 'kbt.dev/v1alpha1'" in validate_document(other)[0].message


def test_load_manifest_with_models(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        SAGEMAKER_MANIFEST
        + "---\napiVersion: kbt.dev/v1alpha1\nkind: Model\nmetadata: {name: heart-classifier}\n"
        "spec: {uri: s3://models/heart/, flavor: mlflow}\n",
    )
    jobs, models = load_manifest(path)
    assert [j.metadata.name for j in jobs] == ["xgboost-batch"]
    assert models["heart-classifier"].spec.flavor == "mlflow"


def test_model_validation_rules(tmp_path: Path) -> None:
    path = _write(tmp_path, "apiVersion: kbt.dev/v1alpha1\nkind: Model\nmetadata: {name: x}\nspec: {uri: /m, flavor: custom}\n")
    with pytest.raises(ManifestError, match="flavor 'custom' needs scoringScript"):
        load_manifest(path)


def test_broken_yaml_reports_line(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match=r"job.yaml:2: not valid YAML"):
        load_documents(_write(tmp_path, "a: 1\nb: c: d\n"))
