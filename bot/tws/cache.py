"""The TWS read cache: identical reads in flight share one request, answers live a few seconds.

Why: fifty operators asking "what failed?" in the same minute must not cost the master fifty plan
scans. A read is keyed by its path and query; while one is in flight, the same read waits for it
instead of sending another, and its answer is reused for ``ttl`` seconds (``TWS_READ_CACHE_TTL``,
0 turns both off).

What is never cached is the client's business (``TwsClient`` reads a job by id, the state check
before and after an action, uncached). An action calls ``invalidate``: everything cached is
dropped and a read that was in flight when it happened is not stored, so "status X" right after
"rerun X" shows the new state.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Hashable
from typing import Any

#: Entries kept at most; the oldest go first (a burst of distinct questions cannot grow it unbounded).
MAX_ENTRIES = 2048


class ReadCache:
    """Coalescing and a short time-to-live for idempotent reads, for one client."""

    def __init__(self, ttl: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._ttl = max(0.0, ttl)
        self._clock = clock
        self._answers: dict[Hashable, tuple[float, Any]] = {}
        self._flights: dict[Hashable, asyncio.Future[Any]] = {}
        self._generation = 0

    @property
    def enabled(self) -> bool:
        return self._ttl > 0

    async def read(self, key: Hashable, fetch: Callable[[], Awaitable[Any]]) -> Any:
        """The answer for ``key``: cached, shared with an identical read in flight, or fetched."""
        if not self.enabled:
            return await fetch()
        hit = self._answers.get(key)
        if hit is not None and hit[0] > self._clock():
            return hit[1]
        flight = self._flights.get(key)
        if flight is None:
            flight = asyncio.ensure_future(self._fetch(key, fetch, self._generation))
            self._flights[key] = flight
            flight.add_done_callback(lambda done: self._landed(key, done))
        return await asyncio.shield(flight)  # one waiter cancelled must not cancel the others

    async def _fetch(self, key: Hashable, fetch: Callable[[], Awaitable[Any]], generation: int) -> Any:
        answer = await fetch()
        if generation == self._generation:  # no action happened meanwhile: the answer still holds
            if len(self._answers) >= MAX_ENTRIES:
                self._answers.pop(next(iter(self._answers)))
            self._answers[key] = (self._clock() + self._ttl, answer)
        return answer

    def _landed(self, key: Hashable, done: asyncio.Future[Any]) -> None:
        if self._flights.get(key) is done:
            del self._flights[key]
        if not done.cancelled():
            done.exception()  # retrieved here, so a failure nobody waits for any more is not logged as lost

    def invalidate(self) -> None:
        """Forget every answer, and do not store the ones in flight (an action changed the plan)."""
        self._generation += 1
        self._answers.clear()
        self._flights.clear()
