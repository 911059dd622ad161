"""The harness's structural defaulting (tests/harness/crd_defaults.py) and what it shows about the CRDs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from harness.crd_defaults import apply_defaults, crd_schemas, defaulted, with_defaults
from kbt.api.manifest import KINDS, load_documents
from kbt.api.models import BatchTransformJob

REPO = Path(__file__).resolve().parents[2]
EXAMPLE_MANIFESTS = sorted(REPO.glob("examples/*/*.yaml"))
SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "a": {"type": "integer", "default": 1},
        "inner": {"type": "object", "properties": {"b": {"type": "string", "default": "x"}}},
        "made": {"type": "object", "default": {}, "properties": {"c": {"type": "integer", "default": 3}}},
        "items": {
            "type": "array",
            "items": {"type": "object", "properties": {"d": {"type": "boolean", "default": False}}},
        },
        "byName": {
            "type": "object",
            "additionalProperties": {
                "type": "object",
                "properties": {"e": {"type": "integer", "default": 5}},
            },
        },
    },
}


def _job(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "kbt.dev/v1alpha1",
        "kind": "BatchTransformJob",
        "metadata": {"name": "j", "namespace": "ns"},
        "spec": {
            "modelName": "m",
            "transformInput": {"dataSource": {"s3DataSource": {"s3Uri": "s3://data/in/"}}},
            "transformOutput": {"s3OutputPath": "s3://data/out/"},
            "transformResources": {"instanceType": "ml.m5.large"},
            **spec,
        },
    }


def test_defaults_apply_only_where_the_parent_exists() -> None:
    value: dict[str, Any] = {"items": [{}, {"d": True}], "byName": {"k": {}}}
    apply_defaults(value, SCHEMA)
    assert value == {
        "a": 1,
        "made": {"c": 3},  # a defaulted object is defaulted in turn
        "items": [{"d": False}, {"d": True}],
        "byName": {"k": {"e": 5}},
    }  # no "inner": its parent default is absent, so b is not applied


def test_null_is_defaulted_unless_nullable() -> None:
    value: dict[str, Any] = {"a": None, "inner": {"b": None}}
    schema = {
        **SCHEMA,
        "properties": {**SCHEMA["properties"], "a": {"type": "integer", "default": 1, "nullable": True}},
    }
    apply_defaults(value, schema)
    assert value["a"] is None and value["inner"] == {"b": "x"}


def test_crd_defaults_are_what_the_api_server_stores() -> None:
    stored = defaulted(_job())
    spec = stored["spec"]
    assert spec["batchStrategy"] == "MultiRecord" and spec["maxPayloadInMB"] == 6
    assert spec["transformInput"]["dataSource"]["s3DataSource"]["s3DataType"] == "S3Prefix"
    assert "dataProcessing" not in spec  # absent parents get nothing
    assert set(crd_schemas()) == {"BatchTransformJob", "Model"}


def test_a_filter_alone_stays_a_filter_alone() -> None:
    """#16.1: both spellings of joinSource used to be defaulted, so the stored object had both."""
    stored = defaulted(_job(dataProcessing={"inputFilter": "$[1:]"}))
    assert stored["spec"]["dataProcessing"] == {"inputFilter": "$[1:]"}
    parsed = BatchTransformJob.model_validate(stored).spec.dataProcessing
    assert parsed is not None and parsed.joinSource == "None"
    operator_spelling = defaulted(_job(dataProcessing={"JoinSource": "Input", "OutputFilter": "$[-1]"}))
    assert BatchTransformJob.model_validate(operator_spelling).spec.dataProcessing.joinSource == "Input"  # type: ignore[union-attr]


def test_no_aliased_field_has_a_default_in_any_spelling() -> None:
    """Every pair of spellings in the CRDs: a default on either would make a manifest carry both."""

    def walk(schema: dict[str, Any], where: str) -> list[str]:
        found = []
        props = schema.get("properties") or {}
        spellings: dict[str, list[str]] = {}
        for name in props:  # every other spelling differs from its field only in case
            spellings.setdefault(name.lower(), []).append(name)
        found += [
            f"{where}.{n}"
            for same in spellings.values()
            if len(same) > 1
            for n in same
            if "default" in props[n]
        ]
        for name, prop in props.items():
            found += walk(prop, f"{where}.{name}")
        if isinstance(schema.get("items"), dict):
            found += walk(schema["items"], f"{where}[]")
        return found

    assert [bad for kind, schema in crd_schemas().items() for bad in walk(schema, kind)] == []


def test_update_patches_are_defaulted_after_merging() -> None:
    stored = defaulted(_job())
    patch = {"spec": {"batchStrategy": None, "dataProcessing": {"outputFilter": "$"}, "tags": [{"key": "k"}]}}
    extended = with_defaults(stored, patch)
    assert extended["spec"]["batchStrategy"] == "MultiRecord"  # deleted, then defaulted again
    assert extended["spec"]["tags"] == [{"key": "k", "value": ""}]
    assert extended["spec"]["dataProcessing"] == {"outputFilter": "$"}
    assert with_defaults(None, {"kind": "ConfigMap", "data": {}}) == {"kind": "ConfigMap", "data": {}}


@pytest.mark.parametrize("path", EXAMPLE_MANIFESTS, ids=lambda p: str(p.relative_to(REPO / "examples")))
def test_every_example_parses_as_the_api_server_stores_it(path: Path) -> None:
    documents = [doc for doc in load_documents(path) if doc.kind in KINDS]
    assert documents, f"{path} holds no kbt object"
    for doc in documents:
        KINDS[doc.kind].model_validate(defaulted(doc.data))


def test_an_ack_manifest_survives_defaulting() -> None:
    """ACK spellings get no CRD defaults either, so the stored object still parses as written."""
    ack = _job(modelClientConfig={"invocationsTimeoutInSeconds": 45}, environment={"A": "1"})
    ack["spec"]["transformInput"]["dataSource"]["s3DataSource"] = {"s3URI": "s3://data/in/"}
    stored = defaulted(ack)
    assert (
        "retrySettings" not in stored["spec"]
        and "s3Uri" not in stored["spec"]["transformInput"]["dataSource"]["s3DataSource"]
    )
    spec = BatchTransformJob.model_validate(stored).spec
    assert spec.retrySettings.timeoutSeconds == 45 and spec.environment[0].name == "A"
