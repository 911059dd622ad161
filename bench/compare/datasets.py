"""Generate the benchmark inputs from the small seed datasets (deterministic, seed 0).

Tabular: heart rows resampled with jittered numerics, split into N CSV files.
Images: the 10 MNIST PNGs shifted and noised; the ImageNet goldfish cropped, flipped, tinted.
Text: the billsum bills (text column only), repeated to the asked count.
"""

from __future__ import annotations

import csv
import io
import shutil
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
from bench.compare.models import dataset, heart_training_frame


def heart_rows(rows: int, seed: int = 0) -> pd.DataFrame:
    """`rows` feature rows resampled from the clean training rows, numerics jittered."""
    rng = np.random.default_rng(seed)
    seed_frame = heart_training_frame().drop(columns=["target"])
    frame = seed_frame.iloc[rng.integers(0, len(seed_frame), rows)].reset_index(drop=True)
    for column, spread in (("age", 3), ("trestbps", 8), ("chol", 20), ("thalach", 10)):
        frame[column] = frame[column] + rng.integers(-spread, spread + 1, rows)
    frame["oldpeak"] = np.round(np.abs(frame["oldpeak"] + rng.normal(0, 0.2, rows)), 1)
    return frame


def write_tabular(rows: int, files: int, out_dir: Path) -> Path:
    """The rows as `files` CSV files (pyarrow's writer: 10M rows take seconds, not minutes)
    under out_dir/csv; returns that folder."""
    folder = out_dir / "csv"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    # Heart values hold no commas or quotes; the header is written unquoted, as pandas does.
    options = pacsv.WriteOptions(include_header=False, quoting_style="none")
    for index, part in enumerate(np.array_split(np.arange(rows), files)):
        table = pa.Table.from_pandas(heart_rows(len(part), seed=index), preserve_index=False)
        sink = io.BytesIO(",".join(table.column_names).encode() + b"\n")
        sink.seek(0, io.SEEK_END)
        pacsv.write_csv(table, sink, options)
        (folder / f"part-{index:03d}.csv").write_bytes(sink.getvalue())
    return folder


def write_mnist(count: int, out_dir: Path, per_dir: int = 10_000) -> None:
    """`count` 28x28 grayscale PNGs: seed digits shifted up to 2 px with pixel noise."""
    from PIL import Image  # noqa: PLC0415 (heavy: only image datasets)

    rng = np.random.default_rng(0)
    seeds = [
        np.asarray(Image.open(p).convert("L"), np.int16)
        for p in sorted((dataset("mnist") / "images").glob("*.png"))
    ]
    shutil.rmtree(out_dir, ignore_errors=True)
    for index in range(count):
        digit = index % len(seeds)
        shifted = np.roll(seeds[digit], tuple(rng.integers(-2, 3, 2)), axis=(0, 1))
        noisy = np.clip(shifted + rng.integers(-20, 21, shifted.shape), 0, 255).astype(np.uint8)
        folder = out_dir / f"{index // per_dir:03d}"
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(noisy, "L").save(folder / f"{index:06d}.png", optimize=False)


def write_jpegs(count: int, out_dir: Path) -> None:
    """`count` RGB JPEGs around 300x300 cut from the goldfish image, flipped and tinted."""
    from PIL import Image  # noqa: PLC0415 (heavy: only image datasets)

    rng = np.random.default_rng(0)
    source = Image.open(dataset("imagenet") / "goldfish.JPEG").convert("RGB")
    width, height = source.size
    shutil.rmtree(out_dir, ignore_errors=True)
    out_dir.mkdir(parents=True)
    for index in range(count):
        side = int(rng.integers(min(width, height) * 2 // 3, min(width, height) + 1))
        left, top = int(rng.integers(0, width - side + 1)), int(rng.integers(0, height - side + 1))
        crop = source.crop((left, top, left + side, top + side)).resize((300, 300))
        if rng.random() < 0.5:
            crop = crop.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        tint = np.clip(np.asarray(crop, np.float32) * rng.uniform(0.8, 1.2, 3), 0, 255).astype(np.uint8)
        Image.fromarray(tint, "RGB").save(out_dir / f"img-{index:05d}.jpg", quality=90)


def billsum_texts() -> list[str]:
    csv.field_size_limit(sys.maxsize)
    texts: list[str] = []
    for path in sorted((dataset("billsum")).glob("billsum-*.csv")):
        with path.open(newline="") as handle:
            texts.extend(row["text"] for row in csv.DictReader(handle))
    return texts


def write_billsum(count: int, out_dir: Path, files: int = 4) -> None:
    """`count` bills (repeating the dataset if needed) as CSV files with one `text` column."""
    texts = billsum_texts()
    chosen = [texts[i % len(texts)] for i in range(count)]
    shutil.rmtree(out_dir, ignore_errors=True)
    out_dir.mkdir(parents=True)
    for index, part in enumerate(np.array_split(np.arange(count), files)):
        buffer = io.StringIO()
        pd.DataFrame({"text": [chosen[i] for i in part]}).to_csv(buffer, index=False)
        (out_dir / f"bills-{index:02d}.csv").write_text(buffer.getvalue())
