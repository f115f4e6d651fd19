"""Answers after the acknowledgement: once per delivery, a bounded number at a time, never a crash.

Slack wants its 200 within 3 s and Teams within about 15 s, and both redeliver what was not
acknowledged in time, so an adapter acknowledges first and hands the event to ``Answers.spawn``
with a bound ``send`` (the route: Slack's channel, thread and response_url; Teams' conversation
reference). In the background, for each event:

1. the delivery is claimed once (``dedup:<platform>:<event id>`` in the store); a redelivery or
   a double click is dropped. While the store is unreachable the claim is kept in memory for the
   outage instead (one process sees every retry of a delivery it acknowledged), so reads are
   still answered; the core refuses actions itself without the store. The next claim that
   reaches the store ends the outage, no restart needed;
2. ``handle`` runs, and each reply goes to ``send``;
3. one catch-all turns any crash into the polite ``internal_error`` reply (with a log reference)
   and a failed send into ``<platform>_post_failed`` in the log.

At most ``limit`` events are answered at a time; the rest wait in order. A burst therefore costs
``limit`` concurrent TWS or LLM calls, not one per event, and the event loop stays free for the
acknowledgements. ``close`` lets what was accepted finish, briefly.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import deque

import structlog

from adapters.sending import failed
from bot.errors import DeliveryError, StoreError
from bot.events import Event, Handle, Reply, ReplySink
from bot.logs import bind_correlation
from bot.store import Store
from bot.texts import say

log = structlog.get_logger(__name__)

LIMIT = 16  # events answered at a time, per adapter
DEDUP_TTL = 86_400.0  # Slack's last retry comes after about 5 minutes, Teams' sooner; a day is plenty
DRAIN_TIMEOUT = 10.0  # how long close() lets answers in flight finish
_MEMORY_MAX = 100_000  # deliveries remembered in memory during a store outage


class Answers:
    """The background half of an adapter's entry point; see the module docstring."""

    def __init__(self, handle: Handle, store: Store, *, platform: str, limit: int = LIMIT,
                 dedup_ttl: float = DEDUP_TTL) -> None:
        self._handle = handle
        self._store = store
        self._platform = platform
        self._limit = limit
        self._ttl = dedup_ttl
        self._queue: deque[tuple[Event, ReplySink]] = deque()
        self._workers: set[asyncio.Task[None]] = set()
        self._memory: dict[str, float] = {}  # claims made while the store was down: key -> expiry
        self._store_down = False

    def spawn(self, event: Event, send: ReplySink) -> None:
        """Answer ``event`` in the background; returns at once (call it after the acknowledgement)."""
        self._queue.append((event, send))
        if len(self._workers) < self._limit:
            worker = asyncio.ensure_future(self._work())
            self._workers.add(worker)
            worker.add_done_callback(self._workers.discard)

    @property
    def pending(self) -> int:
        """Events accepted and not yet answered (waiting or running)."""
        return len(self._queue) + len(self._workers)

    async def close(self, timeout: float = DRAIN_TIMEOUT) -> None:
        """Let answers in flight (and those waiting) finish within ``timeout``, then cancel the rest."""
        if not self._workers:
            return
        _, stuck = await asyncio.wait(set(self._workers), timeout=timeout)
        if stuck:
            log.warning(f"{self._platform}_replies_abandoned", count=len(stuck) + len(self._queue), waited=timeout)
            self._queue.clear()
            for worker in stuck:
                worker.cancel()

    async def _work(self) -> None:
        while self._queue:
            event, send = self._queue.popleft()
            await self._answer(event, send)

    async def _answer(self, event: Event, send: ReplySink) -> None:
        """One delivery, in the background: the entry point that never crashes."""
        platform = self._platform
        bind_correlation(platform=platform, channel=event.channel, kind=event.kind,
                         **{f"{platform}_event": event.event_id})
        try:
            if event.event_id and not await self._claim(f"dedup:{platform}:{event.event_id}"):
                log.info(f"{platform}_duplicate_dropped", event_id=event.event_id)
                return
            replies = await self._handle(event)
        except Exception:  # noqa: BLE001 - the catch-all of this entry point: log, answer politely
            ref = uuid.uuid4().hex[:8]
            log.exception(f"{platform}_handler_failed", ref=ref)
            replies = [Reply(text=say(event.lang or "en", "internal_error", ref=ref), ephemeral=True, level="error")]
        for reply in replies:
            try:
                await send(reply)
            except DeliveryError as exc:
                failed(platform, event.channel, exc)  # nobody is left to tell but the log
            except Exception:  # noqa: BLE001 - same entry point: a bug in one reply spares the others
                log.exception(f"{platform}_post_failed", channel=event.channel, reason="bug")

    async def _claim(self, key: str) -> bool:
        """True the first time ``key`` is seen: in the store, or in memory while it is down."""
        try:
            first = await self._store.claim(key, self._ttl)
        except StoreError as exc:
            if not self._store_down:
                log.error("dedup_in_memory", reason=str(exc), platform=self._platform)
                self._store_down = True
            return self._claim_in_memory(key)
        if self._store_down:
            log.info("dedup_store_back", platform=self._platform, remembered=len(self._memory))
            self._store_down = False
        # A delivery first claimed in memory during the outage is still a duplicate now.
        return first and self._memory.get(key, 0.0) <= time.monotonic()

    def _claim_in_memory(self, key: str) -> bool:
        now = time.monotonic()
        if self._memory.get(key, 0.0) > now:
            return False
        if len(self._memory) >= _MEMORY_MAX:
            self._memory = {k: t for k, t in self._memory.items() if t > now}
            if len(self._memory) >= _MEMORY_MAX:  # an outage this long: forget the oldest first
                del self._memory[next(iter(self._memory))]
        self._memory[key] = now + self._ttl
        return True
