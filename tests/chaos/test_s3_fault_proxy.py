"""The S3 fault proxy itself: it forwards faithfully, injects each fault kind, and is deterministic."""

from __future__ import annotations

import io

import boto3
import pytest
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import ClientError, ConnectionClosedError, EndpointConnectionError

from chaos.s3_fault_proxy import ERROR_FAULTS, Fault, FaultPlan, Operation, S3FaultProxy, classify


def _client(endpoint: str, attempts: int = 1):  # type: ignore[no-untyped-def]
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(
            retries={"mode": "standard", "total_max_attempts": attempts}, connect_timeout=5, read_timeout=10
        ),
    )


@pytest.mark.parametrize(
    ("method", "target", "operation"),
    [
        ("GET", "/bkt/a/b.csv", Operation.READ),
        ("HEAD", "/bkt/a", Operation.READ),
        ("PUT", "/bkt/a/b.out", Operation.WRITE),
        ("DELETE", "/bkt/a/b.out", Operation.WRITE),
        ("POST", "/bkt?delete", Operation.WRITE),
        ("POST", "/bkt/big?uploads", Operation.MULTIPART),
        ("PUT", "/bkt/big?partNumber=2&uploadId=xyz", Operation.MULTIPART),
        ("POST", "/bkt/big?uploadId=xyz", Operation.MULTIPART),
        ("GET", "/bkt?list-type=2&prefix=a%2F", Operation.LIST),
        ("PUT", "/bkt", Operation.OTHER),
    ],
)
def test_requests_are_classified_by_what_they_do(method: str, target: str, operation: Operation) -> None:
    assert classify(method, target) is operation


def test_forwards_reads_writes_and_multipart_uploads_unchanged(fault_proxy: S3FaultProxy) -> None:
    client = _client(fault_proxy.endpoint_url)
    client.create_bucket(Bucket="proxy-forward")
    client.put_object(Bucket="proxy-forward", Key="in/a.csv", Body=b"x,y\n1,2\n")
    big = bytes(range(256)) * (24 * 1024)  # 6 MiB: two parts of 5 MiB and 1 MiB
    client.upload_fileobj(
        io.BytesIO(big),
        "proxy-forward",
        "in/big.bin",
        Config=TransferConfig(multipart_threshold=5 << 20, multipart_chunksize=5 << 20),
    )
    assert client.get_object(Bucket="proxy-forward", Key="in/a.csv")["Body"].read() == b"x,y\n1,2\n"
    assert client.get_object(Bucket="proxy-forward", Key="in/big.bin")["Body"].read() == big
    assert client.head_object(Bucket="proxy-forward", Key="in/big.bin")["ContentLength"] == len(big)
    assert sorted(o["Key"] for o in client.list_objects_v2(Bucket="proxy-forward")["Contents"]) == [
        "in/a.csv",
        "in/big.bin",
    ]
    assert fault_proxy.stats.requests[Operation.MULTIPART] == 4  # create, two parts, complete
    assert fault_proxy.stats.total_injected == 0


@pytest.mark.parametrize(
    ("fault", "error", "code"),
    [
        (Fault.INTERNAL_ERROR, ClientError, "InternalError"),
        (Fault.SLOW_DOWN, ClientError, "SlowDown"),
        (Fault.RESET, (ConnectionClosedError, EndpointConnectionError), None),
    ],
)
def test_each_error_fault_reaches_the_client(
    fault_proxy: S3FaultProxy,
    fault: Fault,
    error: type[Exception] | tuple[type[Exception], ...],
    code: str | None,
) -> None:
    client = _client(fault_proxy.endpoint_url)
    client.create_bucket(Bucket="proxy-faults")
    client.put_object(Bucket="proxy-faults", Key="k", Body=b"v")
    fault_proxy.plan = FaultPlan(rate=1.0, faults=(fault,))
    with pytest.raises(error) as caught:
        client.get_object(Bucket="proxy-faults", Key="k")
    if code is not None:
        assert isinstance(caught.value, ClientError)
        assert caught.value.response["Error"]["Code"] == code
    fault_proxy.plan = FaultPlan()
    assert (
        client.get_object(Bucket="proxy-faults", Key="k")["Body"].read() == b"v"
    )  # connection pool recovers


def test_faults_only_hit_the_chosen_operations(fault_proxy: S3FaultProxy) -> None:
    client = _client(fault_proxy.endpoint_url)
    client.create_bucket(Bucket="proxy-ops")
    fault_proxy.plan = FaultPlan(
        rate=1.0, faults=(Fault.INTERNAL_ERROR,), operations=frozenset({Operation.WRITE})
    )
    with pytest.raises(ClientError):
        client.put_object(Bucket="proxy-ops", Key="k", Body=b"v")
    assert client.list_objects_v2(Bucket="proxy-ops")["KeyCount"] == 0  # a faulted write never reached S3
    assert fault_proxy.stats.injected == {(Operation.WRITE, Fault.INTERNAL_ERROR): 1}


def test_retrying_clients_survive_a_ten_percent_fault_rate(fault_proxy: S3FaultProxy) -> None:
    client = _client(fault_proxy.endpoint_url, attempts=8)
    client.create_bucket(Bucket="proxy-rate")
    fault_proxy.plan = FaultPlan(rate=0.1, seed=7, faults=(*ERROR_FAULTS, Fault.SLOW), slow_seconds=0.01)
    for i in range(40):
        client.put_object(Bucket="proxy-rate", Key=f"k{i}", Body=str(i).encode())
        assert client.get_object(Bucket="proxy-rate", Key=f"k{i}")["Body"].read() == str(i).encode()
    injected = fault_proxy.stats.total_injected
    assert 2 <= injected <= 25, injected  # ~10% of the 80+ requests


def test_fault_decisions_repeat_for_the_same_seed(s3_server: str) -> None:
    def decisions(seed: int) -> list[Fault | None]:
        proxy = S3FaultProxy(s3_server, FaultPlan(rate=0.3, seed=seed))
        return [proxy.decide("GET", f"/bkt/key-{i % 10}")[1] for i in range(200)]

    assert decisions(1) == decisions(1)
    assert decisions(1) != decisions(2)
    hits = sum(d is not None for d in decisions(1))
    assert 30 <= hits <= 90, hits
    assert len(set(decisions(1)) - {None}) == 4  # every fault kind is drawn


def test_rejects_impossible_plans(s3_server: str) -> None:
    with pytest.raises(ValueError, match="rate"):
        FaultPlan(rate=1.5)
    with pytest.raises(ValueError, match="fault kind"):
        FaultPlan(rate=0.5, faults=())
    with pytest.raises(ValueError, match="http://"):
        S3FaultProxy("https://example.com")
