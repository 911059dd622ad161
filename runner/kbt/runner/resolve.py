"""Resolve a BatchTransformJob's model (``modelName`` or inline) into the ResolvedJob shards read."""

from __future__ import annotations

from kbt.api.models import BatchTransformJob, Model
from kbt.resolved import ResolvedJob
from kbt.runner.errors import ConfigError


def resolve_job(job: BatchTransformJob, models: dict[str, Model]) -> ResolvedJob:
    """``job`` with its model spec filled in; ConfigError when ``modelName`` is not in ``models``."""
    spec = job.spec
    if spec.model is not None:
        model, ref = spec.model, spec.model.uri
    else:
        assert spec.modelName is not None  # the spec validator guarantees exactly one
        found = models.get(spec.modelName)
        if found is None:
            known = ", ".join(sorted(models)) or "none"
            raise ConfigError(
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
