"""Turns (first come, first served), the Secret presence cache and the trimmed index bodies."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from prometheus_client import REGISTRY

from kbt_operator.handlers import kept
from kbt_operator.scaling import SeenRecently, Turns


async def test_turns_serve_in_arrival_order_and_a_turn_runs_to_completion() -> None:
    turns = Turns(2)
    log: list[str] = []
    running = 0
    most = 0

    async def job(name: str) -> None:
        nonlocal running, most
        async with turns.turn():
            running += 1
            most = max(most, running)
            for step in range(3):  # three API calls, each a suspension point
                log.append(f"{name}{step}")
                await asyncio.sleep(0.001)
            running -= 1

    tasks = []
    for name in "abcdef":
        tasks.append(asyncio.create_task(job(name)))
        await asyncio.sleep(0)  # each arrives before the next
    await asyncio.gather(*tasks)
    assert most == 2
    first_steps = [entry[0] for entry in log if entry.endswith("0")]
    assert first_steps == list("abcdef")
    # c starts only once a or b has finished all three of its calls
    assert log.index("c0") > min(log.index("a2"), log.index("b2"))
    assert REGISTRY.get_sample_value("kbt_reconciles_waiting") == 0


async def test_turns_released_when_the_holder_fails() -> None:
    turns = Turns(1)

    async def failing() -> None:
        async with turns.turn():
            raise RuntimeError("API down")

    for _ in range(3):
        with contextlib.suppress(RuntimeError):
            await failing()
    async with asyncio.timeout(1), turns.turn():
        pass


async def test_waiting_jobs_go_oldest_first_and_cancelled_waiters_give_up_their_place() -> None:
    """After a restart kopf resumes every job at once, in no particular order."""
    turns = Turns(1)
    served: list[str] = []
    release = asyncio.Event()

    async def holder() -> None:
        async with turns.turn(order="2026-01-01T00:00:00Z"):
            await release.wait()

    async def job(created: str) -> None:
        async with turns.turn(order=created):
            served.append(created)

    first = asyncio.create_task(holder())
    await asyncio.sleep(0)
    waiters = {
        created: asyncio.create_task(job(created))
        for created in ("2026-01-01T00:00:09Z", "2026-01-01T00:00:03Z", "2026-01-01T00:00:05Z")
    }
    await asyncio.sleep(0)
    waiters["2026-01-01T00:00:03Z"].cancel()
    await asyncio.sleep(0)
    assert REGISTRY.get_sample_value("kbt_reconciles_waiting") == 2
    release.set()
    await asyncio.gather(first, *waiters.values(), return_exceptions=True)
    assert served == ["2026-01-01T00:00:05Z", "2026-01-01T00:00:09Z"]


async def test_seen_recently_asks_again_after_the_ttl_and_never_caches_absence() -> None:
    now = [100.0]
    seen = SeenRecently(ttl=60, clock=lambda: now[0])
    asked: list[str] = []
    present = {"s3-creds"}

    async def lookup(name: str) -> bool:
        asked.append(name)
        return name in present

    assert await seen.exists(("ns", "s3-creds"), lambda: lookup("s3-creds"))
    now[0] += 59
    assert await seen.exists(("ns", "s3-creds"), lambda: lookup("s3-creds"))
    assert asked == ["s3-creds"]
    now[0] += 2
    present.clear()
    assert not await seen.exists(("ns", "s3-creds"), lambda: lookup("s3-creds"))
    assert not await seen.exists(("ns", "s3-creds"), lambda: lookup("s3-creds"))
    assert asked == ["s3-creds"] * 3


def test_index_bodies_drop_managed_fields_and_kopf_annotations_only() -> None:
    body: dict[str, Any] = {
        "metadata": {
            "name": "heart",
            "managedFields": [{"manager": "kubectl"}],
            "annotations": {"kopf.zalando.org/last-handled-configuration": "{}", "team": "a"},
        },
        "spec": {"shardCount": 2},
        "status": {"jobName": "btj-heart-0"},
    }
    trimmed = kept(body)
    assert trimmed == {
        "metadata": {"name": "heart", "annotations": {"team": "a"}},
        "spec": {"shardCount": 2},
        "status": {"jobName": "btj-heart-0"},
    }
    assert "managedFields" in body["metadata"]  # the original is left alone
    only_kopf = {"metadata": {"name": "m", "annotations": {"kopf.zalando.org/x": "1"}}}
    assert kept(only_kopf) == {"metadata": {"name": "m"}}
