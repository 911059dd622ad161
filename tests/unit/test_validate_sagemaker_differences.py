"""`kbt validate` warns where a SageMaker manifest's defaults behave differently in kbt
(issue 15 item 9; docs/migration-sagemaker.md, transformInput.splitType and
transformOutput.assembleWith), without failing the manifest."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from kbt.api.manifest import load_documents, sagemaker_differences
from kbt.cli import app

JOB = """apiVersion: kbt.dev/v1alpha1
kind: BatchTransformJob
metadata: {{name: churn}}
spec:
  modelName: churn
  transformInput:
    contentType: text/csv
    dataSource: {{s3DataSource: {{s3DataType: S3Prefix, s3Uri: s3://data/churn/}}}}
{split}  transformOutput:
    s3OutputPath: s3://results/churn/
{assemble}  transformResources: {{instanceType: ml.m5.large, instanceCount: 1}}
"""


def warnings_for(tmp_path: Path, split: str = "", assemble: str = "") -> list[str]:
    path = tmp_path / "job.yaml"
    path.write_text(JOB.format(split=split, assemble=assemble))
    (doc,) = load_documents(path)
    return [w.render(str(path)) for w in sagemaker_differences(doc)]


def test_csv_without_split_type_and_assemble_with_gets_both_warnings(tmp_path: Path) -> None:
    split, assemble = warnings_for(tmp_path)
    assert f"{tmp_path}/job.yaml:7: spec.transformInput.splitType: splitType None" in split
    assert "whole object as one request" in split
    assert f"{tmp_path}/job.yaml:10: spec.transformOutput.assembleWith: not set" in assemble


def test_explicit_settings_silence_the_warnings(tmp_path: Path) -> None:
    assert warnings_for(tmp_path, "    splitType: Line\n", "    assembleWith: Line\n") == []


def test_validate_prints_warnings_and_still_passes(tmp_path: Path) -> None:
    path = tmp_path / "job.yaml"
    path.write_text(JOB.format(split="", assemble=""))
    result = CliRunner().invoke(app, ["validate", str(path)])
    assert result.exit_code == 0, result.output
    assert "is valid" in result.output
    assert "⚠" in result.output and "SageMaker to None" in result.output
