"""Shard logs archived by the runner under `<s3OutputPath>/_kbt/logs/shard-NNNNN.log`.

The plugin runs on the user's machine: the S3 endpoint comes from AWS_ENDPOINT_URL_S3 /
AWS_ENDPOINT_URL, else the job's spec.s3.endpointUrl; credentials from the usual AWS chain
(environment, profile), else from the Secret named in the job's spec.s3.credentialsSecret.
Reads go through ``kbt.storage``, the same S3 client the runner writes the logs with.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from kbt.api.layout import LOGS_DIR, SHARD_LOG_NAME
from kbt.storage import (
    S3Credentials,
    S3Settings,
    StorageError,
    StorageUnavailable,
    directory_prefix,
    split_s3_uri,
)
from kbt.storage.s3 import S3Store, default_credentials_available
from kbt_operator.plugin.errors import PluginError, PluginExit
from kbt_operator.plugin.job import JobView

SecretReader = Callable[[str], dict[str, str]]


class LogArchive:
    """Reads the archived shard logs of one job."""

    def __init__(self, job: JobView, read_secret: SecretReader) -> None:
        output = job.spec.transformOutput.s3OutputPath
        if not output.startswith("s3://"):
            raise PluginError(f"job {job.name} writes to {output!r}, not S3: it has no archived logs")
        bucket, prefix = split_s3_uri(output)
        self.prefix = directory_prefix(prefix) + LOGS_DIR
        self._store = S3Store(bucket, _s3_settings(job, read_secret))
        self.location = self._store.uri(self.prefix)

    def shards(self) -> dict[int, str]:
        """Shard index -> object key of every archived log."""
        try:
            listed = self._store.list_objects(self.prefix)
        except (StorageError, StorageUnavailable) as exc:
            raise _s3_error(exc, f"list {self.location}") from exc
        found: dict[int, str] = {}
        for item in listed:
            match = SHARD_LOG_NAME.search(item.key)
            if match:
                found[int(match.group(1))] = item.key
        return found

    def read(self, key: str) -> list[str]:
        try:
            body = self._store.read(key)
        except (StorageError, StorageUnavailable) as exc:
            raise _s3_error(exc, f"read {self._store.uri(key)}") from exc
        return body.decode("utf-8", errors="replace").splitlines()


def _s3_settings(job: JobView, read_secret: SecretReader) -> S3Settings:
    """The job's S3 as seen from the user's machine: the environment's endpoint and credentials
    first, then the job's endpoint and its credentials Secret."""
    connection = job.spec.s3
    secret: dict[str, str] = {}
    credentials = None
    if not default_credentials_available() and connection.credentialsSecret is not None:
        secret = read_secret(connection.credentialsSecret.name)
        credentials = S3Credentials(
            secret.get("AWS_ACCESS_KEY_ID"),
            secret.get("AWS_SECRET_ACCESS_KEY"),
            secret.get("AWS_SESSION_TOKEN"),
        )
    endpoint = (
        os.environ.get("AWS_ENDPOINT_URL_S3")
        or os.environ.get("AWS_ENDPOINT_URL")
        or connection.endpointUrl
        or secret.get("AWS_ENDPOINT_URL")
    )
    return S3Settings(
        endpoint_url=endpoint,
        addressing_style=connection.addressingStyle,
        region=job.spec.region or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1",
        credentials=credentials,
        attempts=1,  # an interactive command: botocore's own retries are enough
    )


def _s3_error(exc: StorageError | StorageUnavailable, action: str) -> PluginError:
    code = exc.code if isinstance(exc, StorageError) else ""
    if code in {"AccessDenied", "403", "InvalidAccessKeyId", "SignatureDoesNotMatch"}:
        return PluginError(
            f"S3 denied access: cannot {action} ({code}); set AWS credentials that can read the job's output",
            PluginExit.FORBIDDEN,
        )
    if code in {"NoSuchBucket", "NoSuchKey", "404"}:
        return PluginError(f"cannot {action}: {code}", PluginExit.NOT_FOUND)
    return PluginError(f"cannot {action}: {exc}")
