"""Operator throughput: N BatchTransformJobs created at once -> N Indexed Jobs, three processes.

* the API server: the test harness's kmock emulator (`tests/harness/kmock_cluster.ApiServer`:
  label selectors, server-set metadata, CRD defaults) in a child process on loopback, which
  also counts every request and stamps when each BatchTransformJob and each Job was created;
* the operator: ``python -m kbt_operator`` in its own process, as in production (standalone,
  watching the bench namespace, metrics on a free port);
* this driver: creates the Model and then N BatchTransformJobs at once (64 requests in flight).

Printed: time from the first create to the last Job, median/p95/max wait of one job (its
create -> its Job), API calls per job by verb and resource (counted at the emulator, the
operator's watch/list start-up excluded), the operator's peak RSS and CPU seconds, the
emulator's own CPU seconds (when it is the bottleneck, the operator's numbers are upper
bounds), the reconcile-duration histogram, and the ratio to the 30 s goal for 1,000 jobs.

kmock itself is quadratic in jobs (it matches every request against its whole request log and
finds an object by scanning them all: the emulator in the operator's process could not serve 200
jobs); the bench's emulator looks both up directly, and then uses a fraction of a core.

Run: ``make bench-operator`` (1,000 jobs) or ``python bench/operator_bench.py --jobs 200``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextvars
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import kmock

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))  # the kmock harness lives in tests/
from harness.kmock_cluster import ApiServer, write_kubeconfig  # noqa: E402

NS = "bench"
GOAL_SECONDS = 30.0
GOAL_JOBS = 1000
IN_FLIGHT = 64
DRIVER_AGENT = "kbt-operator-bench-driver"
STATS_PATH = "/kbt-bench/stats"
CURRENT_REQUEST: contextvars.ContextVar[kmock.Request | None] = contextvars.ContextVar(
    "request", default=None
)
MODEL = {
    "apiVersion": "kbt.dev/v1alpha1",
    "kind": "Model",
    "metadata": {"name": "m", "namespace": NS},
    "spec": {"uri": "s3://models/m/", "flavor": "sklearn"},
}


def manifest(index: int) -> dict[str, Any]:
    """A suspended 4-shard job (as in the issue: no pods, only the operator's work)."""
    return {
        "apiVersion": "kbt.dev/v1alpha1",
        "kind": "BatchTransformJob",
        "metadata": {"name": f"job-{index:04d}", "namespace": NS},
        "spec": {
            "modelName": "m",
            "shardCount": 4,
            "suspend": True,
            "transformInput": {"dataSource": {"s3DataSource": {"s3Uri": "s3://data/in/"}}},
            "transformOutput": {"s3OutputPath": f"s3://data/out/{index}/"},
            "transformResources": {"instanceType": "ml.m5.xlarge", "instanceCount": 4},
        },
    }


# --- the emulator process ----------------------------------------------------------------------


class CountingApiServer(ApiServer):
    """The harness API server that also counts requests and stamps creations (monotonic clock,
    which Linux shares between processes), and answers STATS_PATH with what it saw."""

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        self.calls: Counter[str] = Counter()  # operator requests by "VERB resource"
        self.btj_created: dict[str, float] = {}
        self.job_created: dict[str, float] = {}  # by owning BatchTransformJob

    async def _handle(self, request: kmock.Request) -> Any:
        if request.url.path == STATS_PATH:
            return aiohttp.web.json_response(self.stats())
        if request.headers.get("User-Agent") != DRIVER_AGENT:
            self._count(request)  # before: a watch answers only when its stream ends
        CURRENT_REQUEST.set(request)
        answer = await super()._handle(request)
        if request.action == kmock.action.CREATE and getattr(answer, "status", 500) < 300:
            self._stamp(request)
        return answer

    def __iter__(self) -> Iterator[kmock.Request]:
        """kmock finds a request's reaction by scanning its whole request log, each time (quadratic
        in requests): while it serves one, the log it scans is that request alone."""
        current = CURRENT_REQUEST.get()
        yield from (self._requests if current is None else [current])

    # kmock finds an object by scanning every object (quadratic in jobs): look it up by key instead.
    def _object(self, request: kmock.Request) -> Any:
        data = request.data if isinstance(request.data, dict) else {}
        meta = data.get("metadata") or {}
        key = (request.resource, request.namespace or meta.get("namespace"), request.name or meta.get("name"))
        if key not in self.objects:
            raise kmock.KubernetesObjectNotFoundError()
        return self.objects[key]

    async def _serve_fetch(self, request: kmock.Request) -> Any:
        obj = self._object(request)
        if obj.deleted:
            raise kmock.KubernetesObjectNotFoundError()
        return obj.raw

    async def _serve_create(self, request: kmock.Request) -> Any:
        return self._object(request).raw

    async def _serve_update(self, request: kmock.Request) -> Any:
        return self._object(request).last.raw

    async def _serve_delete(self, request: kmock.Request) -> Any:
        return self._object(request).last.raw

    def _count(self, request: kmock.Request) -> None:
        resource = request.resource
        plural = resource.plural if resource is not None and resource.plural else "discovery"
        sub = f"/{request.subresource}" if request.subresource else ""
        verb = request.action.value.lower() if request.action is not None else str(request.method)
        self.calls[f"{verb} {plural}{sub}"] += 1

    def _stamp(self, request: kmock.Request) -> None:
        meta = request.data.get("metadata") or {}
        plural = request.resource.plural if request.resource is not None else ""
        if plural == "batchtransformjobs":
            self.btj_created[meta["name"]] = time.monotonic()
        elif plural == "jobs":
            owners = [ref["name"] for ref in meta.get("ownerReferences") or []]
            self.job_created.setdefault(owners[0] if owners else meta["name"], time.monotonic())

    def stats(self) -> dict[str, Any]:
        named = sum(
            1
            for obj in self.list_objects("kbt.dev/v1alpha1/batchtransformjobs", NS)
            if (obj.get("status") or {}).get("jobName")
        )
        usage = os.times()
        return {
            "calls": dict(self.calls),
            "btj_created": self.btj_created,
            "job_created": self.job_created,
            "status_named": named,
            "cpu_seconds": usage.user + usage.system,
        }


async def serve(url_file: Path) -> None:
    """Serve the emulator until SIGTERM; its URL goes to `url_file` once it listens."""
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    async with CountingApiServer() as server, kmock.Server(server):
        url_file.write_text(str(server.url))
        await stop.wait()


# --- the driver --------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProcessUsage:
    peak_rss_mib: float
    cpu_seconds: float


def usage_of(pid: int) -> ProcessUsage:
    """Peak resident set (VmHWM) and user+system CPU of a live process, from /proc."""
    status = Path(f"/proc/{pid}/status").read_text()
    peak_kib = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM:"))
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])  # utime, stime
    return ProcessUsage(peak_kib / 1024, ticks / os.sysconf("SC_CLK_TCK"))


def start_emulator(workdir: Path) -> tuple[subprocess.Popen[bytes], str]:
    url_file = workdir / "emulator-url"
    process = subprocess.Popen([sys.executable, __file__, "--serve-emulator", str(url_file)])
    deadline = time.monotonic() + 60
    while not url_file.exists() or not url_file.read_text():
        if process.poll() is not None or time.monotonic() > deadline:
            raise SystemExit("operator bench: the kmock emulator did not start")
        time.sleep(0.05)
    return process, url_file.read_text()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_operator(workdir: Path, url: str, metrics_port: int) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "KUBECONFIG": str(write_kubeconfig(workdir, url)),
        "KBT_NAMESPACES": NS,
        "KBT_METRICS_PORT": str(metrics_port),
        "KBT_HEALTH_PORT": "0",
        "KBT_RUNNER_IMAGE": "kbt/runner:bench",
    }
    env.pop("KUBERNETES_SERVICE_HOST", None)
    log = (workdir / "operator.log").open("wb")
    return subprocess.Popen(
        [sys.executable, "-m", "kbt_operator"], env=env, stdout=log, stderr=subprocess.STDOUT
    )


class Driver:
    def __init__(self, session: aiohttp.ClientSession) -> None:
        self.session = session

    async def stats(self) -> dict[str, Any]:
        async with self.session.get(STATS_PATH) as response:
            answer: dict[str, Any] = await response.json()
            return answer

    async def create(self, path: str, obj: Mapping[str, Any]) -> None:
        async with self.session.post(path, json=dict(obj)) as response:
            if response.status >= 300:
                raise SystemExit(f"operator bench: POST {path}: {response.status} {await response.text()}")

    async def create_jobs(self, count: int) -> None:
        """POST `count` BatchTransformJobs, IN_FLIGHT at a time, in name order."""
        path = f"/apis/kbt.dev/v1alpha1/namespaces/{NS}/batchtransformjobs"
        queue = iter(range(count))

        async def worker() -> None:
            for index in queue:
                await self.create(path, manifest(index))

        await asyncio.gather(*(worker() for _ in range(min(IN_FLIGHT, count))))

    async def until(self, what: str, done: Any, timeout: float, operator: subprocess.Popen[bytes]) -> None:
        deadline = time.monotonic() + timeout
        while not done(await self.stats()):
            if operator.poll() is not None:
                raise SystemExit(f"operator bench: the operator exited ({operator.returncode}) before {what}")
            if time.monotonic() > deadline:
                raise SystemExit(f"operator bench: {what} not reached in {timeout:.0f} s")
            await asyncio.sleep(0.2)


def operator_calls(at_start: Mapping[str, int], at_end: Mapping[str, int]) -> Counter[str]:
    """Requests made after the operator was ready (its start-up lists and watches excluded)."""
    return Counter(
        {key: at_end[key] - at_start.get(key, 0) for key in at_end if at_end[key] > at_start.get(key, 0)}
    )


def reconcile_histogram(metrics_port: int) -> str:
    """`le<=count` pairs of kbt_reconcile_duration_seconds, as the operator exposes them."""
    with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10) as answer:
        text = answer.read().decode()
    buckets = [
        (line.split('le="')[1].split('"')[0], float(line.rsplit(" ", 1)[1]))
        for line in text.splitlines()
        if line.startswith("kbt_reconcile_duration_seconds_bucket")
    ]
    return ", ".join(f"<={le}: {count:.0f}" for le, count in buckets)


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


async def run(count: int, workdir: Path) -> None:
    emulator, url = start_emulator(workdir)
    metrics_port = free_port()
    operator: subprocess.Popen[bytes] | None = None
    try:
        headers = {"User-Agent": DRIVER_AGENT}
        connector = aiohttp.TCPConnector(limit=IN_FLIGHT)
        async with aiohttp.ClientSession(base_url=url, headers=headers, connector=connector) as session:
            driver = Driver(session)
            await driver.create(f"/apis/kbt.dev/v1alpha1/namespaces/{NS}/models", MODEL)
            operator = start_operator(workdir, url, metrics_port)
            # ready: watching BatchTransformJobs, Jobs and progress ConfigMaps
            await driver.until(
                "the operator watching",
                lambda s: sum(n for call, n in s["calls"].items() if call.lower().startswith("watch")) >= 3,
                120,
                operator,
            )
            await asyncio.sleep(1.0)
            ready = await driver.stats()
            idle = usage_of(operator.pid)
            started = time.monotonic()
            await driver.create_jobs(count)
            created = time.monotonic() - started
            await driver.until(
                "one Job per BatchTransformJob", lambda s: len(s["job_created"]) >= count, 900, operator
            )
            await driver.until(
                "every status naming its Job", lambda s: s["status_named"] >= count, 300, operator
            )
            settled = await settle(driver)
            usage = usage_of(operator.pid)
            histogram = reconcile_histogram(metrics_port)
    finally:
        if operator is not None and operator.poll() is None:
            operator.terminate()
            operator.wait(30)
        emulator.terminate()
        emulator.wait(30)
    report(
        count=count,
        created=created,
        ready=ready,
        settled=settled,
        idle=idle,
        usage=usage,
        histogram=histogram,
    )


async def settle(driver: Driver) -> dict[str, Any]:
    """Stats once the operator made no request for 2 s (status writes and events trail the Jobs)."""
    last, quiet_since = await driver.stats(), time.monotonic()
    while time.monotonic() - quiet_since < 2.0:
        await asyncio.sleep(0.5)
        now = await driver.stats()
        if now["calls"] != last["calls"]:
            last, quiet_since = now, time.monotonic()
    return last


def report(
    *,
    count: int,
    created: float,
    ready: Mapping[str, Any],
    settled: Mapping[str, Any],
    idle: ProcessUsage,
    usage: ProcessUsage,
    histogram: str,
) -> None:
    btj_created, job_created = settled["btj_created"], settled["job_created"]
    first = min(btj_created.values())
    to_last = max(job_created.values()) - first
    waits = [job_created[name] - btj_created[name] for name in btj_created]
    calls = operator_calls(ready["calls"], settled["calls"])
    total = sum(calls.values())
    emulator_cpu = settled["cpu_seconds"] - ready["cpu_seconds"]
    print(f"operator bench: {count} suspended 4-shard BatchTransformJobs created at once")
    print("  (python -m kbt_operator in its own process; kmock API server in another; driver in this one)")
    print(f"  create {count} BatchTransformJobs ({IN_FLIGHT} in flight): {created:.2f} s")
    print(f"  first create -> last Job        : {to_last:.2f} s  ({count / to_last:.0f} jobs/s)")
    print(
        f"  wait of one job (create -> Job) : median {statistics.median(waits):.2f} s, "
        f"p95 {percentile(waits, 0.95):.2f} s, max {max(waits):.2f} s"
    )
    print(f"  API calls per job               : {total / count:.2f}  ({total} in all)")
    for call, n in sorted(calls.items(), key=lambda item: -item[1]):
        print(f"      {n / count:6.2f}  {call}")
    print(
        f"  operator: peak RSS {usage.peak_rss_mib:.0f} MiB "
        f"({idle.peak_rss_mib:.0f} MiB idle before the jobs), "
        f"CPU {usage.cpu_seconds - idle.cpu_seconds:.1f} s for the jobs ({usage.cpu_seconds:.1f} s in all)"
    )
    print(
        f"  emulator: CPU {emulator_cpu:.1f} s while serving the jobs "
        f"({emulator_cpu / to_last:.0%} of one core)"
    )
    print(f"  reconcile histogram (cumulative): {histogram}")
    scaled = to_last * GOAL_JOBS / count
    print(
        f"  goal: {GOAL_JOBS} jobs in {GOAL_SECONDS:.0f} s; this run scales to {scaled:.1f} s "
        f"= {GOAL_SECONDS / scaled:.2f}x the goal ({'met' if scaled <= GOAL_SECONDS else 'NOT met'})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--jobs", type=int, default=GOAL_JOBS, help=f"BatchTransformJobs (default {GOAL_JOBS})"
    )
    parser.add_argument("--serve-emulator", type=Path, metavar="URL_FILE", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_emulator is not None:
        asyncio.run(serve(args.serve_emulator))
        return
    if args.jobs < 1:
        parser.error("--jobs must be at least 1")
    # SIGTERM (e.g. from `timeout`) unwinds like Ctrl-C, so the emulator and operator are stopped
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    with tempfile.TemporaryDirectory(prefix="kbt-operator-bench-") as workdir:
        asyncio.run(run(args.jobs, Path(workdir)))


if __name__ == "__main__":
    main()
