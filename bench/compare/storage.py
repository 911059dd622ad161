"""Inputs and outputs on local disk or on the loopback S3 server (moto), behind one small API."""

from __future__ import annotations

import io
import logging
import os
import shutil
import socket
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO

S3_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


TRASH_DIR = ".bench-trash"  # where Store.clear moves old local outputs, next to them


def empty_trash(folder: Path) -> None:
    """Delete the old outputs ``Store.clear`` moved aside under ``folder`` (once nothing is timed)."""
    for trash in folder.rglob(TRASH_DIR):
        shutil.rmtree(trash, ignore_errors=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def moto_server() -> Iterator[str]:
    """A moto S3 server on 127.0.0.1 (threaded, in this process); yields its endpoint URL."""
    from moto.server import ThreadedMotoServer  # noqa: PLC0415 (dev dep: only S3 runs)

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one access-log line per request otherwise
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    os.environ.update(S3_ENV)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


def s3_client(endpoint: str) -> Any:
    import boto3  # noqa: PLC0415 (only S3 runs pay its import; local baselines are timed whole)

    return boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")


def split_uri(uri: str) -> tuple[str, str]:
    bucket, _, prefix = uri.removeprefix("s3://").partition("/")
    return bucket, prefix


def upload_dir(local_dir: Path, uri: str, endpoint: str) -> None:
    """Upload every file under local_dir to the s3:// prefix, creating the bucket if needed."""
    client = s3_client(endpoint)
    bucket, prefix = split_uri(uri)
    if bucket not in {b["Name"] for b in client.list_buckets().get("Buckets", [])}:
        client.create_bucket(Bucket=bucket)
    for path in sorted(p for p in local_dir.rglob("*") if p.is_file()):
        client.upload_file(str(path), bucket, prefix + path.relative_to(local_dir).as_posix())


class Store:
    """Lists, reads and writes objects under a prefix, local or s3://, relative names in posix."""

    def __init__(self, uri: str, endpoint: str | None) -> None:
        self.uri = uri
        self.is_s3 = uri.startswith("s3://")
        if self.is_s3:
            if endpoint is None:
                raise ValueError(f"{uri}: an s3:// location needs the S3 endpoint")
            self.client = s3_client(endpoint)
            self.bucket, self.prefix = split_uri(uri)
        else:
            self.root = Path(uri)

    def warm(self) -> None:
        """Read every local input once, so that the page cache holds it for every contender (the
        first run of a workload would otherwise pay alone for what the last workload evicted:
        measured +1.2 s on 5,000 PNGs). S3 objects live in the moto server's memory."""
        if not self.is_s3:
            for name in self.list():
                (self.root / name).read_bytes()

    def list(self) -> list[str]:
        if not self.is_s3:
            return sorted(p.relative_to(self.root).as_posix() for p in self.root.rglob("*") if p.is_file())
        names: list[str] = []
        for page in self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=self.prefix
        ):
            names.extend(obj["Key"].removeprefix(self.prefix) for obj in page.get("Contents", []))
        return sorted(names)

    def read(self, name: str) -> bytes:
        if not self.is_s3:
            return (self.root / name).read_bytes()
        body: bytes = self.client.get_object(Bucket=self.bucket, Key=self.prefix + name)["Body"].read()
        return body

    def open(self, name: str) -> BinaryIO:
        """The object for reading: the local file itself, or the S3 object's bytes in memory."""
        if not self.is_s3:
            return (self.root / name).open("rb")
        return io.BytesIO(self.read(name))

    @contextmanager
    def writer(self, name: str) -> Iterator[BinaryIO]:
        """A binary file to write the object to: the local file, or a buffer uploaded on exit."""
        if not self.is_s3:
            path = self.root / name
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("wb") as handle:
                yield handle
            return
        buffer = io.BytesIO()
        yield buffer
        self.write(name, buffer.getvalue())

    def write(self, name: str, data: bytes) -> None:
        if not self.is_s3:
            path = self.root / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
            return
        self.client.put_object(Bucket=self.bucket, Key=self.prefix + name, Body=data)

    def clear(self) -> None:
        """Remove everything under the prefix (outputs of a previous run). A local folder is moved
        aside into TRASH_DIR (``empty_trash`` deletes it later): on ext4, creating files right
        after thousands were deleted is 10-30x slower for a while (6 us against 80-200 us a file,
        measured here), which would charge this cleanup to the next contender that writes many."""
        if not self.is_s3:
            if self.root.exists():
                trash = self.root.parent / TRASH_DIR
                trash.mkdir(exist_ok=True)
                self.root.rename(trash / f"{self.root.name}-{uuid.uuid4().hex[:8]}")
            self.root.mkdir(parents=True)
            return
        if self.bucket not in {b["Name"] for b in self.client.list_buckets().get("Buckets", [])}:
            self.client.create_bucket(Bucket=self.bucket)
        for name in self.list():
            self.client.delete_object(Bucket=self.bucket, Key=self.prefix + name)
