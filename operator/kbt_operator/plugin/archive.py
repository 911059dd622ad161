"""Shard logs archived by the runner under `<s3OutputPath>/_kbt/logs/shard-NNNNN.log`.

The plugin runs on the user's machine: the S3 endpoint comes from AWS_ENDPOINT_URL_S3 /
AWS_ENDPOINT_URL, else the job's spec.s3.endpointUrl; credentials from the usual AWS chain
(environment, profile), else from the Secret named in the job's spec.s3.credentialsSecret.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from typing import TYPE_CHECKING

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from kbt_operator.plugin.errors import PluginError, PluginExit
from kbt_operator.plugin.job import JobView

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

LOG_ARCHIVE_DIR = "_kbt/logs/"
_ARCHIVE_NAME = re.compile(r"shard-(\d+)\.log$")
SecretReader = Callable[[str], dict[str, str]]


def archive_key(index: int) -> str:
    """Key of one shard's archived log, relative to the job's s3OutputPath."""
    return f"{LOG_ARCHIVE_DIR}shard-{index:05d}.log"


def split_s3_uri(uri: str) -> tuple[str, str]:
    """('bucket', 'prefix/') of an s3:// URI; the prefix is empty or ends with '/'."""
    bucket, _, prefix = uri.removeprefix("s3://").partition("/")
    return bucket, (prefix.rstrip("/") + "/") if prefix.strip("/") else ""


class LogArchive:
    """Reads the archived shard logs of one job."""

    def __init__(self, job: JobView, read_secret: SecretReader) -> None:
        output = job.spec.transformOutput.s3OutputPath
        if not output.startswith("s3://"):
            raise PluginError(f"job {job.name} writes to {output!r}, not S3: it has no archived logs")
        self.bucket, prefix = split_s3_uri(output)
        self.prefix = prefix + LOG_ARCHIVE_DIR
        self.location = f"s3://{self.bucket}/{self.prefix}"
        self._client = _s3_client(job, read_secret)

    def shards(self) -> dict[int, str]:
        """Shard index -> object key of every archived log."""
        found: dict[int, str] = {}
        try:
            pages = self._client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=self.prefix
            )
            for page in pages:
                for item in page.get("Contents", []):
                    match = _ARCHIVE_NAME.search(item["Key"])
                    if match and item["Key"].startswith(self.prefix):
                        found[int(match.group(1))] = item["Key"]
        except (ClientError, BotoCoreError) as exc:
            raise _s3_error(exc, f"list {self.location}") from exc
        return found

    def read(self, key: str) -> list[str]:
        try:
            body: bytes = self._client.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        except (ClientError, BotoCoreError) as exc:
            raise _s3_error(exc, f"read s3://{self.bucket}/{key}") from exc
        return body.decode("utf-8", errors="replace").splitlines()


def _s3_client(job: JobView, read_secret: SecretReader) -> S3Client:
    settings = job.spec.s3
    secret: dict[str, str] = {}
    session = boto3.Session(
        region_name=job.spec.region or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
    )
    if session.get_credentials() is None and settings.credentialsSecret is not None:
        secret = read_secret(settings.credentialsSecret.name)
        session = boto3.Session(
            aws_access_key_id=secret.get("AWS_ACCESS_KEY_ID"),
            aws_secret_access_key=secret.get("AWS_SECRET_ACCESS_KEY"),
            aws_session_token=secret.get("AWS_SESSION_TOKEN"),
            region_name=session.region_name,
        )
    endpoint = (
        os.environ.get("AWS_ENDPOINT_URL_S3")
        or os.environ.get("AWS_ENDPOINT_URL")
        or settings.endpointUrl
        or secret.get("AWS_ENDPOINT_URL")
    )
    style = Config(s3={"addressing_style": settings.addressingStyle}, retries={"max_attempts": 2})
    return session.client("s3", endpoint_url=endpoint, config=style)


def _s3_error(exc: Exception, action: str) -> PluginError:
    if isinstance(exc, ClientError):
        code = str(exc.response.get("Error", {}).get("Code", ""))
        if code in {"AccessDenied", "403", "InvalidAccessKeyId", "SignatureDoesNotMatch"}:
            return PluginError(
                f"S3 denied access: cannot {action} ({code}); set AWS credentials that can read the "
                "job's output",
                PluginExit.FORBIDDEN,
            )
        if code in {"NoSuchBucket", "NoSuchKey", "404"}:
            return PluginError(f"cannot {action}: {code}", PluginExit.NOT_FOUND)
    return PluginError(f"cannot {action}: {exc}")
