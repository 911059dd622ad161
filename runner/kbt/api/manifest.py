"""Load kbt manifests from YAML and validate them offline, reporting each error's field path and line.

Validation runs the generated CRD schema (what `kubectl apply` checks) and then the pydantic
models (which also enforce the CEL rules), so `kbt validate` agrees with the API server; `kbt
validate` also checks instance types against the table the operator's catalog is built on.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, cast

import jsonschema
import yaml
from pydantic import BaseModel, ValidationError

from kbt.api.crd import batch_transform_job_crd, model_crd
from kbt.api.instance_types import CATALOG_ENV, unknown_message
from kbt.api.models import API_GROUP, API_VERSION, BatchTransformJob, Model

KINDS: dict[str, type[BaseModel]] = {"BatchTransformJob": BatchTransformJob, "Model": Model}
# Other controllers' kinds whose spec a kbt kind accepts unchanged (see docs/migration-sagemaker.md).
OTHER_KINDS = {
    "TransformJob": "an ACK TransformJob (sagemaker.services.k8s.aws) runs as kind BatchTransformJob, "
    "apiVersion kbt.dev/v1alpha1, with its spec unchanged",
}
FieldPath = tuple[str | int, ...]


class ManifestError(Exception):
    """A manifest cannot be read or is invalid; the message names file, line and field."""


@dataclass(frozen=True)
class Issue:
    path: FieldPath
    message: str
    line: int | None

    def render(self, source: str) -> str:
        where = f"{source}:{self.line}" if self.line else source
        return f"{where}: {format_path(self.path) or '<document>'}: {self.message}"


@dataclass
class Document:
    """One YAML document of a manifest file, with a way back to source lines."""

    source: str
    index: int
    data: Any
    node: yaml.Node | None

    @property
    def kind(self) -> str:
        return str(self.data.get("kind", "")) if isinstance(self.data, dict) else ""

    def line_of(self, path: FieldPath) -> int | None:
        """1-based line of the deepest node of `path` present in the document."""
        node = self.node
        line = node.start_mark.line + 1 if node else None
        for part in path:
            child = _child(node, part)
            if child is None:
                break
            node, line = child, child.start_mark.line + 1
        return line


def _child(node: yaml.Node | None, part: str | int) -> yaml.Node | None:
    """The node under key or index `part`; a key also matches its other spelling (`s3URI` for
    `s3Uri`: other controllers' spellings differ only in case)."""
    if isinstance(node, yaml.MappingNode):
        for key, value in sorted(node.value, key=lambda item: item[0].value != part):
            if key.value == part or (isinstance(part, str) and str(key.value).lower() == part.lower()):
                return cast(yaml.Node, value)
    if isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
        return cast(yaml.Node, node.value[part])
    return None


def format_path(path: FieldPath) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def load_documents(path: Path) -> list[Document]:
    """Every non-empty YAML document in the file, in order."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise ManifestError(f"{path}: cannot read: {exc.strerror}") from exc
    try:
        nodes = list(yaml.compose_all(text, Loader=yaml.SafeLoader))
        datas = list(yaml.safe_load_all(text))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise ManifestError(f"{where}: not valid YAML: {getattr(exc, 'problem', exc)}") from exc
    return [
        Document(str(path), i, data, node)
        for i, (data, node) in enumerate(zip(datas, nodes, strict=True))
        if data is not None
    ]


_CRDS = {"BatchTransformJob": batch_transform_job_crd, "Model": model_crd}


@cache
def _crd_schema(kind: str) -> dict[str, Any]:
    """The CRD schema of one kind, generated the first time a document of that kind needs it."""
    crd = _CRDS[kind]()
    schema: dict[str, Any] = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return schema


def validate_document(doc: Document, instance_types: Collection[str] | None = None) -> list[Issue]:
    """All problems of one document: envelope, CRD schema, model validators, then (when
    `instance_types` is given) whether the job's instance type is one of those."""
    if not isinstance(doc.data, dict):
        return [Issue((), "a manifest document must be a mapping", doc.line_of(()))]
    expected = f"{API_GROUP}/{API_VERSION}"
    if doc.kind not in KINDS:
        hint = f"; {OTHER_KINDS[doc.kind]}" if doc.kind in OTHER_KINDS else ""
        message = f"unsupported kind {doc.kind!r}; expected one of {sorted(KINDS)}{hint}"
        return [Issue(("kind",), message, doc.line_of(("kind",)))]
    if doc.data.get("apiVersion") != expected:
        got = doc.data.get("apiVersion")
        return [Issue(("apiVersion",), f"must be {expected!r} (got {got!r})", doc.line_of(("apiVersion",)))]
    issues = _schema_issues(doc)
    reported = {issue.path for issue in issues}
    for issue in _model_issues(doc):
        if not any(issue.path[: len(p)] == p for p in reported):
            issues.append(issue)
    if instance_types is not None and not issues:
        issues.extend(_instance_type_issues(doc, instance_types))
    return issues


INSTANCE_TYPE_PATH: FieldPath = ("spec", "transformResources", "instanceType")


def _instance_type_issues(doc: Document, known: Collection[str]) -> list[Issue]:
    name = (
        doc.data.get("spec", {}).get("transformResources", {}).get("instanceType")
        if doc.kind == "BatchTransformJob"
        else None
    )
    if name is None or name in known:
        return []
    message = (
        f"{unknown_message(name, known)}; a type only the cluster's instance-type catalog defines "
        f"(chart value instanceTypes) is known there: pass that file with --instance-types or {CATALOG_ENV}"
    )
    return [Issue(INSTANCE_TYPE_PATH, message, doc.line_of(INSTANCE_TYPE_PATH))]


def _schema_issues(doc: Document) -> list[Issue]:
    validator = jsonschema.Draft202012Validator(_crd_schema(doc.kind))
    issues = []
    for error in sorted(validator.iter_errors(doc.data), key=lambda e: list(map(str, e.absolute_path))):
        path = tuple(error.absolute_path)
        issues.append(Issue(path, _schema_message(error), doc.line_of(path)))
    return issues


def _schema_message(error: jsonschema.ValidationError) -> str:
    message = str(error.message)
    if error.validator == "enum":
        return (
            f"unsupported value {error.instance!r}: "
            f"supported values: {', '.join(map(repr, error.validator_value))}"
        )
    if error.validator == "required":
        return message.replace("is a required property", "is required")
    return message


def _model_issues(doc: Document) -> list[Issue]:
    try:
        KINDS[doc.kind].model_validate(doc.data)
    except ValidationError as exc:
        issues = []
        for err in exc.errors():
            path = tuple(
                p
                for p in err["loc"]
                if not (isinstance(p, str) and p.startswith(("function-", "int", "str")))
            )
            message = err["msg"].removeprefix("Value error, ")
            issues.append(Issue(path, message, doc.line_of(path)))
        return issues
    return []


def parse_document(doc: Document) -> BatchTransformJob | Model:
    """Validate and return the typed object, or raise ManifestError listing every issue."""
    issues = validate_document(doc)
    if issues:
        raise ManifestError("\n".join(issue.render(doc.source) for issue in issues))
    parsed = KINDS[doc.kind].model_validate(doc.data)
    assert isinstance(parsed, BatchTransformJob | Model)
    return parsed


def load_manifest(path: Path) -> tuple[list[BatchTransformJob], dict[str, Model]]:
    """The jobs and models (by name) of a manifest file; raises ManifestError on any problem."""
    jobs: list[BatchTransformJob] = []
    models: dict[str, Model] = {}
    errors = []
    for doc in load_documents(path):
        try:
            parsed = parse_document(doc)
        except ManifestError as exc:
            errors.append(str(exc))
            continue
        if isinstance(parsed, BatchTransformJob):
            jobs.append(parsed)
        elif parsed.metadata.name:
            models[parsed.metadata.name] = parsed
        else:
            errors.append(f"{doc.source}:{doc.line_of(('metadata',))}: metadata.name: a Model needs a name")
    if errors:
        raise ManifestError("\n".join(errors))
    return jobs, models


ROW_FRAMED_TYPES = ("text/csv", "application/jsonlines", "application/x-jsonlines")
MIGRATION_GUIDE = "docs/migration-sagemaker.md"


def sagemaker_differences(doc: Document) -> list[Issue]:
    """Warnings, not errors: settings a SageMaker manifest leaves to defaults where kbt's
    behaviour differs from SageMaker's (splitType None on row formats, assembleWith's default)."""
    if doc.kind != "BatchTransformJob" or not isinstance(doc.data, dict):
        return []
    spec = doc.data.get("spec") or {}
    transform_input = spec.get("transformInput") or {}
    output = spec.get("transformOutput") or {}
    scoring_script = (spec.get("model") or {}).get("flavor") == "custom"
    media = str(transform_input.get("contentType", "")).split(";", 1)[0].strip().lower()
    warnings: list[Issue] = []
    split_path: FieldPath = ("spec", "transformInput", "splitType")
    if (
        media in ROW_FRAMED_TYPES
        and transform_input.get("splitType", "None") == "None"
        and not scoring_script
    ):
        warnings.append(
            Issue(
                split_path,
                f"splitType None: kbt reads {media} row by row in mini-batches, where SageMaker sends the"
                f" whole object as one request ({MIGRATION_GUIDE}, transformInput.splitType)",
                doc.line_of(split_path),
            )
        )
    if "assembleWith" not in output and "AssembleWith" not in output:
        path: FieldPath = ("spec", "transformOutput")
        warnings.append(
            Issue(
                (*path, "assembleWith"),
                f"not set: kbt defaults to Line, SageMaker to None ({MIGRATION_GUIDE},"
                " transformOutput.assembleWith); set it to make the choice explicit",
                doc.line_of(path),
            )
        )
    return warnings
