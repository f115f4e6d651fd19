"""Sending to a chat platform at its pace: per-conversation slots, paced retries, refusals classified.

Neither slack-sdk (its retry handlers are switched off) nor botbuilder (one attempt per activity)
retries the way an operator needs, so the policy is Resync's own and the same on every platform:

* every message waits for its conversation's next slot (``Pacer``: one interval apart, a 429
  pushes that conversation back by its ``Retry-After``);
* ``paced`` makes up to ``attempts`` tries: a rate limit waits its ``Retry-After``, a transient
  refusal (5xx, a network error, an error code in the platform's transient set) waits a full-jitter
  backoff, anything else is permanent and raised at once;
* ``refusal`` turns a platform's answer (status, headers, error code) into that ``DeliveryError``.

Alerts use this module without ``answers.py``; a message that finally fails is logged by
``failed`` as ``<platform>_post_failed`` with its reason, never dropped silently.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Container, Mapping
from typing import Any, TypeVar

import structlog

from bot.errors import DeliveryError

log = structlog.get_logger(__name__)

T = TypeVar("T")

ATTEMPTS = 4  # per outbound message
BACKOFF = 0.25  # first retry delay for 5xx and network errors, doubled each time, full jitter
_FORGET_AFTER = 10_000  # conversations remembered before expired slots are swept


class Pacer:
    """Per-conversation send slots ``interval`` apart; a 429 blocks the conversation until it may send.

    One event loop, no awaits between reading and writing a slot: no lock is needed.
    """

    def __init__(self, interval: float) -> None:
        self._interval = interval
        self._next: dict[str, float] = {}
        self._blocked: dict[str, float] = {}

    async def wait(self, key: str) -> None:
        loop = asyncio.get_running_loop()
        while True:
            now = loop.time()
            slot = max(now, self._next.get(key, now), self._blocked.get(key, now))
            self._next[key] = slot + self._interval
            if slot > now:
                await asyncio.sleep(slot - now)
            if self._blocked.get(key, 0.0) <= loop.time():  # no 429 arrived while we slept
                break
        if len(self._next) > _FORGET_AFTER:
            self._forget(loop.time())

    def block(self, key: str, seconds: float) -> None:
        until = asyncio.get_running_loop().time() + seconds
        self._blocked[key] = max(until, self._blocked.get(key, 0.0))

    def _forget(self, now: float) -> None:
        self._next = {k: v for k, v in self._next.items() if v > now}
        self._blocked = {k: v for k, v in self._blocked.items() if v > now}


async def paced(what: str, key: str, attempt: Callable[[], Awaitable[T]], *, pacer: Pacer, platform: str,
                attempts: int = ATTEMPTS, backoff: float = BACKOFF) -> T:
    """``attempt()`` in ``key``'s slots, retried by the rules in the module docstring."""
    for number in range(1, attempts + 1):
        await pacer.wait(key)
        try:
            return await attempt()
        except DeliveryError as exc:
            if exc.permanent or number == attempts:
                raise
            if exc.retry_after is not None:
                pacer.block(key, exc.retry_after)  # the next wait() honours it
                delay = exc.retry_after
            else:
                delay = random.uniform(0, backoff * 2 ** (number - 1))
            log.warning(f"{platform}_call_retry", call=what, channel=key, reason=str(exc), attempt=number,
                        delay=round(delay, 3))
            if exc.retry_after is None:
                await asyncio.sleep(delay)
    raise AssertionError("unreachable")  # pragma: no cover


def refusal(what: str, status: int, headers: Mapping[str, Any], *, reason: str | None = None,
            transient: Container[str | int] = ()) -> DeliveryError:
    """The platform's answer as a DeliveryError: rate limit (retry_after), transient, or permanent.

    ``reason`` is the platform's error code when it sent one (else "HTTP <status>"); ``transient``
    names the codes and statuses below 500 that are worth retrying on this platform.
    """
    if status == 429 or reason == "ratelimited":
        return DeliveryError(f"{what}: ratelimited", retry_after=retry_after(headers), reason="ratelimited")
    reason = reason or f"HTTP {status}"
    permanent = status < 500 and reason not in transient and status not in transient
    return DeliveryError(f"{what}: {reason}", permanent=permanent, reason=reason)


def unreachable(what: str, exc: BaseException) -> DeliveryError:
    """A network error or timeout on the way to the platform: transient."""
    return DeliveryError(f"{what}: {type(exc).__name__}", reason=type(exc).__name__)


def retry_after(headers: Mapping[str, Any]) -> float:
    """``Retry-After`` in seconds (1 when absent or unreadable; HTTP dates are not sent by chat APIs)."""
    value = next((v for k, v in headers.items() if k.lower() == "retry-after"), "1")
    value = value[0] if isinstance(value, list) else value
    try:
        return max(0.0, float(value))
    except (TypeError, ValueError):
        return 1.0


def failed(platform: str, channel: str, exc: DeliveryError) -> None:
    """Log a message the platform finally did not take, after our retries: never dropped silently."""
    log.error(f"{platform}_post_failed", channel=channel, reason=str(exc), permanent=exc.permanent,
              retry_after=exc.retry_after)
