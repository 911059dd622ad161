"""The instance-type catalog: what `transformResources.instanceType` means on this cluster.

Each entry turns a SageMaker-style name (``ml.m5.xlarge``) into the resources, placement and
runner image of a shard pod. The built-in types are every SageMaker type of the shared table in
``kbt.api.instance_types`` (the one `kbt validate` checks against), requesting a share of their
nominal CPU and memory (``RequestPercent``: env ``KBT_CPU_REQUEST_PERCENT`` and
``KBT_MEMORY_REQUEST_PERCENT``, chart value ``instanceTypeRequests``; default 90%) with limits
at the nominal size, GPU types selecting their GPU product; an operator-level YAML file (path in
env ``KBT_INSTANCE_TYPES``; the Helm chart renders its ``instanceTypes`` value into it) adds
types, and replaces built-in ones of the same name.

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
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from kbt.api.instance_types import (
    GPU_RESOURCE,
    INSTANCE_TYPES,
    NEURON_RESOURCE,
    CatalogError,
    InstanceSpec,
    catalog_document_entries,
    catalog_file_entries,
    unknown_message,
)
from kbt.api.models import QUANTITY

__all__ = [
    "BUILTIN_TYPES",
    "Catalog",
    "CatalogError",
    "InstanceType",
    "RequestPercent",
    "UnknownInstanceTypeError",
]

GPU_PRODUCT_LABEL = "nvidia.com/gpu.product"
GPU_TOLERATION: dict[str, Any] = {"key": GPU_RESOURCE, "operator": "Exists", "effect": "NoSchedule"}
NEURON_TOLERATION: dict[str, Any] = {"key": NEURON_RESOURCE, "operator": "Exists", "effect": "NoSchedule"}
DEFAULT_REQUEST_PERCENT = 90


class UnknownInstanceTypeError(LookupError):
    """A job asks for an instance type the catalog does not define."""

    def __init__(self, name: str, known: list[str]) -> None:
        super().__init__(unknown_message(name, known))
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
            return {
                k: str(v) if isinstance(v, int | float) and not isinstance(v, bool) else v
                for k, v in value.items()
            }
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


@dataclass(frozen=True)
class RequestPercent:
    """Built-in types request this share of their nominal CPU and memory (limits stay nominal).

    90% leaves room for system daemons on a node of that size; a small cluster (the e2e one, a
    laptop) lowers it so that several shards fit one node.
    """

    cpu: int = DEFAULT_REQUEST_PERCENT
    memory: int = DEFAULT_REQUEST_PERCENT


def _builtin(spec: InstanceSpec, percent: RequestPercent) -> InstanceType:
    requests = {
        "cpu": f"{max(1, spec.vcpus * 10 * percent.cpu)}m",
        "memory": f"{max(1, spec.memory_mib * percent.memory // 100)}Mi",
    }
    limits = {
        "cpu": str(spec.vcpus),
        "memory": f"{spec.memory_mib}Mi" if spec.memory_mib % 1024 else f"{spec.memory_mib // 1024}Gi",
    }
    resource = spec.accelerator_resource
    if resource:
        requests[resource] = limits[resource] = str(spec.accelerators)
    return InstanceType(
        resources=Resources(requests=requests, limits=limits),
        nodeSelector={GPU_PRODUCT_LABEL: spec.gpu_product} if spec.gpu_product else {},
        tolerations=[dict(NEURON_TOLERATION)] if spec.accelerator == "neuron" else None,
    )


def builtin_types(percent: RequestPercent = RequestPercent()) -> dict[str, InstanceType]:
    """Every type of the shared table (``kbt.api.instance_types``), requesting `percent`."""
    return {name: _builtin(spec, percent) for name, spec in INSTANCE_TYPES.items()}


BUILTIN_TYPES: dict[str, InstanceType] = builtin_types()


def _problems(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in err['loc']) or '(entry)'}: {err['msg']}" for err in exc.errors()
    )


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
    def builtin(cls, percent: RequestPercent = RequestPercent()) -> Catalog:
        return cls(builtin_types(percent))

    @classmethod
    def from_entries(
        cls, entries: Mapping[str, Any], source: str, percent: RequestPercent = RequestPercent()
    ) -> Catalog:
        """Built-in types plus (replaced by, on equal names) the given catalog-file entries."""
        types = builtin_types(percent)
        for name, entry in entries.items():
            try:
                types[name] = InstanceType.model_validate(entry)
            except ValidationError as exc:
                raise CatalogError(f"{source}: {name}: {_problems(exc)}") from None
        return cls(types)

    @classmethod
    def from_document(cls, document: Any, source: str, percent: RequestPercent = RequestPercent()) -> Catalog:
        """The catalog of a parsed catalog file (None: the built-in types only)."""
        return cls.from_entries(catalog_document_entries(document, source), source, percent)

    @classmethod
    def load(cls, path: Path | None, percent: RequestPercent = RequestPercent()) -> Catalog:
        """The built-in catalog, merged with the file at `path` when given."""
        return cls.from_entries(catalog_file_entries(path) if path else {}, str(path), percent)
