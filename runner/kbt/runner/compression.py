"""``transformInput.compressionType``, as SageMaker defines it: ``Gzip`` means every input object
is gzip-compressed, ``None`` means none is, whatever its key ends with (a ``.gz`` object is read
as it is). A ``Gzip`` object that does not start with the gzip magic bytes is an input error
naming the object.
"""

from __future__ import annotations

import gzip
import io
from typing import Any, BinaryIO, cast

from kbt.api.models import CompressionType
from kbt.api.resolved import ResolvedJob
from kbt.runner.errors import InputError

GZIP_MAGIC = b"\x1f\x8b"


def is_gzip(job: ResolvedJob) -> bool:
    """Whether the job's input objects are gzip-compressed (then they are never split)."""
    return job.spec.transformInput.compressionType == CompressionType.GZIP


def decompressed(job: ResolvedJob, raw: io.BufferedReader[Any], uri: str) -> BinaryIO:
    """``raw`` (a buffered reader of object ``uri`` from its first byte), gunzipped if the job
    says its inputs are gzip-compressed."""
    if not is_gzip(job):
        return cast(BinaryIO, raw)
    head = raw.peek(len(GZIP_MAGIC))
    if not head.startswith(GZIP_MAGIC):
        raise InputError(
            f"{uri}: transformInput.compressionType is Gzip but the object is not gzip-compressed "
            f"(it starts with {head[:8]!r}); set compressionType: None for uncompressed inputs"
        )
    return cast(BinaryIO, gzip.GzipFile(fileobj=raw, mode="rb"))
