"""Which S3 to talk to and how: ``S3Settings`` and S3 URI parsing (no boto3 import here).

Endpoint: ``endpoint_url``, else ``AWS_ENDPOINT_URL_S3`` / ``AWS_ENDPOINT_URL`` (read when the client
is built); credentials: ``credentials``, else boto3's usual chain (environment, profile, role).
``kms_key_id`` makes every write SSE-KMS with that key (``transformOutput.kmsKeyId``).
``attempts`` bounds the retries of one operation (default: the runner's ``KBT_S3_ATTEMPTS``).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from urllib.parse import unquote, urlparse

DEFAULT_ATTEMPTS = 6


@dataclass(frozen=True)
class S3Credentials:
    """A static AWS key pair (and session token), e.g. read from the job's credentials Secret."""

    access_key_id: str | None
    secret_access_key: str | None = field(default=None, repr=False)
    session_token: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class S3Settings:
    """Where S3 is (endpoint, addressing style, region), who we are, and how writes are encrypted."""

    endpoint_url: str | None = None
    addressing_style: str = "auto"
    region: str | None = None
    kms_key_id: str | None = None
    credentials: S3Credentials | None = None
    attempts: int | None = None

    def attempts_per_operation(self) -> int:
        """``attempts`` when given, else ``KBT_S3_ATTEMPTS`` as the environment says now."""
        if self.attempts is not None:
            return max(1, self.attempts)
        return max(1, int(os.environ.get("KBT_S3_ATTEMPTS", str(DEFAULT_ATTEMPTS))))


# S3 https URLs as the S3 user guide documents them (virtual-hosted and path-style), with or
# without a region, legacy `s3-region`, dualstack, and the China partition.
_S3_HOST = r"s3(?:[.-](?:dualstack\.)?[a-z0-9-]+)?\.amazonaws\.com(?:\.cn)?"
_VIRTUAL_HOSTED = re.compile(rf"(?P<bucket>[a-z0-9][a-z0-9.\-]*[a-z0-9])\.{_S3_HOST}")
_PATH_STYLE = re.compile(_S3_HOST)


def split_s3_uri(uri: str) -> tuple[str, str]:
    """``s3://bucket/some/key`` -> ``("bucket", "some/key")``; also an S3 https URL, virtual-hosted
    (``https://bucket.s3.region.amazonaws.com/some/key``) or path-style
    (``https://s3.region.amazonaws.com/bucket/some/key``), as SageMaker's S3Uri allows."""
    parsed = urlparse(uri)
    if parsed.scheme != "https":
        return parsed.netloc, parsed.path.lstrip("/")
    host, key = parsed.netloc.lower(), unquote(parsed.path.lstrip("/"))
    if match := _VIRTUAL_HOSTED.fullmatch(host):
        return match["bucket"], key
    bucket, _, rest = key.partition("/")
    if _PATH_STYLE.fullmatch(host) and bucket:
        return bucket, rest
    raise ValueError(
        f"{uri!r} is not an S3 https URL (https://BUCKET.s3.REGION.amazonaws.com/KEY or "
        "https://s3.REGION.amazonaws.com/BUCKET/KEY); for other S3 endpoints write s3://BUCKET/KEY "
        "and set s3.endpointUrl"
    )
