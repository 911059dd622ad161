"""Parse BatchTransformJob and Model resources from the API into the pydantic models, with errors
that name every bad field; the model lookup itself is ``kbt.api.resolved.resolve_job``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from kbt.api.models import BatchTransformJob, Model


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
        raise InvalidResourceError(
            f"BatchTransformJob {name}: {describe_validation_error(exc, '')}"
        ) from None


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
