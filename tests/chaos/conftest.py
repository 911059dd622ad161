"""Fixtures of the chaos suites: an S3 fault proxy in front of the session's moto server."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from chaos.s3_fault_proxy import S3FaultProxy


@pytest.fixture
def fault_proxy(s3_server: str) -> Iterator[S3FaultProxy]:
    """A fault-free proxy to the moto server; tests set ``proxy.plan`` to inject faults."""
    with S3FaultProxy(s3_server) as proxy:
        yield proxy
