"""A fault-injecting HTTP proxy for S3: sits on 127.0.0.1 in front of a real S3 server (moto).

Clients point their endpoint URL at the proxy. Each request is classified (read, write,
multipart, list, other) and, at the configured rate, answered with a fault instead of being
forwarded: a 500 ``InternalError`` or 503 ``SlowDown`` S3 error document, a TCP reset, or a
delay before forwarding. Whether a request is faulted is a pure function of the seed, the request
line and how many times that request line was seen before, so a run is deterministic however the
client's threads interleave, and a retried request gets a fresh draw.
"""

from __future__ import annotations

import hashlib
import http.client
import re
import socket
import struct
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from enum import StrEnum
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from urllib.parse import parse_qs, urlsplit

_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-connection",
        "transfer-encoding",
        "te",
        "trailer",
        "upgrade",
        "expect",
    }
)
_UPLOAD_ID = re.compile(r"uploadId=[^&]*")


class Operation(StrEnum):
    """What an S3 request does, as far as fault selection cares."""

    READ = "read"  # GetObject, HeadObject
    WRITE = "write"  # PutObject, CopyObject, DeleteObject(s)
    MULTIPART = "multipart"  # Create/UploadPart/Complete/Abort multipart upload
    LIST = "list"  # ListObjects(V2), bucket HEAD/GET
    OTHER = "other"  # bucket creation and anything else


class Fault(StrEnum):
    INTERNAL_ERROR = "internal_error"  # HTTP 500 InternalError
    SLOW_DOWN = "slow_down"  # HTTP 503 SlowDown
    RESET = "reset"  # TCP RST before any response byte
    SLOW = "slow"  # forward, but only after `slow_seconds`


ALL_OPERATIONS = frozenset(Operation)
ERROR_FAULTS = (Fault.INTERNAL_ERROR, Fault.SLOW_DOWN, Fault.RESET)


@dataclass(frozen=True)
class FaultPlan:
    """Which requests get which faults. ``rate`` is the probability that a request is faulted."""

    rate: float = 0.0
    seed: int = 0
    faults: tuple[Fault, ...] = (*ERROR_FAULTS, Fault.SLOW)
    operations: frozenset[Operation] = ALL_OPERATIONS
    slow_seconds: float = 0.2

    def __post_init__(self) -> None:
        if not 0.0 <= self.rate <= 1.0:
            raise ValueError(f"rate must be within [0, 1], got {self.rate}")
        if self.rate > 0 and not self.faults:
            raise ValueError("a positive rate needs at least one fault kind")


@dataclass
class ProxyStats:
    """What the proxy saw and did; read it after the client is done."""

    requests: Counter[Operation] = field(default_factory=Counter)
    injected: Counter[tuple[Operation, Fault]] = field(default_factory=Counter)

    @property
    def total_injected(self) -> int:
        return sum(self.injected.values())

    def injected_for(self, fault: Fault) -> int:
        return sum(n for (_, f), n in self.injected.items() if f == fault)


def classify(method: str, target: str) -> Operation:
    """The operation of an S3 request given its method and path-style request target."""
    parts = urlsplit(target)
    query = parse_qs(parts.query, keep_blank_values=True)
    has_key = "/" in parts.path.strip("/")
    if "uploads" in query or "uploadId" in query:
        return Operation.MULTIPART
    if not has_key:
        if method in {"GET", "HEAD"}:
            return Operation.LIST
        if method == "POST" and "delete" in query:
            return Operation.WRITE
        return Operation.OTHER
    if method in {"GET", "HEAD"}:
        return Operation.READ
    if method in {"PUT", "DELETE", "POST"}:
        return Operation.WRITE
    return Operation.OTHER


def _draw(seed: int, request_line: str, attempt: int) -> tuple[float, float]:
    """Two uniform numbers in [0, 1) determined by seed, request and attempt number."""
    digest = hashlib.blake2b(f"{seed}\0{request_line}\0{attempt}".encode(), digest_size=16).digest()
    first, second = struct.unpack(">QQ", digest)
    return first / 2**64, second / 2**64


def _error_document(code: str, message: str, resource: str) -> bytes:
    request_id = uuid.uuid4().hex[:16].upper()
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{code}</Code><Message>{message}</Message>"
        f"<Resource>{resource}</Resource><RequestId>{request_id}</RequestId></Error>"
    ).encode()


_ERRORS = {
    Fault.INTERNAL_ERROR: (500, "InternalError", "We encountered an internal error. Please try again."),
    Fault.SLOW_DOWN: (503, "SlowDown", "Please reduce your request rate."),
}


class S3FaultProxy:
    """A threaded HTTP proxy on 127.0.0.1 forwarding to ``upstream`` and injecting faults.

    Use as a context manager; ``endpoint_url`` is what clients connect to. ``plan`` may be
    replaced at any time (e.g. upload fixtures fault-free, then turn faults on for the job).
    """

    def __init__(self, upstream: str, plan: FaultPlan | None = None) -> None:
        parts = urlsplit(upstream)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"upstream must be an http:// URL, got {upstream!r}")
        self.upstream_host = parts.hostname
        self.upstream_port = parts.port or 80
        self.plan = plan or FaultPlan()
        self.stats = ProxyStats()
        self._seen: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="s3-fault-proxy",
            daemon=True,
        )

    @property
    def endpoint_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> S3FaultProxy:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> S3FaultProxy:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def reset_stats(self) -> None:
        with self._lock:
            self.stats = ProxyStats()

    def decide(self, method: str, target: str) -> tuple[Operation, Fault | None]:
        """Classify one request and pick its fault (or None), recording both in ``stats``."""
        operation = classify(method, target)
        # Upload ids are random per run; leave them out so draws repeat across runs.
        request_line = f"{method} {_UPLOAD_ID.sub('uploadId=', target)}"
        plan = self.plan
        with self._lock:
            attempt = self._seen[request_line]
            self._seen[request_line] += 1
            self.stats.requests[operation] += 1
            if plan.rate <= 0 or operation not in plan.operations:
                return operation, None
            hit, pick = _draw(plan.seed, request_line, attempt)
            if hit >= plan.rate:
                return operation, None
            fault = plan.faults[int(pick * len(plan.faults))]
            self.stats.injected[(operation, fault)] += 1
        return operation, fault

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(_ProxyHandler):
            owner = proxy

        return Handler


class _ProxyHandler(BaseHTTPRequestHandler):
    """Reads a whole request, then forwards it or answers with the chosen fault."""

    protocol_version = "HTTP/1.1"
    owner: S3FaultProxy

    def log_message(self, format: str, *args: object) -> None:
        """Silence the per-request access log."""

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline() not in {b"\r\n", b"\n", b""}:
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _handle(self) -> None:
        body = self._read_body()
        _, fault = self.owner.decide(self.command, self.path)
        if fault is Fault.RESET:
            self._reset_connection()
            return
        if fault in _ERRORS:
            status, code, message = _ERRORS[fault]
            self._respond(
                status, {"Content-Type": "application/xml"}, _error_document(code, message, self.path)
            )
            return
        if fault is Fault.SLOW:
            time.sleep(self.owner.plan.slow_seconds)
        self._forward(body)

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _handle

    def _forward(self, body: bytes) -> None:
        upstream = http.client.HTTPConnection(self.owner.upstream_host, self.owner.upstream_port, timeout=60)
        try:
            headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
            headers["Content-Length"] = str(len(body))
            upstream.request(self.command, self.path, body=body, headers=headers)
            response = upstream.getresponse()
            payload = response.read()
            reply = {
                k: v for k, v in response.getheaders() if k.lower() not in _HOP_BY_HOP | {"content-length"}
            }
            if self.command == "HEAD":
                reply["Content-Length"] = response.getheader("Content-Length") or "0"
                payload = b""
            self._respond(response.status, reply, payload, keep_length=self.command == "HEAD")
        finally:
            upstream.close()

    def _respond(
        self, status: int, headers: dict[str, str], payload: bytes, keep_length: bool = False
    ) -> None:
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        if not keep_length:
            self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if payload:
            self.wfile.write(payload)

    def _reset_connection(self) -> None:
        """Abort the TCP connection so the client sees ECONNRESET, not a clean close."""
        self.close_connection = True
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.connection.close()
