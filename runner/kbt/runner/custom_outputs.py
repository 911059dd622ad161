"""Azure's custom outputs: files a scoring script writes to ``AZUREML_BI_OUTPUT_PATH`` reach
``s3OutputPath``, under the same relative path.

``SyncedPredictor`` wraps a loaded predictor and uploads every file that is new or changed in the
folder right after each ``run()`` returns, before the pipeline sees that mini-batch's predictions.
So a work item's done-marker is written only after the files its mini-batches wrote are stored:
a shard killed at any point loses none of them, and a rerun redoes only unmarked items, whose
scripts write the same names again (same keys, no duplicates). A file is uploaded once per
content version (size and modification time), never deleted locally (a script may append to it).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path

from kbt.api import layout as keys
from kbt.api.models import OutputAction
from kbt.api.resolved import ResolvedJob
from kbt.flavors.base import ModelInput, ModelOutput, Predictor
from kbt.runner.errors import ConfigError
from kbt.runner.state import Layout

RESERVED = (keys.KBT_DIR, keys.ERRORS_DIR)


@dataclass
class CustomOutputs:
    """The local output folder of one shard and what of it is already uploaded."""

    folder: Path
    layout: Layout
    reserved_names: frozenset[str] = frozenset({keys.MANIFEST_NAME})
    _uploaded: dict[Path, tuple[int, int]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def key(self, path: Path) -> str:
        """The output key of a file in the folder; ConfigError for names kbt writes itself."""
        relative = path.relative_to(self.folder).as_posix()
        if relative in self.reserved_names or relative.startswith(RESERVED):
            raise ConfigError(
                f"the scoring script wrote {relative} to AZUREML_BI_OUTPUT_PATH; that name is kbt's "
                f"own under s3OutputPath ({', '.join(sorted(self.reserved_names))}, {', '.join(RESERVED)})"
            )
        return self.layout.prefix + keys.contained(relative)

    def sync(self) -> list[str]:
        """Upload every file new or changed since its last upload; returns their keys."""
        with self._lock:
            uploaded = []
            for path in sorted(p for p in self.folder.rglob("*") if p.is_file()):
                stat = path.stat()
                version = (stat.st_size, stat.st_mtime_ns)
                if self._uploaded.get(path) == version:
                    continue
                key = self.key(path)
                self.layout.store.put_file(key, path)
                self._uploaded[path] = version
                uploaded.append(key)
            return uploaded


@dataclass
class SyncedPredictor:
    """A predictor whose custom outputs are uploaded after every mini-batch."""

    inner: Predictor
    outputs: CustomOutputs
    device: str = field(init=False)
    rows_independent: bool = False  # only scoring scripts are wrapped: they see their mini-batches

    def __post_init__(self) -> None:
        self.device = self.inner.device

    def predict(self, batch: ModelInput) -> ModelOutput:
        try:
            return self.inner.predict(batch)
        finally:
            self.outputs.sync()  # also what a failed run() wrote before it raised


def custom_outputs(job: ResolvedJob, layout: Layout, folder: Path) -> CustomOutputs:
    """The shard's custom-output folder (created), uploaded under ``s3OutputPath``."""
    folder.mkdir(parents=True, exist_ok=True)
    output = job.spec.transformOutput
    reserved = {keys.MANIFEST_NAME}
    if output.outputAction == OutputAction.APPEND_ROW:
        reserved.add(output.appendRowFileName)
    return CustomOutputs(folder, layout, frozenset(reserved))
