"""The one S3 client of kbt: the runner's data plane, its model fetching and `kubectl btj logs`.

``client_for(settings)`` builds (and caches per process) a thread-safe boto3 client from
``S3Settings``; ``S3Store`` is the ``Store`` of one bucket on it. botocore retries each request
(standard mode: 5xx, SlowDown, throttling, timeouts, connection errors); on top, every operation
is retried with exponential backoff (``S3Settings.attempts``) and a reader resumes an interrupted
download from the byte it had reached. When the attempts are spent the error becomes
``StorageUnavailable``. With ``S3Settings.kms_key_id`` every write (put, upload, multipart) asks
for SSE-KMS with that key.
"""

from __future__ import annotations

import contextlib
import functools
import io
import os
import socket
import threading
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

import boto3
from boto3.exceptions import S3UploadFailedError
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_exponential

from kbt.storage.base import (
    COPY_CHUNK,
    TEMP_MARK,
    ObjectInfo,
    ObjectNotFound,
    StorageError,
    StorageUnavailable,
    Store,
)
from kbt.storage.settings import S3Settings

T = TypeVar("T")
RETRIABLE_CODES = frozenset(
    {
        "SlowDown",
        "Throttling",
        "ThrottlingException",
        "RequestTimeout",
        "RequestTimeoutException",
        "InternalError",
        "ServiceUnavailable",
        "RequestLimitExceeded",
        "TooManyRequestsException",
    }
)
NOT_FOUND_CODES = frozenset({"NoSuchKey", "404", "NotFound"})
MIN_COPY_PART = 5 * 1024 * 1024  # S3's smallest multipart part (all but the last)
_clients: dict[tuple[S3Settings, str | None], Any] = {}
_clients_lock = threading.Lock()


def is_retriable(exc: BaseException) -> bool:
    """Transient S3 trouble: 5xx, throttling, timeouts, dropped or reset connections."""
    if isinstance(exc, S3UploadFailedError) and exc.__context__ is not None:
        # boto3's managed upload wraps the ClientError it gave up on; judge the original.
        return is_retriable(exc.__context__)
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
        return status >= 500 or error.get("Code", "") in RETRIABLE_CODES
    return isinstance(exc, BotoCoreError | ConnectionError | socket.timeout | TimeoutError) or (
        type(exc).__name__ in {"ProtocolError", "ReadTimeoutError", "IncompleteRead"}
    )


def default_credentials_available() -> bool:
    """Whether boto3's usual chain (environment, profile, instance role) finds credentials."""
    return boto3.session.Session().get_credentials() is not None


def client_for(settings: S3Settings) -> Any:
    """One thread-safe boto3 client per settings and endpoint per process."""
    endpoint = (
        settings.endpoint_url or os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    )
    cache_key = (settings, endpoint)
    with _clients_lock:
        if cache_key not in _clients:
            s3_options: Any = {"addressing_style": settings.addressing_style}
            config = Config(
                retries={"mode": "standard", "max_attempts": 3},
                connect_timeout=10,
                read_timeout=60,
                max_pool_connections=32,
                s3=s3_options,
            )
            keys = settings.credentials
            session = boto3.session.Session(
                aws_access_key_id=keys.access_key_id if keys else None,
                aws_secret_access_key=keys.secret_access_key if keys else None,
                aws_session_token=keys.session_token if keys else None,
            )
            _clients[cache_key] = session.client(
                "s3", endpoint_url=endpoint, region_name=settings.region, config=config
            )
        return _clients[cache_key]


def encryption_args(settings: S3Settings) -> dict[str, str]:
    """The SSE-KMS parameters of every write (none without a key id)."""
    if settings.kms_key_id is None:
        return {}
    return {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": settings.kms_key_id}


class S3Store(Store):
    """One bucket; keys are object keys."""

    def __init__(self, bucket: str, settings: S3Settings) -> None:
        self.bucket = bucket
        self.settings = settings
        self.client = client_for(settings)
        self._encryption = encryption_args(settings)
        self._attempts = settings.attempts_per_operation()

    def uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"

    def call(self, what: str, key: str, operation: Callable[[], T]) -> T:
        """Run ``operation`` with retries, translating failures into the storage errors."""
        retrying = Retrying(
            stop=stop_after_attempt(self._attempts),
            wait=wait_exponential(multiplier=0.2, max=5),
            retry=retry_if_exception(is_retriable),
            reraise=True,
        )
        try:
            return retrying(operation)
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if is_retriable(exc):
                raise StorageUnavailable(f"S3 unavailable: {what} {self.uri(key)}: {exc}") from exc
            if code == "NoSuchBucket":
                raise StorageError(
                    f"cannot {what} {self.uri(key)}: bucket {self.bucket!r} does not exist", code
                ) from exc
            if code in NOT_FOUND_CODES:
                raise ObjectNotFound(f"{self.uri(key)} does not exist", code) from exc
            raise StorageError(f"cannot {what} {self.uri(key)}: {code or exc}", code) from exc
        except Exception as exc:
            if is_retriable(exc):
                raise StorageUnavailable(f"S3 unavailable: {what} {self.uri(key)}: {exc}") from exc
            raise

    def list_objects(self, prefix: str) -> list[ObjectInfo]:
        def listing() -> list[ObjectInfo]:
            pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix)
            return [
                ObjectInfo(item["Key"], int(item["Size"]), item.get("ETag", ""))
                for page in pages
                for item in page.get("Contents", [])
                if not item["Key"].endswith("/") and TEMP_MARK not in item["Key"]
            ]

        return sorted(self.call("list", prefix, listing))

    def size(self, key: str) -> int:
        return self.stat(key).size

    def stat(self, key: str) -> ObjectInfo:
        head = self.call("stat", key, lambda: self.client.head_object(Bucket=self.bucket, Key=key))
        return ObjectInfo(key, int(head["ContentLength"]), head.get("ETag", ""))

    def open(self, key: str, start: int = 0, end: int | None = None) -> BinaryIO:
        return io.BufferedReader(_RangeReader(self, key, start, end), COPY_CHUNK)

    def download(self, key: str, path: Path) -> None:
        """Save ``key`` as the local file ``path`` (large objects in parallel ranged parts)."""
        self.call("download", key, lambda: self.client.download_file(self.bucket, key, str(path)))

    def put(self, key: str, data: bytes) -> None:
        self.call(
            "write",
            key,
            lambda: self.client.put_object(Bucket=self.bucket, Key=key, Body=data, **self._encryption),
        )

    def put_file(self, key: str, path: Path) -> None:
        extra = self._encryption or None
        self.call(
            "upload", key, lambda: self.client.upload_file(str(path), self.bucket, key, ExtraArgs=extra)
        )

    def delete(self, key: str) -> None:
        self.call("delete", key, lambda: self.client.delete_object(Bucket=self.bucket, Key=key))

    def compose(self, key: str, parts: list[str], scratch: Path) -> None:
        sizes = [self.size(part) for part in parts]
        if len(parts) > 1 and all(size >= MIN_COPY_PART for size in sizes[:-1]) and sizes[-1] > 0:
            self._compose_server_side(key, parts)
            return
        scratch.mkdir(parents=True, exist_ok=True)
        temp = scratch / f"{TEMP_MARK}{uuid.uuid4().hex}"
        try:
            self.concatenate_locally(parts, temp)
            self.put_file(key, temp)
        finally:
            temp.unlink(missing_ok=True)

    def _compose_server_side(self, key: str, parts: list[str]) -> None:
        """Multipart upload whose parts are copied from ``parts`` inside S3 (no download)."""
        upload = self.call(
            "start upload",
            key,
            lambda: self.client.create_multipart_upload(Bucket=self.bucket, Key=key, **self._encryption),
        )
        upload_id = upload["UploadId"]
        try:
            etags = []
            for number, part in enumerate(parts, start=1):
                copied = self.call(
                    "copy part",
                    part,
                    functools.partial(
                        self.client.upload_part_copy,
                        Bucket=self.bucket,
                        Key=key,
                        UploadId=upload_id,
                        PartNumber=number,
                        CopySource={"Bucket": self.bucket, "Key": part},
                    ),
                )
                etags.append({"PartNumber": number, "ETag": copied["CopyPartResult"]["ETag"]})
            self.call(
                "complete upload",
                key,
                lambda: self.client.complete_multipart_upload(
                    Bucket=self.bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": etags}
                ),
            )
        except BaseException:
            # a failed abort leaves the upload to lifecycle rules; the original error matters
            with contextlib.suppress(Exception):
                self.client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)
            raise


class _RangeReader(io.RawIOBase):
    """Bytes [start, end) of an object, re-requested from the current offset after a failure."""

    def __init__(self, store: S3Store, key: str, start: int, end: int | None) -> None:
        self._store, self._key, self._pos, self._end = store, key, start, end
        self._body: Any = None
        if end is not None and end <= start:
            self._end = start

    def readable(self) -> bool:
        return True

    def _open_body(self) -> Any:
        byte_range = f"bytes={self._pos}-" + ("" if self._end is None else str(self._end - 1))
        try:
            response = self._store.client.get_object(
                Bucket=self._store.bucket, Key=self._key, Range=byte_range
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "InvalidRange":
                return None  # reading at or past the end of the object
            raise
        return response["Body"]

    def _read_some(self, size: int) -> bytes:
        if self._body is None:
            self._body = self._open_body()
            if self._body is None:
                return b""
        try:
            return bytes(self._body.read(size))
        except BaseException:
            self._body.close()
            self._body = None
            raise

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        view = memoryview(buffer).cast("B")
        wanted = len(view) if self._end is None else min(len(view), self._end - self._pos)
        if wanted <= 0:
            return 0
        data = self._store.call("read", self._key, lambda: self._read_some(wanted))
        view[: len(data)] = data
        self._pos += len(data)
        return len(data)

    def close(self) -> None:
        if self._body is not None:
            self._body.close()
            self._body = None
        super().close()
