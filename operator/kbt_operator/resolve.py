"""Resolve a BatchTransformJob's model (inline or a Model resource) into the ResolvedJob shards read.

The runner package may grow its own ``kbt.runner.resolve``; the operator only needs this small
step and keeps it here so it does not depend on the data plane's internals.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from kbt.api.models import BatchTransformJob, Model
from kbt.resolved import ResolvedJob


class InvalidResourceError(ValueError):
    """A BatchTransformJob or Model the API server accepted but the pydantic models reject."""


def describe_validation_error(exc: ValidationError, prefix: str) -> str:
    """`spec.transformInput.contentType: Input should be ...; ...` (every problem, with its path)."""
    problems = []
    for error in exc.errors():
        path = ".".join(str(part) for part in error["loc"])
        problems.append(f"{prefix}{'.' + path if path else ''}: {error['msg']}")
    return "; ".join(problems)


def _strip_status(raw: Mapping[str, Any]) -> dict[str, Any]:
    """The object without status: the operator writes status and never validates what it wrote."""
    return {key: value for key, value in raw.items() if key != "status"}


def parse_job(raw: Mapping[str, Any]) -> BatchTransformJob:
    try:
        return BatchTransformJob.model_validate(_strip_status(raw))
    except ValidationError as exc:
        name = (raw.get("metadata") or {}).get("name", "?")
        raise InvalidResourceError(f"BatchTransformJob {name}: {describe_validation_error(exc, '')}") from None


def parse_model(raw: Mapping[str, Any]) -> Model:
    try:
        return Model.model_validate(_strip_status(raw))
    except ValidationError as exc:
        name = (raw.get("metadata") or {}).get("name", "?")
        raise InvalidResourceError(f"Model {name}: {describe_validation_error(exc, '')}") from None


def model_ref(job: BatchTransformJob) -> str:
    """What `kubectl get btj` shows as the model: the Model's name or the inline model's URI."""
    if job.spec.modelName is not None:
        return job.spec.modelName
    assert job.spec.model is not None  # the spec validator guarantees exactly one
    return job.spec.model.uri


def resolve_job(job: BatchTransformJob, model: Model | None) -> ResolvedJob:
    """`job` with its model spec filled in: inline, or from `model` (the Model named by modelName)."""
    if job.spec.model is not None:
        model_spec = job.spec.model
    elif model is not None:
        model_spec = model.spec
    else:
        raise ValueError(f"BatchTransformJob {job.metadata.name} references Model {job.spec.modelName}")
    return ResolvedJob(
        name=job.metadata.name or "",
        namespace=job.metadata.namespace or "default",
        uid=job.metadata.uid or "",
        spec=job.spec,
        model=model_spec,
        model_ref=model_ref(job),
    )
