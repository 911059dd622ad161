"""Refuse URIs that only mean something on the user's machine: local paths and ``file://``.

`kbt run` reads and writes local paths; a shard pod has none of the user's files, so a job whose
data or model lives there would start and fail ("no input objects found"). The operator refuses
it before any Job exists (condition and event reason ``LocalPath``).
"""

from __future__ import annotations

from kbt.api.models import BatchTransformJob, Model

CLUSTER_SCHEMES = ("s3://", "https://", "runs:/", "models:/")
HINT = "local paths work with `kbt run` only; use s3://"


def is_local(uri: str) -> bool:
    """True for ``file://`` URIs and plain paths (anything without a scheme a pod can reach)."""
    return not uri.startswith(CLUSTER_SCHEMES)


def local_uri_problem(job: BatchTransformJob, model: Model | None) -> str | None:
    """Why `job` cannot run in a cluster (every local ``field: uri``), or None when it can."""
    spec = job.spec
    uris = {
        "spec.transformInput.dataSource.s3DataSource.s3Uri": (
            spec.transformInput.dataSource.s3DataSource.s3Uri
        ),
        "spec.transformOutput.s3OutputPath": spec.transformOutput.s3OutputPath,
    }
    if spec.model is not None:
        uris["spec.model.uri"] = spec.model.uri
    if model is not None:
        uris[f"Model {model.metadata.name} spec.uri"] = model.spec.uri
    found = [f"{field}: {uri}" for field, uri in uris.items() if is_local(uri)]
    return f"{'; '.join(found)}: {HINT}" if found else None
