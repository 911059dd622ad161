"""Generate the CustomResourceDefinitions in `crds/` from the pydantic models.

Pydantic's JSON Schema is turned into a Kubernetes *structural* schema: references inlined,
optional unions flattened, int-or-string marked, free-form maps preserved, and the CEL rules that
pydantic validators express in Python added as `x-kubernetes-validations`.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

from kbt.api.models import (
    API_GROUP,
    API_VERSION,
    MUTABLE_SPEC_FIELDS,
    BatchTransformJobSpec,
    BatchTransformJobStatus,
    ModelSpec,
    ModelStatus,
)

_DROP_KEYS = {"title", "$defs", "discriminator"}

# Rules the API server checks at `kubectl apply`, mirroring the pydantic validators.
_SPEC_RULES = [
    {
        "rule": "has(self.modelName) != has(self.model)",
        "message": "give exactly one of modelName or model",
    },
    {
        "rule": "!(has(self.retrySettings) && has(self.modelClientConfig))",
        "message": "give either retrySettings or modelClientConfig, not both",
    },
]
_MODEL_RULES = [
    {
        "rule": "self.flavor != 'custom' || has(self.scoringScript)",
        "message": "flavor 'custom' needs scoringScript",
    },
    {
        "rule": "self.flavor != 'transformers' || has(self.task)",
        "message": "flavor 'transformers' needs task",
    },
]
_INT_OR_STRING_RULES = {
    "errorThreshold": [
        {
            "rule": "type(self) == int ? self >= -1 : self.matches('^([0-9]+|[0-9]+(\\\\.[0-9]+)?%)$')",
            "message": "errorThreshold must be -1, a count such as 10, or a percent such as '5%'",
        }
    ]
}


def _resolve(node: Any, defs: dict[str, Any]) -> Any:
    """Inline `$ref`s and simplify pydantic's unions into structural-schema shapes."""
    if isinstance(node, list):
        return [_resolve(item, defs) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        target = copy.deepcopy(defs[node["$ref"].rsplit("/", 1)[-1]])
        merged = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
        return _resolve(merged, defs)
    if "allOf" in node and len(node["allOf"]) == 1:
        merged = {**node["allOf"][0], **{k: v for k, v in node.items() if k != "allOf"}}
        return _resolve(merged, defs)
    if "anyOf" in node:
        branches = [b for b in node["anyOf"] if b.get("type") != "null"]
        rest = {k: v for k, v in node.items() if k != "anyOf"}
        types = sorted(b.get("type", "") for b in branches)
        if types == ["integer", "string"]:
            merged = {"x-kubernetes-int-or-string": True, **rest}
            merged.pop("pattern", None)
            return _resolve(merged, defs)
        if len(branches) == 1:
            return _resolve({**branches[0], **rest}, defs)
        raise ValueError(f"union not expressible in a structural schema: {node}")
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _DROP_KEYS:
            continue
        if key == "default" and value is None:
            continue
        if key == "const":
            out["enum"] = [value]
            continue
        if key == "properties":
            out[key] = {name: _resolve(prop, defs) for name, prop in value.items()}
            continue
        if key == "additionalProperties":
            if value is True or value == {}:
                out["x-kubernetes-preserve-unknown-fields"] = True
            elif value is not False:
                out[key] = _resolve(value, defs)
            continue
        out[key] = _resolve(value, defs)
    return out


def structural_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The structural OpenAPI v3 schema of a pydantic model."""
    raw = model.model_json_schema(mode="validation", ref_template="#/$defs/{model}")
    schema: dict[str, Any] = _resolve(raw, raw.get("$defs", {}))
    return schema


def _add_rules(schema: dict[str, Any], rules: list[dict[str, str]]) -> None:
    schema.setdefault("x-kubernetes-validations", []).extend(rules)


def _untyped(schema: dict[str, Any]) -> bool:
    """A field of any shape (`environment`: list or map): CEL rules cannot refer to it."""
    return bool(schema.get("x-kubernetes-preserve-unknown-fields")) and "type" not in schema


def _immutable_while_running_rule(spec_schema: dict[str, Any]) -> list[dict[str, str]]:
    """One transition rule per immutable spec field: it may change only before the job starts."""
    rules = []
    started = "has(oldSelf.status) && has(oldSelf.status.startTime)"
    for field, schema in spec_schema["properties"].items():
        if field in MUTABLE_SPEC_FIELDS or _untyped(schema):
            continue
        same = (
            f"(has(self.spec.{field}) == has(oldSelf.spec.{field})) && "
            f"(!has(self.spec.{field}) || self.spec.{field} == oldSelf.spec.{field})"
        )
        rules.append(
            {
                "rule": f"!({started}) || ({same})",
                "message": f"spec.{field} is immutable once the job has started "
                f"(only {', '.join(MUTABLE_SPEC_FIELDS)} may change)",
                "reason": "FieldValueForbidden",
                "fieldPath": f".spec.{field}",
            }
        )
    return rules


def _job_schema() -> dict[str, Any]:
    spec = structural_schema(BatchTransformJobSpec)
    _add_rules(spec, _SPEC_RULES)
    _add_rules(spec["properties"]["model"], _MODEL_RULES)
    for field, rules in _INT_OR_STRING_RULES.items():
        _add_rules(spec["properties"][field], rules)
    status = structural_schema(BatchTransformJobStatus)
    status["x-kubernetes-preserve-unknown-fields"] = True
    root: dict[str, Any] = {
        "type": "object",
        "required": ["spec"],
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"type": "object"},
            "spec": spec,
            "status": status,
        },
    }
    _add_rules(root, _immutable_while_running_rule(spec))
    return root


def _model_schema() -> dict[str, Any]:
    spec = structural_schema(ModelSpec)
    _add_rules(spec, _MODEL_RULES)
    status = structural_schema(ModelStatus)
    status["x-kubernetes-preserve-unknown-fields"] = True
    return {
        "type": "object",
        "required": ["spec"],
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"type": "object"},
            "spec": spec,
            "status": status,
        },
    }


def _crd(
    kind: str,
    plural: str,
    short_names: list[str],
    schema: dict[str, Any],
    columns: list[dict[str, Any]],
) -> dict[str, Any]:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{API_GROUP}", "labels": {"app.kubernetes.io/part-of": "kbt"}},
        "spec": {
            "group": API_GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": kind,
                "listKind": f"{kind}List",
                "plural": plural,
                "singular": kind.lower(),
                "shortNames": short_names,
                "categories": ["kbt", "all"] if kind == "BatchTransformJob" else ["kbt"],
            },
            "versions": [
                {
                    "name": API_VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": columns,
                    "schema": {"openAPIV3Schema": schema},
                }
            ],
        },
    }


def batch_transform_job_crd() -> dict[str, Any]:
    columns: list[dict[str, Any]] = [
        {"name": "Status", "type": "string", "jsonPath": ".status.transformJobStatus"},
        {"name": "Progress", "type": "string", "jsonPath": ".status.progressSummary"},
        {"name": "Model", "type": "string", "jsonPath": ".status.model"},
        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
        {"name": "Reason", "type": "string", "jsonPath": ".status.failureReason", "priority": 1},
        {"name": "Output", "type": "string", "jsonPath": ".spec.transformOutput.s3OutputPath", "priority": 1},
    ]
    return _crd("BatchTransformJob", "batchtransformjobs", ["btj"], _job_schema(), columns)


def model_crd() -> dict[str, Any]:
    columns = [
        {"name": "Flavor", "type": "string", "jsonPath": ".spec.flavor"},
        {"name": "URI", "type": "string", "jsonPath": ".spec.uri"},
        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
    ]
    return _crd("Model", "models", ["kbtmodel"], _model_schema(), columns)


def render_crds() -> dict[str, str]:
    """File name -> YAML text of every CRD."""
    header = "# Generated from kbt.api.models by `make crds`. Do not edit.\n"
    crds = {
        f"{API_GROUP}_batchtransformjobs.yaml": batch_transform_job_crd(),
        f"{API_GROUP}_models.yaml": model_crd(),
    }
    return {name: header + yaml.safe_dump(crd, sort_keys=False, width=100) for name, crd in crds.items()}


def write_crds(directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in render_crds().items():
        path = directory / name
        path.write_text(text)
        written.append(path)
    return written
