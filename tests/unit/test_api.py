"""The API models, the generated CRDs and `kbt validate`."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

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


def _job(**overrides: object) -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load(SAGEMAKER_MANIFEST)
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
    dp = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"][
        "dataProcessing"
    ]
    assert {"OutputFilter", "JoinSource", "outputFilter", "joinSource"} <= set(dp["properties"])


def test_dataprocessing_rejects_both_spellings() -> None:
    with pytest.raises(ValidationError, match="either outputFilter or OutputFilter"):
        BatchTransformJob.model_validate(_job(dataProcessing={"OutputFilter": "$", "outputFilter": "$"}))


def test_defaults_follow_sagemaker_and_azure() -> None:
    spec = BatchTransformJob.model_validate(_job()).spec
    assert spec.batchStrategy == "MultiRecord" and spec.maxPayloadInMB == 6
    assert spec.transformInput.splitType == "None" and spec.transformInput.compressionType == "None"
    assert spec.transformOutput.assembleWith == "Line" and spec.transformOutput.outputAction == "perInput"
    # unset error settings: SageMaker's failure semantics (kbt.runner.thresholds), not Azure's -1
    assert spec.errorThreshold is None and spec.failFast is None
    assert spec.retrySettings.maxRetries == 3
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
        (
            "    dataSource: {s3DataSource: {s3DataType: S3Prefix}}",
            "spec.transformInput.dataSource.s3DataSource",
            9,
            "'s3Uri' is required",
        ),
        (
            "  transformResources: {instanceCount: -1, instanceType: ml.m4.xlarge}",
            "spec.transformResources.instanceCount",
            11,
            "minimum of 1",
        ),
    ],
)
def test_invalid_manifests_name_the_field_and_line(
    tmp_path: Path, change: str, field: str, line: int, fragment: str
) -> None:
    text = SAGEMAKER_MANIFEST
    if "splitType" in field:
        text = text.replace(change, change + "\n    splitType: Lines")
    elif "s3DataSource" in field:
        text = text.replace(
            "    dataSource: {s3DataSource: {s3DataType: S3Prefix, s3Uri: s3://data/heart/}}", change
        )
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
    other = load_documents(
        _write(
            tmp_path, SAGEMAKER_MANIFEST.replace("kbt.dev/v1alpha1", "sagemaker.aws.amazon.com/v1"), "b.yaml"
        )
    )[0]
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
    path = _write(
        tmp_path,
        "apiVersion: kbt.dev/v1alpha1\nkind: Model\nmetadata: {name: x}\nspec: {uri: /m, flavor: custom}\n",
    )
    with pytest.raises(ManifestError, match="flavor 'custom' needs scoringScript"):
        load_manifest(path)


def test_broken_yaml_reports_line(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match=r"job.yaml:2: not valid YAML"):
        load_documents(_write(tmp_path, "a: 1\nb: c: d\n"))


ACK_MANIFEST = """\
apiVersion: kbt.dev/v1alpha1
kind: BatchTransformJob
metadata: {name: xgboost-transform}
spec:
  transformJobName: xgboost-transform
  modelName: xgboost-model
  environment: {OMP_NUM_THREADS: "2", MODEL_MODE: batch}
  modelClientConfig: {invocationsMaxRetries: 1, invocationsTimeoutInSeconds: 90}
  experimentConfig: {experimentName: churn, trialName: t1}
  transformInput:
    contentType: text/csv
    dataSource: {s3DataSource: {s3DataType: S3Prefix, s3URI: s3://bucket/batch-transform/}}
  transformOutput: {s3OutputPath: s3://bucket/batch-transform/output, kmsKeyID: alias/out}
  transformResources: {instanceCount: 1, instanceType: ml.m5.large, volumeKMSKeyID: alias/vol}
  tags:
  - {key: algorithm, value: xgboost}
"""


def test_ack_manifest_validates_with_only_api_version_and_kind_changed(tmp_path: Path) -> None:
    path = _write(tmp_path, ACK_MANIFEST)
    assert validate_document(load_documents(path)[0]) == []
    spec = load_manifest(path)[0][0].spec
    assert spec.transformInput.dataSource.s3DataSource.s3Uri == "s3://bucket/batch-transform/"
    assert (
        spec.transformOutput.kmsKeyId == "alias/out" and spec.transformResources.volumeKmsKeyId == "alias/vol"
    )
    assert [(e.name, e.value) for e in spec.environment] == [
        ("OMP_NUM_THREADS", "2"),
        ("MODEL_MODE", "batch"),
    ]
    assert (spec.retrySettings.maxRetries, spec.retrySettings.timeoutSeconds) == (1, 90)
    assert spec.experimentConfig is not None and spec.experimentConfig.experimentName == "churn"
    dumped = spec.model_dump(mode="json")
    assert "modelClientConfig" not in dumped  # the shards read retrySettings only
    assert BatchTransformJobSpec.model_validate(dumped).retrySettings == spec.retrySettings


def test_model_client_config_takes_sagemaker_defaults() -> None:
    spec = BatchTransformJob.model_validate(_job(modelClientConfig={"invocationsTimeoutInSeconds": 30})).spec
    assert (spec.retrySettings.maxRetries, spec.retrySettings.timeoutSeconds) == (3, 30)
    spec = BatchTransformJob.model_validate(_job(modelClientConfig={})).spec
    assert (spec.retrySettings.maxRetries, spec.retrySettings.timeoutSeconds) == (3, 600)
    with pytest.raises(ValidationError, match="either retrySettings or modelClientConfig"):
        BatchTransformJob.model_validate(_job(modelClientConfig={}, retrySettings={"maxRetries": 1}))


def test_ack_kind_and_api_version_say_what_to_change(tmp_path: Path) -> None:
    ack = ACK_MANIFEST.replace("kind: BatchTransformJob", "kind: TransformJob")
    issues = validate_document(load_documents(_write(tmp_path, ack))[0])
    assert [(i.path, i.line) for i in issues] == [(("kind",), 2)]
    assert "runs as kind BatchTransformJob, apiVersion kbt.dev/v1alpha1" in issues[0].message


@pytest.mark.parametrize(
    ("spelled", "message"),
    [
        ({"s3URI": "s3://bucket/a/", "s3Uri": "s3://bucket/a/"}, "give either s3Uri or s3URI, not both"),
        ({"s3DataType": "S3Prefix"}, "'s3Uri' is required (or its ACK spelling 's3URI')"),
    ],
)
def test_s3_uri_spellings_exactly_one(spelled: dict[str, str], message: str) -> None:
    with pytest.raises(ValidationError, match=message.replace("(", r"\(").replace(")", r"\)")):
        BatchTransformJob.model_validate(_job(transformInput={"dataSource": {"s3DataSource": spelled}}))
    crd = yaml.safe_load(render_crds()["kbt.dev_batchtransformjobs.yaml"])
    source = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"][
        "transformInput"
    ]["properties"]["dataSource"]["properties"]["s3DataSource"]
    assert "required" not in source
    assert {
        "rule": "has(self.s3Uri) != has(self.s3URI)",
        "message": "give exactly one of s3Uri or s3URI",
    } in source["x-kubernetes-validations"]


@pytest.mark.parametrize(
    "content_type",
    [
        "application/x-recordio-protobuf",
        "application/x-npy",
        "text/csv; charset=utf-8",
        "application/x-image",
    ],
)
def test_content_type_and_accept_take_any_mime_type_like_sagemaker(tmp_path: Path, content_type: str) -> None:
    text = SAGEMAKER_MANIFEST.replace(
        "    contentType: text/csv", f"    contentType: '{content_type}'"
    ).replace(
        "transformOutput: {s3OutputPath: s3://results/heart/}",
        f"transformOutput: {{s3OutputPath: s3://results/heart/, accept: '{content_type}'}}",
    )
    doc = load_documents(_write(tmp_path, text))[0]
    assert validate_document(doc) == []
    spec = BatchTransformJob.model_validate(doc.data).spec
    assert spec.transformInput.contentType == content_type and spec.transformOutput.accept == content_type


def test_content_type_is_bounded_like_sagemaker() -> None:
    with pytest.raises(ValidationError, match="at most 256 characters"):
        BatchTransformJob.model_validate(
            _job(
                transformInput={
                    "contentType": "x/" + "y" * 255,
                    "dataSource": {"s3DataSource": {"s3Uri": "s3://data/in/"}},
                }
            )
        )


def test_max_concurrent_transforms_has_no_upper_bound() -> None:
    assert (
        BatchTransformJob.model_validate(_job(maxConcurrentTransforms=1000)).spec.maxConcurrentTransforms
        == 1000
    )
    with pytest.raises(ValidationError, match="greater than or equal to 0"):
        BatchTransformJob.model_validate(_job(maxConcurrentTransforms=-1))


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("https://my-bucket.s3.us-west-2.amazonaws.com/heart/in%20put/", "s3://my-bucket/heart/in put/"),
        ("https://s3.us-west-2.amazonaws.com/my-bucket/heart/", "s3://my-bucket/heart/"),
        ("https://my.bucket.s3.amazonaws.com/x.csv", "s3://my.bucket/x.csv"),
        ("s3://my-bucket/heart/", "s3://my-bucket/heart/"),
    ],
)
def test_https_s3_uris_become_s3_uris(uri: str, expected: str) -> None:
    spec = BatchTransformJob.model_validate(
        _job(
            transformInput={"dataSource": {"s3DataSource": {"s3Uri": uri}}},
            transformOutput={"s3OutputPath": uri},
        )
    ).spec
    assert spec.transformInput.dataSource.s3DataSource.s3Uri == expected
    assert spec.transformOutput.s3OutputPath == expected


def test_https_uri_that_is_not_s3_names_file_line_and_field(tmp_path: Path) -> None:
    text = SAGEMAKER_MANIFEST.replace(
        "transformOutput: {s3OutputPath: s3://results/heart/}",
        "transformOutput: {s3OutputPath: 'https://example.com/results/'}",
    )
    path = _write(tmp_path, text)
    result = CliRunner().invoke(app, ["validate", str(path)])
    assert result.exit_code == 1
    assert (
        f"{path}:10: spec.transformOutput.s3OutputPath: 'https://example.com/results/' is not an S3 https URL"
        in result.output
    )


@pytest.mark.parametrize(
    ("field", "spelling"), [("inputFilter", "inputFilter"), ("outputFilter", "OutputFilter")]
)
def test_invalid_jsonpath_is_caught_offline_with_file_line_and_field(
    tmp_path: Path, field: str, spelling: str
) -> None:
    text = SAGEMAKER_MANIFEST + f"  dataProcessing:\n    joinSource: Input\n    {spelling}: '$[[['\n"
    path = _write(tmp_path, text)
    result = CliRunner().invoke(app, ["validate", str(path)])
    assert result.exit_code == 1
    assert f"{path}:14: spec.dataProcessing.{field}: invalid JSONPath '$[[[': Parse error" in result.output


@pytest.mark.parametrize(
    "expression", ["$", "$[1:]", "$[-1]", "$['id','SageMakerOutput']", "$.features", "$[0,3]"]
)
def test_sagemaker_jsonpath_examples_are_valid(expression: str) -> None:
    dp = BatchTransformJob.model_validate(
        _job(dataProcessing={"inputFilter": expression})
    ).spec.dataProcessing
    assert dp is not None and dp.inputFilter == expression
