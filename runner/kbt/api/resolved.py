"""The resolved job handed to shard processes (a ConfigMap in a cluster, a file locally).

The operator and ``kbt run`` both build it with ``resolve_job``: a BatchTransformJob with its model
filled in from ``spec.modelName`` (a Model) or the inline ``spec.model``.
"""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from kbt.api.models import BatchTransformJob, BatchTransformJobSpec, Model, ModelSpec


class ResolvedJob(BaseModel):
    """A BatchTransformJob with its model resolved (from `modelName` or inline)."""

    model_config = ConfigDict(extra="forbid")
    name: str
    namespace: str = "default"
    uid: str = ""
    spec: BatchTransformJobSpec
    model: ModelSpec
    model_ref: str  # what `kubectl get btj` shows: the Model name or the inline URI

    def dump(self, path: Path) -> None:
        path.write_text(self.model_dump_json(indent=2, exclude_none=True))

    @classmethod
    def load(cls, path: Path) -> ResolvedJob:
        return cls.model_validate(json.loads(path.read_text()))


class ModelNotFoundError(LookupError):
    """``spec.modelName`` names a Model that was not given."""


def resolve_job(job: BatchTransformJob, models: dict[str, Model]) -> ResolvedJob:
    """``job`` with its model spec filled in; ModelNotFoundError when ``modelName`` is not in ``models``."""
    spec = job.spec
    if spec.model is not None:
        model, ref = spec.model, spec.model.uri
    else:
        assert spec.modelName is not None  # the spec validator guarantees exactly one
        found = models.get(spec.modelName)
        if found is None:
            known = ", ".join(sorted(models)) or "none"
            raise ModelNotFoundError(
                f"BatchTransformJob {job.metadata.name or '?'}: Model {spec.modelName!r} not found "
                f"(models given: {known}); add it to the manifest or pass --model-file"
            )
        model, ref = found.spec, spec.modelName
    return ResolvedJob(
        name=job.metadata.name or "local",
        namespace=job.metadata.namespace or "default",
        uid=job.metadata.uid or "",
        spec=spec,
        model=model,
        model_ref=ref,
    )
