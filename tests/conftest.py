"""Shared fixtures: a real S3 server (moto) on loopback, and repository paths."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest

from kbt.datasets import DatasetNotFoundError, dataset_root

REPO = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def s3_server() -> Iterator[str]:
    """A moto S3 server on 127.0.0.1; yields its endpoint URL. Credentials are moto's dummies."""
    from moto.server import ThreadedMotoServer  # noqa: PLC0415 (heavy: only S3 fixtures)

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture
def s3_env(s3_server: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """Point boto3 (and kbt) at the loopback S3 server for this test."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", s3_server)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    return s3_server


@pytest.fixture
def s3_client(s3_env: str):  # type: ignore[no-untyped-def]
    return boto3.client("s3", endpoint_url=s3_env, region_name="us-east-1")


@pytest.fixture
def bucket(s3_client, request: pytest.FixtureRequest) -> str:  # type: ignore[no-untyped-def]
    """A fresh, empty bucket named after the test."""
    name = "t-" + "".join(c if c.isalnum() else "-" for c in request.node.name.lower())[:50].strip("-")
    s3_client.create_bucket(Bucket=name)
    return name


@pytest.fixture(scope="session")
def datasets() -> Path:
    """The example datasets folder: $KBT_DATASETS, ../shared/datasets or fetched (kbt.datasets)."""
    try:
        return dataset_root("heart", "billsum", "mnist", "imagenet")
    except DatasetNotFoundError as exc:
        pytest.fail(str(exc))


os.environ.setdefault("KBT_LOG_FORMAT", "console")
