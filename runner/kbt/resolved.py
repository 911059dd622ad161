"""The fully resolved job handed to shard processes (ConfigMap in a cluster, a file locally)."""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from kbt.api.models import BatchTransformJobSpec, ModelSpec


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
