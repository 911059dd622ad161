"""The instance-type catalog: what `transformResources.instanceType` means on this cluster.

Each entry turns a SageMaker-style name (``ml.m5.xlarge``) into the resources, placement and
runner image of a shard pod. Built-in defaults cover common ``ml.*`` CPU and GPU types; an
operator-level YAML file (path in env ``KBT_INSTANCE_TYPES``; the Helm chart renders its
``instanceTypes`` value into it) adds types, and replaces built-in ones of the same name.

File format, a mapping of instance-type names to entries::

    ml.g5.xlarge:
      resources:                   # container resources, as in a pod spec
        requests: {cpu: 3500m, memory: 14Gi, nvidia.com/gpu: 1}
        limits: {cpu: "4", memory: 16Gi, nvidia.com/gpu: 1}
      gpu: true                    # GPU runner image (KBT_RUNNER_GPU_IMAGE) and, unless
                                   # tolerations are given, toleration nvidia.com/gpu:NoSchedule;
                                   # default: true when the limits name nvidia.com/gpu
      nodeSelector:                # optional
        nvidia.com/gpu.product: NVIDIA-A10G
        node.kubernetes.io/instance-type: g5.xlarge
      tolerations:                 # optional; replaces the default GPU toleration
        - {key: nvidia.com/gpu, operator: Exists, effect: NoSchedule}
      affinity: {}                 # optional pod affinity

A job's ``spec.podOverrides`` is applied on top of the entry (see ``job_builder``).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from kbt.api.models import QUANTITY

GPU_RESOURCE = "nvidia.com/gpu"
GPU_PRODUCT_LABEL = "nvidia.com/gpu.product"
GPU_TOLERATION: dict[str, Any] = {"key": GPU_RESOURCE, "operator": "Exists", "effect": "NoSchedule"}
DEFAULT_REQUEST_PERCENT = 90


class CatalogError(ValueError):
    """The catalog file is unreadable or an entry is invalid."""


class UnknownInstanceTypeError(LookupError):
    """A job asks for an instance type the catalog does not define."""

    def __init__(self, name: str, known: list[str]) -> None:
        super().__init__(f"unknown instanceType {name!r}; known types: {', '.join(known)}")
        self.name = name
        self.known = known


Quantity = Annotated[str, Field(pattern=QUANTITY)]


class Resources(BaseModel):
    model_config = ConfigDict(extra="forbid")
    requests: dict[str, Quantity] = Field(default_factory=dict)
    limits: dict[str, Quantity] = Field(default_factory=dict)

    @field_validator("requests", "limits", mode="before")
    @classmethod
    def _numbers_as_text(cls, value: Any) -> Any:
        """YAML gives `nvidia.com/gpu: 1` as a number; Kubernetes quantities are strings."""
        if isinstance(value, Mapping):
            return {k: str(v) if isinstance(v, int | float) and not isinstance(v, bool) else v for k, v in value.items()}
        return value


class InstanceType(BaseModel):
    """One catalog entry (see the module docstring for the YAML form)."""

    model_config = ConfigDict(extra="forbid")
    resources: Resources
    gpu: bool | None = None
    nodeSelector: dict[str, str] = Field(default_factory=dict)
    tolerations: list[dict[str, Any]] | None = None
    affinity: dict[str, Any] | None = None

    @property
    def has_gpu(self) -> bool:
        return self.gpu if self.gpu is not None else GPU_RESOURCE in self.resources.limits

    def container_resources(self) -> dict[str, dict[str, str]]:
        result = {"requests": dict(self.resources.requests), "limits": dict(self.resources.limits)}
        return {key: value for key, value in result.items() if value}

    def pod_tolerations(self) -> list[dict[str, Any]]:
        if self.tolerations is not None:
            return [dict(t) for t in self.tolerations]
        return [dict(GPU_TOLERATION)] if self.has_gpu else []


def _builtin(vcpus: int, memory_gib: int, gpus: int = 0, product: str | None = None) -> InstanceType:
    """A type with limits at the nominal size and requests at 90% (room for system daemons)."""
    requests = {"cpu": f"{vcpus * 10 * DEFAULT_REQUEST_PERCENT}m", "memory": f"{memory_gib * 1024 * DEFAULT_REQUEST_PERCENT // 100}Mi"}
    limits = {"cpu": str(vcpus), "memory": f"{memory_gib}Gi"}
    if gpus:
        requests[GPU_RESOURCE] = limits[GPU_RESOURCE] = str(gpus)
    return InstanceType(
        resources=Resources(requests=requests, limits=limits),
        nodeSelector={GPU_PRODUCT_LABEL: product} if product else {},
    )


BUILTIN_TYPES: dict[str, InstanceType] = {
    "ml.t3.medium": _builtin(2, 4),
    "ml.t3.large": _builtin(2, 8),
    "ml.m5.large": _builtin(2, 8),
    "ml.m5.xlarge": _builtin(4, 16),
    "ml.m5.2xlarge": _builtin(8, 32),
    "ml.m5.4xlarge": _builtin(16, 64),
    "ml.m5.12xlarge": _builtin(48, 192),
    "ml.c5.xlarge": _builtin(4, 8),
    "ml.c5.2xlarge": _builtin(8, 16),
    "ml.c5.4xlarge": _builtin(16, 32),
    "ml.c5.9xlarge": _builtin(36, 72),
    "ml.r5.xlarge": _builtin(4, 32),
    "ml.r5.2xlarge": _builtin(8, 64),
    "ml.g4dn.xlarge": _builtin(4, 16, 1, "Tesla-T4"),
    "ml.g4dn.2xlarge": _builtin(8, 32, 1, "Tesla-T4"),
    "ml.g4dn.12xlarge": _builtin(48, 192, 4, "Tesla-T4"),
    "ml.g5.xlarge": _builtin(4, 16, 1, "NVIDIA-A10G"),
    "ml.g5.2xlarge": _builtin(8, 32, 1, "NVIDIA-A10G"),
    "ml.g5.12xlarge": _builtin(48, 192, 4, "NVIDIA-A10G"),
    "ml.g6.xlarge": _builtin(4, 16, 1, "NVIDIA-L4"),
    "ml.p3.2xlarge": _builtin(8, 61, 1, "Tesla-V100-SXM2-16GB"),
    "ml.p3.8xlarge": _builtin(32, 244, 4, "Tesla-V100-SXM2-16GB"),
    "ml.p4d.24xlarge": _builtin(96, 1152, 8, "NVIDIA-A100-SXM4-40GB"),
    "ml.p5.48xlarge": _builtin(192, 2048, 8, "NVIDIA-H100-80GB-HBM3"),
}


def _problems(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(str(p) for p in err['loc']) or '(entry)'}: {err['msg']}" for err in exc.errors())


class Catalog:
    """Instance types by name."""

    def __init__(self, types: Mapping[str, InstanceType]) -> None:
        self.types = dict(types)

    def lookup(self, name: str) -> InstanceType:
        try:
            return self.types[name]
        except KeyError:
            raise UnknownInstanceTypeError(name, sorted(self.types)) from None

    @classmethod
    def builtin(cls) -> Catalog:
        return cls(BUILTIN_TYPES)

    @classmethod
    def from_document(cls, document: Any, source: str) -> Catalog:
        """Built-in types plus (replaced by, on equal names) the entries of a parsed catalog file."""
        if document is None:
            return cls.builtin()
        if not isinstance(document, dict):
            raise CatalogError(f"{source}: expected a mapping of instance-type names to entries")
        types = dict(BUILTIN_TYPES)
        for name, entry in document.items():
            try:
                types[str(name)] = InstanceType.model_validate(entry)
            except ValidationError as exc:
                raise CatalogError(f"{source}: {name}: {_problems(exc)}") from None
        return cls(types)

    @classmethod
    def load(cls, path: Path | None) -> Catalog:
        """The built-in catalog, merged with the file at `path` when given."""
        if path is None:
            return cls.builtin()
        try:
            document = yaml.safe_load(path.read_text())
        except (OSError, yaml.YAMLError) as exc:
            raise CatalogError(f"{path}: cannot read the instance-type catalog: {exc}") from None
        return cls.from_document(document, str(path))
