"""Operator throughput on kmock: 200 BatchTransformJobs at once, status lag, memory.

Measures, with the real kopf operator in its own thread against an in-process kmock API server:

* time from creating N BatchTransformJobs until every one of their Indexed Jobs exists
  (and until every status shows its Job), compared with the time the emulator itself takes to
  create the same number of Jobs directly (the baseline: API round trips only);
* status update lag: time from a Job status change (started, completed) to the owner's
  transformJobStatus reflecting it, over all jobs;
* the operator process's RSS before and after.

Run: `make bench-operator` (or `python bench/operator_bench.py --jobs 200`).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import kmock

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the kmock harness lives in tests/
from harness.kmock_cluster import ApiServer, Client, JobController, running_operator, write_kubeconfig

NS = "bench"
BTJS = "kbt.dev/v1alpha1/batchtransformjobs"
MODEL = {
    "apiVersion": "kbt.dev/v1alpha1",
    "kind": "Model",
    "metadata": {"name": "m", "namespace": NS},
    "spec": {"uri": "s3://models/m/", "flavor": "sklearn"},
}


def rss_mib() -> float:
    """Current resident set size of this process (Linux /proc), MiB."""
    with open("/proc/self/statm") as statm:
        pages = int(statm.read().split()[1])
    return pages * resource.getpagesize() / 2**20


def manifest(index: int) -> dict[str, Any]:
    return {
        "apiVersion": "kbt.dev/v1alpha1",
        "kind": "BatchTransformJob",
        "metadata": {"name": f"job-{index:04d}", "namespace": NS},
        "spec": {
            "modelName": "m",
            "shardCount": 4,
            "transformInput": {"dataSource": {"s3DataSource": {"s3Uri": "s3://data/in/"}}},
            "transformOutput": {"s3OutputPath": f"s3://data/out/{index}/"},
            "transformResources": {"instanceType": "ml.m5.xlarge", "instanceCount": 4},
        },
    }


async def wait_until(check: Any, timeout: float) -> float:
    started = time.perf_counter()
    while not check():
        if time.perf_counter() - started > timeout:
            raise TimeoutError("benchmark condition not reached")
        await asyncio.sleep(0.005)
    return time.perf_counter() - started


async def baseline(client: Client, count: int) -> float:
    """Seconds to POST `count` Job-sized objects directly (what the operator cannot beat)."""
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "spec": {"completions": 4},
        "metadata": {"namespace": "baseline"},
    }
    started = time.perf_counter()
    for index in range(count):
        await client.create(
            "/apis/batch/v1/namespaces/baseline/jobs",
            job | {"metadata": {"name": f"b-{index}", "namespace": "baseline"}},
        )
    return time.perf_counter() - started


async def lag(server: ApiServer, names: list[str], state: str, change: Any) -> list[float]:
    """Per job: seconds from `change(name)` returning until the status shows `state`."""
    stamps: dict[str, float] = {}
    for name in names:
        await change(name)
        stamps[name] = time.perf_counter()
    seen: dict[str, float] = {}
    deadline = time.perf_counter() + 120
    while len(seen) < len(names) and time.perf_counter() < deadline:
        for name in names:
            if name not in seen:
                status = (server.read(BTJS, NS, name) or {}).get("status") or {}
                if status.get("transformJobStatus") == state:
                    seen[name] = time.perf_counter() - stamps[name]
        await asyncio.sleep(0.005)
    if len(seen) < len(names):
        raise TimeoutError(f"{len(names) - len(seen)} jobs never reached {state}")
    return list(seen.values())


def describe(values: list[float]) -> str:
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]
    return (
        f"median {statistics.median(ordered) * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms, "
        f"max {ordered[-1] * 1000:.0f} ms"
    )


async def main(count: int) -> None:
    async with ApiServer() as server, kmock.Server(server):
        os.environ["KUBECONFIG"] = str(write_kubeconfig(Path(tempfile.mkdtemp()), str(server.url)))
        os.environ.setdefault("KBT_METRICS_PORT", "0")
        os.environ.setdefault("KBT_STATUS_INTERVAL", "0")
        async with aiohttp.ClientSession(base_url=str(server.url)) as session:
            client = Client(session)
            jobs = JobController(server, client)
            await client.create(f"/apis/kbt.dev/v1alpha1/namespaces/{NS}/models", MODEL)
            direct = await baseline(client, count)
            rss_before = rss_mib()
            async with running_operator():
                names = [f"job-{index:04d}" for index in range(count)]
                started = time.perf_counter()
                for index in range(count):
                    await client.create_btj(manifest(index))
                created = time.perf_counter() - started
                to_jobs = (
                    await wait_until(lambda: len(server.list_objects("batch/v1/jobs", NS)) == count, 300)
                    + created
                )
                to_status = (
                    await wait_until(
                        lambda: all(
                            ((server.read(BTJS, NS, n) or {}).get("status") or {}).get("jobName")
                            for n in names
                        ),
                        300,
                    )
                    + to_jobs
                )
                start_lag = await lag(server, names, "InProgress", lambda n: jobs.start(NS, f"btj-{n}-0"))

                async def finish(name: str) -> None:
                    for shard in range(4):
                        await jobs.succeed(NS, f"btj-{name}-0", shard)

                done_lag = await lag(server, names, "Completed", finish)
                rss_after = rss_mib()
    print(
        f"operator bench: {count} BatchTransformJobs (4 shards each), kmock API in-process, 1 operator thread"
    )
    print(f"  create {count} BTJs (test client)          : {created:.2f} s")
    print(f"  until all {count} Indexed Jobs exist       : {to_jobs:.2f} s  ({count / to_jobs:.0f} jobs/s)")
    print(f"  until every status names its Job       : {to_status:.2f} s")
    print(
        f"  baseline: POST {count} Jobs directly      : {direct:.2f} s  "
        f"(operator/baseline = {to_jobs / direct:.1f}x;"
        " the operator makes ~8 API calls per job)"
    )
    print(f"  status lag, Job started -> InProgress : {describe(start_lag)}")
    print(f"  status lag, Job complete -> Completed : {describe(done_lag)}")
    print(
        f"  process RSS: {rss_before:.0f} MiB before operator, {rss_after:.0f} MiB after "
        f"({rss_after - rss_before:+.0f} MiB;"
        " test client and kmock share the process)"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=200, help="BatchTransformJobs to create (default 200)")
    asyncio.run(main(parser.parse_args().jobs))
