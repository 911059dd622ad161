"""A BatchTransformJob as read from the cluster, parsed with the API models the CRD comes from."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from kbt.api.models import BatchTransformJobSpec, BatchTransformJobStatus, TransformJobStatus
from kbt_operator.plugin.errors import PluginError

TERMINAL = frozenset({TransformJobStatus.COMPLETED, TransformJobStatus.FAILED, TransformJobStatus.STOPPED})


@dataclass(frozen=True)
class JobView:
    name: str
    namespace: str
    spec: BatchTransformJobSpec
    status: BatchTransformJobStatus

    @classmethod
    def parse(cls, obj: dict[str, Any]) -> JobView:
        meta = obj.get("metadata", {})
        name, namespace = str(meta.get("name")), str(meta.get("namespace"))
        try:
            spec = BatchTransformJobSpec.model_validate(obj.get("spec") or {})
            status = BatchTransformJobStatus.model_validate(obj.get("status") or {})
        except ValidationError as exc:
            raise PluginError(
                f"batchtransformjob {namespace}/{name} does not match this plugin's API version "
                f"(upgrade kubectl-btj): {exc.errors()[0]['loc']}: {exc.errors()[0]['msg']}"
            ) from exc
        return cls(name=name, namespace=namespace, spec=spec, status=status)

    @property
    def phase(self) -> str:
        return str(self.status.transformJobStatus or TransformJobStatus.PENDING)

    @property
    def started(self) -> bool:
        return bool(self.status.startTime or self.status.jobName)

    @property
    def finished(self) -> bool:
        return self.phase in TERMINAL

    @property
    def shard_count(self) -> int:
        return self.spec.shards
