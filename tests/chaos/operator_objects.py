"""Everything the operator creates for one BatchTransformJob manifest, built by its pure functions.

Shared by the fuzz and security tests so they exercise exactly what the operator's reconcile
creates: the per-job objects (`owned.shard_objects`) and the Indexed Job (`job_builder`).
"""

from __future__ import annotations

from typing import Any

from kbt.api.models import BatchTransformJob, Model, ModelSpec
from kbt.api.resolved import resolve_job
from kbt_operator.catalog import Catalog
from kbt_operator.job_builder import JobRequest, build_job
from kbt_operator.owned import ObjectRef, shard_objects
from kbt_operator.runner_images import RunnerImages

RUNNER_IMAGE = "ghcr.io/kbt/runner:1"
RUNNER_GPU_IMAGE = "ghcr.io/kbt/runner-cuda:1"


def operator_objects(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """The objects for `doc` (a BatchTransformJob with metadata name, namespace and uid), Job last.

    A job naming a Model gets a scikit-learn Model of that name. Raises what the operator's own
    steps raise (pydantic ValidationError, UnknownInstanceType).
    """
    job = BatchTransformJob.model_validate(doc)
    models = {}
    if job.spec.modelName is not None:
        spec = ModelSpec(uri="s3://models/m/", flavor="sklearn")
        models[job.spec.modelName] = Model(metadata={"name": job.spec.modelName}, spec=spec)
    resolved = resolve_job(job, models)
    instance = Catalog.builtin().lookup(job.spec.transformResources.instanceType)
    metadata = ObjectRef.parse(doc)
    request = JobRequest(
        resolved=resolved, instance=instance, images=RunnerImages(default=RUNNER_IMAGE, gpu=RUNNER_GPU_IMAGE)
    )
    return [*shard_objects(resolved, metadata), build_job(request, metadata)]
