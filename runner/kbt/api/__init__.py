"""The kbt API: pydantic models for BatchTransformJob and Model, the single source of the CRDs."""

from kbt.api.models import (
    API_GROUP,
    API_VERSION,
    BatchTransformJob,
    BatchTransformJobSpec,
    BatchTransformJobStatus,
    Model,
    ModelSpec,
)

__all__ = [
    "API_GROUP",
    "API_VERSION",
    "BatchTransformJob",
    "BatchTransformJobSpec",
    "BatchTransformJobStatus",
    "Model",
    "ModelSpec",
]
