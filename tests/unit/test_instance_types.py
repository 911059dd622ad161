"""`kbt validate` and the operator agree on instance types: one table, plus the cluster's catalog file."""

from __future__ import annotations

from importlib.metadata import version
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from kbt.api.instance_types import INSTANCE_TYPES, known_names, summarize
from kbt.api.manifest import load_documents, validate_document
from kbt.cli import app
from kbt_operator.catalog import Catalog, UnknownInstanceTypeError

REPO = Path(__file__).resolve().parents[2]
CHURN = REPO / "examples" / "customer-churn" / "tf-batch.yaml"


def _job_with_type(tmp_path: Path, instance_type: str) -> Path:
    text = CHURN.read_text()
    assert "instanceType: ml.m4.xlarge" in text
    path = tmp_path / "job.yaml"
    path.write_text(text.replace("instanceType: ml.m4.xlarge", f"instanceType: {instance_type}"))
    return path


def _line_of_instance_type(path: Path) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if "instanceType:" in line)


def test_the_sagemaker_operators_sample_validates_and_schedules() -> None:
    result = CliRunner().invoke(app, ["validate", str(CHURN)], env={"KBT_INSTANCE_TYPES": ""})
    assert result.exit_code == 0, result.output
    assert Catalog.builtin().lookup("ml.m4.xlarge").container_resources()["limits"] == {
        "cpu": "4",
        "memory": "16Gi",
    }


def test_validate_rejects_an_unknown_type_with_file_line_and_field(tmp_path: Path) -> None:
    path = _job_with_type(tmp_path, "ml.m4.xlarg")
    result = CliRunner().invoke(app, ["validate", str(path)], env={"KBT_INSTANCE_TYPES": ""})
    assert result.exit_code == 1
    where = (
        f"{path}:{_line_of_instance_type(path)}: spec.transformResources.instanceType: "
        "unknown instanceType 'ml.m4.xlarg'"
    )
    assert where in result.output
    assert "did you mean 'ml.m4.xlarge'" in result.output and "--instance-types" in result.output


def test_a_type_from_the_cluster_catalog_is_known_to_both(tmp_path: Path) -> None:
    job = _job_with_type(tmp_path, "cpu-small")
    catalog_file = tmp_path / "instance-types.yaml"
    catalog_file.write_text(yaml.safe_dump({"cpu-small": {"resources": {"requests": {"cpu": "250m"}}}}))
    for args, env in [
        (["--instance-types", str(catalog_file)], {"KBT_INSTANCE_TYPES": ""}),
        ([], {"KBT_INSTANCE_TYPES": str(catalog_file)}),
    ]:
        result = CliRunner().invoke(app, ["validate", *args, str(job)], env=env)
        assert result.exit_code == 0, result.output
    assert Catalog.load(catalog_file).lookup("cpu-small").container_resources() == {
        "requests": {"cpu": "250m"}
    }


def test_an_unreadable_catalog_file_is_named(tmp_path: Path) -> None:
    broken = tmp_path / "types.yaml"
    broken.write_text("- not\n- a mapping\n")
    result = CliRunner().invoke(app, ["validate", "--instance-types", str(broken), str(CHURN)])
    assert result.exit_code == 1 and f"{broken}: expected a mapping of instance-type names" in result.output


@pytest.mark.parametrize("name", ["ml.m4.xlarge", "ml.p5.48xlarge", "ml.z9.huge", "ml.M5.large", "cpu-small"])
def test_validate_and_operator_agree(name: str, tmp_path: Path) -> None:
    (doc,) = load_documents(_job_with_type(tmp_path, name))
    issues = validate_document(doc, known_names(None))
    try:
        Catalog.builtin().lookup(name)
    except UnknownInstanceTypeError as exc:
        assert [issue.path for issue in issues] == [("spec", "transformResources", "instanceType")]
        assert issues[0].message.startswith(str(exc))
    else:
        assert issues == [] and name in INSTANCE_TYPES


def test_validation_without_a_type_list_leaves_types_to_the_cluster(tmp_path: Path) -> None:
    (doc,) = load_documents(_job_with_type(tmp_path, "cpu-small"))
    assert validate_document(doc) == []


def test_summary_names_families_once() -> None:
    assert (
        summarize(["ml.m5.large", "ml.m5.xlarge", "ml.p3dn.24xlarge", "cpu-small"])
        == "cpu-small, ml.m5.*, ml.p3dn.24xlarge"
    )


def test_version() -> None:
    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0 and result.output == f"kbt {version('kbt')}\n"
