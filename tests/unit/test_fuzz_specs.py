"""Property-based fuzzing of BatchTransformJob specs: schema, model validators and the Job builder.

Every generated manifest is either rejected with messages that each name a field, or accepted,
in which case the operator resolves it and builds objects the Kubernetes API server would take
(kubernetes-validate, plus the name, label, quantity and env-name rules the OpenAPI schema omits).
"""

from __future__ import annotations

import re
from typing import Any

import kubernetes_validate
import pytest
from hypothesis import HealthCheck, given, settings

from chaos.operator_objects import operator_objects
from chaos.spec_strategies import fuzzed_jobs, valid_jobs
from chaos.trials import trial_count
from kbt.api.manifest import Document, format_path, validate_document
from kbt_operator.catalog import UnknownInstanceTypeError

KUBE_VERSION = "1.30.0"
DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
QUANTITY = re.compile(
    r"^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)(m|k|Ki|Mi|Gi|Ti|Pi|Ei|M|G|T|P|E|[eE][+-]?[0-9]+)?$"
)
ENV_NAME = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")
TOP_LEVEL = {"apiVersion", "kind", "metadata", "spec"}
FUZZ = settings(
    max_examples=trial_count(quick=100, full=1000),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


def _kubernetes_problems(obj: dict[str, Any]) -> list[str]:
    """What the API server would reject in `obj` beyond the OpenAPI schema kubernetes-validate checks."""
    problems = []
    meta = obj["metadata"]
    limit = 63 if obj["kind"] in {"Job", "Service"} else 253
    if len(meta["name"]) > limit or not DNS_SUBDOMAIN.fullmatch(meta["name"]):
        problems.append(f"{obj['kind']} name {meta['name']!r}")
    for key, value in {
        **meta.get("labels", {}),
        **obj.get("spec", {}).get("template", {}).get("metadata", {}).get("labels", {}),
    }.items():
        if len(value) > 63 or not LABEL_VALUE.fullmatch(value):
            problems.append(f"label {key}={value!r}")
    if obj["kind"] != "Job":
        return problems
    pod = obj["spec"]["template"]["spec"]
    for container in pod["containers"]:
        for section in ("requests", "limits"):
            for resource, quantity in (container.get("resources", {}).get(section) or {}).items():
                if not QUANTITY.fullmatch(str(quantity)):
                    problems.append(f"resources.{section}.{resource}={quantity!r}")
        problems += [
            f"env name {e['name']!r}" for e in container.get("env", []) if not ENV_NAME.fullmatch(e["name"])
        ]
    for key, value in (pod.get("nodeSelector") or {}).items():
        if len(value) > 63 or not LABEL_VALUE.fullmatch(value):
            problems.append(f"nodeSelector {key}={value!r}")
    account = pod["serviceAccountName"]
    if len(account) > 253 or not DNS_SUBDOMAIN.fullmatch(account):
        problems.append(f"serviceAccountName {account!r}")
    return problems


def _check_rejection(doc: dict[str, Any], issues: list[Any]) -> None:
    for issue in issues:
        assert issue.message.strip(), f"empty message for {doc}"
        if issue.path:
            assert issue.path[0] in TOP_LEVEL, issue.path
        else:  # a document-level problem names the missing top-level field in its message
            assert any(f"'{name}'" in issue.message for name in TOP_LEVEL), (
                f"names no field: {issue.message!r}"
            )
        rendered = issue.render("job.yaml")
        assert format_path(issue.path) in rendered


def _check_acceptance(doc: dict[str, Any]) -> None:
    try:
        objects = operator_objects(doc)
    except UnknownInstanceTypeError as exc:
        assert "instanceType" in str(exc) and doc["spec"]["transformResources"]["instanceType"] in str(exc)
        return
    for obj in objects:
        kubernetes_validate.validate(obj, KUBE_VERSION, strict=True)
        assert _kubernetes_problems(obj) == [], (obj["kind"], doc["spec"])


@FUZZ
@given(valid_jobs)
def test_valid_specs_are_accepted_and_build_valid_jobs(doc: dict[str, Any]) -> None:
    issues = validate_document(Document("job.yaml", 0, doc, None))
    assert issues == [], [i.render("job.yaml") for i in issues]
    _check_acceptance(doc)


@FUZZ
@given(fuzzed_jobs())
def test_mutated_specs_are_rejected_naming_a_field_or_build_valid_jobs(doc: dict[str, Any]) -> None:
    issues = validate_document(Document("job.yaml", 0, doc, None))
    if issues:
        _check_rejection(doc, issues)
    else:
        _check_acceptance(doc)


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ({"miniBatchSize": 0}, "spec.miniBatchSize"),
        (
            {"transformInput": {"dataSource": {"s3DataSource": {"s3Uri": "s3://A_B/x"}}}},
            "spec.transformInput.dataSource.s3DataSource.s3Uri",
        ),
        ({"errorThreshold": "5 percent"}, "spec.errorThreshold"),
        ({"podOverrides": {"scratchSizeLimit": "10GB"}}, "spec.podOverrides.scratchSizeLimit"),
    ],
)
def test_typical_mistakes_name_their_field(patch: dict[str, Any], field: str) -> None:
    doc = {
        "apiVersion": "kbt.dev/v1alpha1",
        "kind": "BatchTransformJob",
        "metadata": {"name": "j", "namespace": "team-a", "uid": "u"},
        "spec": {
            "modelName": "m",
            "transformInput": {"dataSource": {"s3DataSource": {"s3Uri": "s3://inputs/x"}}},
            "transformOutput": {"s3OutputPath": "s3://outputs/x"},
            "transformResources": {"instanceCount": 1, "instanceType": "ml.m5.xlarge"},
            **patch,
        },
    }
    rendered = [i.render("job.yaml") for i in validate_document(Document("job.yaml", 0, doc, None))]
    assert rendered and all(field in line for line in rendered), rendered
