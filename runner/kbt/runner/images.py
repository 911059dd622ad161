"""Decode image records into one tensor per mini-batch, per the model's imagePreprocessing.

Each record is a whole image file (PNG, JPEG, anything Pillow reads). Steps: decode, convert to
``colorMode`` (L or RGB), resize to ``width`` x ``height`` when set, float32, multiply by
``scale``, subtract ``mean`` and divide by ``std`` per channel, lay out as NHWC / NCHW / NHW /
flat. A record Pillow cannot decode, or whose size differs from the batch's first image when no
resize is set, is rejected on its own with the reason.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np

from kbt.api.models import ImagePreprocessing
from kbt.flavors.base import Record


def _pixels(data: bytes, prep: ImagePreprocessing) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError  # noqa: PLC0415 (heavy: only image jobs)

    try:
        with Image.open(io.BytesIO(data)) as image:
            # convert and resize only when they change something (otherwise they copy the image)
            converted = image if image.mode == prep.colorMode else image.convert(prep.colorMode)
            if prep.width and prep.height and converted.size != (prep.width, prep.height):
                converted = converted.resize((prep.width, prep.height), Image.Resampling.BILINEAR)
            array = np.asarray(converted, dtype=np.float32)
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as exc:
        raise ValueError(f"not a decodable image ({exc})") from None
    return array if array.ndim == 3 else array[:, :, None]


def _normalise(stack: np.ndarray, prep: ImagePreprocessing) -> np.ndarray:
    stack = stack * np.float32(prep.scale)
    channels = stack.shape[-1]
    if prep.mean is not None:
        stack = stack - np.asarray(prep.mean[:channels], dtype=np.float32)
    if prep.std is not None:
        stack = stack / np.asarray(prep.std[:channels], dtype=np.float32)
    return stack.astype(np.float32, copy=False)


def _layout(stack: np.ndarray, layout: str) -> np.ndarray:
    if layout == "NCHW":
        return np.ascontiguousarray(stack.transpose(0, 3, 1, 2))
    if layout == "NHW":
        return stack[..., 0] if stack.shape[-1] == 1 else stack.mean(axis=-1)
    if layout == "flat":
        return stack.reshape(len(stack), -1)
    return stack


def decode_images(
    records: Sequence[Record], prep: ImagePreprocessing | None
) -> tuple[np.ndarray | None, list[int], dict[int, str]]:
    """(tensor of the decodable records, their positions, reasons of the rejected positions)."""
    settings = prep or ImagePreprocessing()
    arrays: list[np.ndarray] = []
    kept: list[int] = []
    rejected: dict[int, str] = {}
    for position, record in enumerate(records):
        try:
            pixels = _pixels(record.data, settings)
        except ValueError as exc:
            rejected[position] = str(exc)
            continue
        if arrays and pixels.shape != arrays[0].shape:
            rejected[position] = (
                f"image is {pixels.shape[1]}x{pixels.shape[0]} but this mini-batch's images are "
                f"{arrays[0].shape[1]}x{arrays[0].shape[0]}; set imagePreprocessing width and height"
            )
            continue
        arrays.append(pixels)
        kept.append(position)
    if not arrays:
        return None, kept, rejected
    return _layout(_normalise(np.stack(arrays), settings), settings.layout), kept, rejected
