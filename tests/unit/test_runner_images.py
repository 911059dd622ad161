"""Image records to one tensor (kbt.runner.images): one image or several, scaled, laid out."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from kbt.api.models import ImagePreprocessing
from kbt.flavors.base import Record
from kbt.runner.images import decode_images


def _png(values: list[list[int]]) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.array(values, dtype=np.uint8), mode="L").save(buffer, format="PNG")
    return buffer.getvalue()


IMAGES = [[[0, 10], [20, 30]], [[1, 2], [3, 4]]]


@pytest.mark.parametrize("count", [1, 2])
@pytest.mark.parametrize("scale", [1.0, 0.5])
def test_images_become_one_float32_tensor_per_mini_batch(count: int, scale: float) -> None:
    records = [Record(f"{i}.png", 0, _png(IMAGES[i])) for i in range(count)]
    prep = ImagePreprocessing(colorMode="L", scale=scale, layout="flat", mean=[5.0], std=[2.0])
    tensor, kept, rejected = decode_images(records, prep)
    expected = (np.array(IMAGES[:count], dtype=np.float32).reshape(count, 4) * scale - 5.0) / 2.0
    assert tensor is not None and tensor.dtype == np.float32 and tensor.flags.writeable
    assert np.array_equal(tensor, expected) and kept == list(range(count)) and not rejected


def test_a_lone_image_keeps_its_pixels_unscaled() -> None:
    tensor, _, _ = decode_images([Record("a.png", 0, _png(IMAGES[0]))], ImagePreprocessing(colorMode="L"))
    assert tensor is not None and tensor.shape == (1, 2, 2, 1)
    assert tensor[0, :, :, 0].tolist() == [[0.0, 10.0], [20.0, 30.0]]
