"""Generate docs/crd-reference.md from the pydantic API models (`make docs`; a test checks drift).

Each model becomes a section with one table row per field: type (nested models link to their
section, enumerations list their values), whether it is required, its default, its constraints
and its description. The CEL rules of the generated CRDs are listed after the spec.
"""

from __future__ import annotations

import json
import sys
from enum import Enum
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from pydantic_core import PydanticUndefined, to_jsonable_python

from kbt.api.crd import batch_transform_job_crd, model_crd
from kbt.api.models import (
    API_GROUP,
    API_VERSION,
    MUTABLE_SPEC_FIELDS,
    BatchTransformJobSpec,
    BatchTransformJobStatus,
    ModelSpec,
)

HEADER = (
    "# CRD reference\n\n"
    "<!-- Generated from runner/kbt/api/models.py by `make docs` (python -m kbt.api.docs). "
    "Do not edit. -->\n"
)
_CONSTRAINTS = {
    "minimum": "≥ {}",
    "maximum": "≤ {}",
    "exclusiveMinimum": "> {}",
    "minLength": "min length {}",
    "maxLength": "max length {}",
    "maxItems": "max {} items",
    "pattern": "pattern `{}`",
}


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _anchor(name: str) -> str:
    return name.lower()


class _Renderer:
    """Walks models breadth-first from a root, one section per model, each rendered once."""

    def __init__(self) -> None:
        self.done: set[str] = set()
        self.queue: list[type[BaseModel]] = []

    def _type(self, schema: dict[str, Any], defs: dict[str, Any]) -> str:
        if "$ref" in schema:
            name = schema["$ref"].rsplit("/", 1)[-1]
            target = defs[name]
            if "enum" in target:
                return " \\| ".join(f"`{value}`" for value in target["enum"])
            return f"[{name}](#{_anchor(name)})"
        if "anyOf" in schema:
            branches = [b for b in schema["anyOf"] if b.get("type") != "null"]
            types = sorted(b.get("type", "") for b in branches)
            if types == ["integer", "string"]:
                return "integer or string"
            return " or ".join(self._type(branch, defs) for branch in branches)
        if "enum" in schema:
            return " \\| ".join(f"`{value}`" for value in schema["enum"])
        kind = schema.get("type", "any")
        if kind == "array":
            return f"list of {self._type(schema.get('items', {}), defs)}"
        if kind == "object":
            values = schema.get("additionalProperties")
            if isinstance(values, dict) and values.get("type") == "string":
                return "map of string"
            return "object (free-form)"
        return str(kind)

    def _constraints(self, schema: dict[str, Any]) -> str:
        parts: list[str] = []
        for branch in [schema, *schema.get("anyOf", [])]:
            for key, template in _CONSTRAINTS.items():
                if key in branch:
                    parts.append(template.format(branch[key]))
            items = branch.get("items") if isinstance(branch.get("items"), dict) else None
            if items and "$ref" not in items:
                parts.extend(
                    f"each {template.format(items[k])}" for k, template in _CONSTRAINTS.items() if k in items
                )
        return "; ".join(dict.fromkeys(parts))

    def _enqueue(self, annotation: Any) -> None:
        for arg in getattr(annotation, "__args__", ()) or ():
            self._enqueue(arg)
        if (
            isinstance(annotation, type)
            and issubclass(annotation, BaseModel)
            and annotation.__name__ not in self.done
        ):
            self.queue.append(annotation)

    @staticmethod
    def _default(model: type[BaseModel], name: str) -> str:
        field = model.model_fields[name]
        if field.is_required():
            return ""
        value = field.get_default(call_default_factory=True)
        if value is None or value is PydanticUndefined:
            return ""
        if isinstance(value, Enum):
            value = value.value
        if isinstance(value, BaseModel):
            value = value.model_dump(mode="json", exclude_none=True)
        return f"`{json.dumps(to_jsonable_python(value), separators=(', ', ': '))}`"

    def section(self, model: type[BaseModel], title: str | None = None) -> str:
        self.done.add(model.__name__)
        schema = model.model_json_schema(mode="validation")
        defs = schema.get("$defs", {})
        required = set(schema.get("required", []))
        doc = " ".join((model.__doc__ or "").split())
        lines = [f"### {title or model.__name__}", ""]
        if doc:
            lines += [doc, ""]
        lines += [
            "| Field | Type | Required | Default | Constraints | Description |",
            "|---|---|---|---|---|---|",
        ]
        for name, prop in schema.get("properties", {}).items():
            field = model.model_fields.get(name)
            if field is not None:
                self._enqueue(field.annotation)
            default = self._default(model, name) if field is not None else ""
            lines.append(
                "| "
                + " | ".join(
                    [
                        f"`{name}`",
                        self._type(prop, defs),
                        "yes" if name in required else "",
                        _cell(default),
                        _cell(self._constraints(prop)),
                        _cell(prop.get("description", "")),
                    ]
                )
                + " |"
            )
        return "\n".join(lines) + "\n"

    def tree(self, root: type[BaseModel], title: str) -> str:
        out = [self.section(root, title)]
        while self.queue:
            model = self.queue.pop(0)
            if model.__name__ not in self.done:
                out.append(self.section(model))
        return "\n".join(out)


def _rules(schema: dict[str, Any], path: str) -> list[str]:
    """Every x-kubernetes-validations rule under `schema`, with where it applies."""
    found = [
        f"| `{path}` | {_cell(rule['message'])} | `{_cell(rule['rule'])}` |"
        for rule in schema.get("x-kubernetes-validations", [])
    ]
    for name, prop in schema.get("properties", {}).items():
        found += _rules(prop, f"{path}.{name}")
    return found


def render_reference() -> str:
    job_root = batch_transform_job_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    model_root = model_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    spec_rules = _rules(job_root["properties"]["spec"], "spec")
    renderer = _Renderer()
    parts = [
        HEADER,
        f"API group `{API_GROUP}`, version `{API_VERSION}`, both kinds namespaced. "
        "`kubectl apply` checks everything below (OpenAPI schema and CEL rules); "
        "`kbt validate job.yaml` checks the same offline.\n",
        "## BatchTransformJob\n",
        "`kubectl get btj` (short name `btj`, category `kbt`). Fields keep the SageMaker operator's "
        "names; see migration-sagemaker.md and migration-azureml.md.\n",
        renderer.tree(BatchTransformJobSpec, "spec (BatchTransformJobSpec)"),
        "### Validation rules of spec\n",
        "| Where | Message | CEL rule |\n|---|---|---|",
        "\n".join(spec_rules),
        "",
        f"Once a job has started (`status.startTime` is set) every spec field is immutable except "
        f"{', '.join(f'`{name}`' for name in MUTABLE_SPEC_FIELDS)}.\n",
        renderer.tree(BatchTransformJobStatus, "status (BatchTransformJobStatus)"),
        "## Model\n",
        "`kubectl get kbtmodel`. A namespaced model that jobs reference by `spec.modelName`; "
        "its spec is the same as a job's inline `spec.model`.\n",
        f"spec: [ModelSpec](#{_anchor(ModelSpec.__name__)}) (above). Rules: "
        + "; ".join(
            _cell(rule["message"])
            for rule in model_root["properties"]["spec"].get("x-kubernetes-validations", [])
        )
        + ".\n",
    ]
    return "\n".join(parts).rstrip() + "\n"


def main(argv: list[str]) -> int:
    """`python -m kbt.api.docs OUTPUT [--check]`."""
    if not argv or len(argv) > 2 or (len(argv) == 2 and argv[1] != "--check"):
        print("usage: python -m kbt.api.docs OUTPUT.md [--check]", file=sys.stderr)
        return 2
    output, text = Path(argv[0]), render_reference()
    if len(argv) == 2:
        if not output.is_file() or output.read_text() != text:
            print(f"{output} is out of date with kbt.api.models: run `make docs`", file=sys.stderr)
            return 1
        return 0
    output.write_text(text)
    print(f"wrote {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
