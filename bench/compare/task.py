"""What one contender run gets: where the data and model are, how to batch, where to write.

The harness writes a ``Task`` as JSON; each contender's child process reads it back, so every
contender of a workload scores the same files with the same model and batch size.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

Kind = Literal["tabular", "image", "text"]
Format = Literal["csv", "png", "jpeg"]


@dataclass(frozen=True)
class Task:
    workload: str  # model family: heart, mnist, resnet50, bart
    kind: Kind
    input_format: Format
    input_uri: str  # s3://bucket/prefix/ or a local directory
    output_uri: str  # s3://bucket/prefix/ or a local directory (emptied before each run)
    model_dir: str
    batch_size: int  # records per mini-batch (kbt miniBatchSize, Ray batch_size, ceiling loop)
    workers: int  # kbt --workers / shard count, Ray actors, HTTP requests in flight
    records: int  # records in the input, to check every contender scored all of them
    s3_endpoint: str | None = None
    payload_mb: int = 6  # maxPayloadInMB for the HTTP client and kbt
    image_size: tuple[int, int] | None = None  # (width, height) images are resized to
    color_mode: Literal["L", "RGB"] = "RGB"
    text_column: str = "text"
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def on_s3(self) -> bool:
        return self.input_uri.startswith("s3://")

    def dump(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self), indent=2))

    @classmethod
    def load(cls, path: Path) -> Task:
        data = json.loads(path.read_text())
        if data.get("image_size") is not None:
            data["image_size"] = tuple(data["image_size"])
        return cls(**data)
