"""What keeps the operator quick with thousands of BatchTransformJobs at once.

* `Turns`: first come, first served. kopf starts a handler per job at once; without turns every
  handler queues its API calls on the same thread pool and all jobs advance in lock-step (1,000
  jobs: every ServiceAccount first, every Job last). With turns, at most `size` jobs reconcile at
  a time, and a job that has its turn makes all its calls before the next job's begin. Waiters
  go oldest first (by the `order` they give: the job's creationTimestamp), then in arrival
  order: after a restart, kopf resumes every job at once in no particular order.
* `SeenRecently`: remembers for a while that an object exists (the credentials Secret many jobs
  share), so a burst of jobs checks it once. Only presence is cached: a missing object is asked
  again on every retry.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable

from kbt_operator.metrics import RECONCILES_WAITING

SECRET_TTL_SECONDS = 60.0


class Turns:
    """At most `size` holders at once; waiters served by (`order`, arrival)."""

    def __init__(self, size: int) -> None:
        self._free = size
        self._waiting: list[tuple[str, int, asyncio.Future[None]]] = []
        self._arrivals = itertools.count()

    @contextlib.asynccontextmanager
    async def turn(self, order: str = "") -> AsyncIterator[None]:
        if self._free > 0 and not self._waiting:
            self._free -= 1
        else:
            await self._wait(order)
        try:
            yield
        finally:
            self._pass_on()

    async def _wait(self, order: str) -> None:
        granted: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiting, (order, next(self._arrivals), granted))
        RECONCILES_WAITING.inc()
        try:
            await granted
        except asyncio.CancelledError:
            if granted.done() and not granted.cancelled():  # granted, then cancelled: hand it on
                self._pass_on()
            raise
        finally:
            RECONCILES_WAITING.dec()

    def _pass_on(self) -> None:
        """The freed turn goes to the first waiter still waiting, else back to the pool."""
        while self._waiting:
            granted = heapq.heappop(self._waiting)[2]
            if not granted.done():
                granted.set_result(None)
                return
        self._free += 1


class SeenRecently:
    """Presence of objects, remembered for `ttl` seconds after a lookup found them."""

    def __init__(self, ttl: float = SECRET_TTL_SECONDS, clock: Callable[[], float] = time.monotonic) -> None:
        self._ttl = ttl
        self._clock = clock
        self._seen: dict[Hashable, float] = {}

    async def exists(self, key: Hashable, lookup: Callable[[], Awaitable[bool]]) -> bool:
        """Whether the object `key` exists: remembered, else `lookup()` (remembered when True)."""
        now = self._clock()
        seen = self._seen.get(key)
        if seen is not None and now - seen < self._ttl:
            return True
        found = await lookup()
        if found:
            self._seen[key] = now
        else:
            self._seen.pop(key, None)
        return found
