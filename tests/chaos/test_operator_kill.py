"""The operator SIGKILLed mid-reconcile, then restarted: one Job per resource, status converges.

A real operator process (``python -m kbt_operator``) runs against kmock's Kubernetes emulator.
Each trial creates several BatchTransformJobs, kills the operator at seeded random moments while
it creates their objects or resumes them, restarts it, and then checks that every job has exactly
one Indexed Job and that, once the shards finish, the status reaches Completed.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import kmock
import pytest

from chaos.trials import Trial, record, trial_count
from harness.kmock_cluster import ApiServer, Client, JobController, eventually, write_kubeconfig

NAMESPACE = "team-a"
JOBS_PER_TRIAL = 3
KILLS_PER_TRIAL = 2
OWNED = (
    "v1/serviceaccounts",
    "rbac.authorization.k8s.io/v1/roles",
    "rbac.authorization.k8s.io/v1/rolebindings",
    "v1/configmaps",
    "batch/v1/jobs",
)
STARTED_LINE = b"kbt operator started"
# 20 kills under `make chaos` (10 trials x 2), 2 in the normal suite.
TRIALS = trial_count(quick=1, full=10)


def _btj(name: str, shards: int) -> dict[str, Any]:
    return {
        "apiVersion": "kbt.dev/v1alpha1",
        "kind": "BatchTransformJob",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {
            "model": {"uri": "s3://models/heart/", "flavor": "sklearn"},
            "transformInput": {"dataSource": {"s3DataSource": {"s3Uri": "s3://inputs/heart/"}}},
            "transformOutput": {"s3OutputPath": f"s3://outputs/{name}/"},
            "transformResources": {"instanceCount": 2, "instanceType": "ml.m5.large"},
            "shardCount": shards,
        },
    }


class OperatorProcess:
    """`python -m kbt_operator` as a child process whose output goes to a log file."""

    def __init__(self, kubeconfig: Path, log: Path) -> None:
        self.env = {
            **os.environ,
            "KUBECONFIG": str(kubeconfig),
            "KBT_METRICS_PORT": "0",
            "KBT_HEALTH_PORT": "0",
        }
        self.log = log
        self.process: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        self.process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "kbt_operator",
            env=self.env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        assert self.process.stdout is not None
        with self.log.open("ab") as log:
            while True:
                line = await asyncio.wait_for(self.process.stdout.readline(), timeout=60)
                log.write(line)
                if not line:
                    raise AssertionError(f"the operator exited during start-up; see {self.log}")
                if STARTED_LINE in line:
                    break
        self._drain = asyncio.create_task(self._copy_output())

    async def _copy_output(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        with self.log.open("ab") as log:
            async for line in self.process.stdout:
                log.write(line)

    async def stop(self, sig: signal.Signals) -> None:
        assert self.process is not None
        if self.process.returncode is None:
            self.process.send_signal(sig)
        await asyncio.wait_for(self.process.wait(), timeout=30)
        await self._drain


def _owned_count(api: ApiServer) -> int:
    return sum(len(api.list_objects(resource, NAMESPACE)) for resource in OWNED)


def _jobs_by_owner(api: ApiServer) -> dict[str, list[str]]:
    owners: dict[str, list[str]] = {}
    for job in api.list_objects("batch/v1/jobs", NAMESPACE):
        for ref in job["metadata"].get("ownerReferences") or []:
            owners.setdefault(ref["name"], []).append(job["metadata"]["name"])
    return owners


@asynccontextmanager
async def _cluster(tmp_path: Path) -> AsyncIterator[tuple[ApiServer, Client, Path]]:
    async with ApiServer() as api, kmock.Server(api) as server:
        url = str(server.url).rstrip("/")
        async with aiohttp.ClientSession(base_url=url) as session:
            yield api, Client(session), write_kubeconfig(tmp_path, url)


async def _kill_mid_reconcile(
    operator: OperatorProcess, api: ApiServer, rng: random.Random, expected: int
) -> str:
    """Start the operator, wait until a random number of its objects exist, SIGKILL it."""
    await operator.start()
    before = _owned_count(api)
    target = before + rng.randint(0, max(0, expected - before))
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 20
    while _owned_count(api) < target and loop.time() < deadline:
        await asyncio.sleep(0.001)
    await asyncio.sleep(rng.uniform(0, 0.05))
    await operator.stop(signal.SIGKILL)
    return f"killed at {_owned_count(api)}/{expected} objects (target {target})"


@pytest.mark.slow
@pytest.mark.timeout(180)
@pytest.mark.parametrize("trial", range(TRIALS))
async def test_operator_killed_mid_reconcile_creates_exactly_one_job_per_resource(
    tmp_path: Path, trial: int
) -> None:
    rng = random.Random(f"operator-kill-{trial}")
    shards = {f"job-{trial}-{i}": rng.randint(1, 3) for i in range(JOBS_PER_TRIAL)}
    expected_objects = JOBS_PER_TRIAL * len(OWNED) + JOBS_PER_TRIAL  # two ConfigMaps per job
    kills: list[str] = []
    lost = duplicated = 0
    try:
        async with _cluster(tmp_path) as (api, client, kubeconfig):
            for name, count in shards.items():
                await client.create_btj(_btj(name, count))
            operator = OperatorProcess(kubeconfig, tmp_path / "operator.log")
            for _ in range(KILLS_PER_TRIAL):
                kills.append(await _kill_mid_reconcile(operator, api, rng, expected_objects))
            await operator.start()
            try:
                owners = await eventually(
                    lambda: (o := _jobs_by_owner(api)).keys() == shards.keys() and o, timeout=30
                )
                await asyncio.sleep(1.0)  # give a duplicate the chance to appear
                owners = _jobs_by_owner(api)
                lost = sum(1 for name in shards if not owners.get(name))
                duplicated = sum(max(0, len(jobs) - 1) for jobs in owners.values())
                assert (lost, duplicated) == (0, 0), f"Jobs per resource after {kills}: {owners}"
                controller = JobController(api, client)
                for name, count in shards.items():
                    job_name = owners[name][0]
                    await controller.start(NAMESPACE, job_name)
                    for index in range(count):
                        await controller.succeed(NAMESPACE, job_name, index)

                def completed() -> bool:
                    for name, count in shards.items():
                        status = (api.read("kbt.dev/v1alpha1/batchtransformjobs", NAMESPACE, name) or {}).get(
                            "status"
                        ) or {}
                        assert status.get("transformJobStatus") == "Completed", f"{name}: {status}"
                        assert status["shards"]["succeeded"] == count, f"{name}: {status['shards']}"
                    return True

                await eventually(completed, timeout=30)
                assert _jobs_by_owner(api) == owners
            finally:
                await operator.stop(signal.SIGTERM)
    except BaseException as exc:
        record(Trial("operator-kill", trial, False, lost, duplicated, f"{kills}: {exc}"[:500]))
        raise
    record(Trial("operator-kill", trial, True, lost, duplicated, "; ".join(kills)))
