"""Who a Slack user is by e-mail: ``users.info``, cached, so a policy entry by e-mail matches.

Policies name people by e-mail (``"ana@example.com" = ["operator"]``), which Slack gives only
through ``users.info`` with the ``users:read.email`` scope. Asked once per user and kept for
``ttl`` (people rarely change address; a removed scope or user shows within the hour); concurrent
questions about one user share one call. When Slack will not say (no scope, user not found,
Slack unreachable) the user simply has no e-mail identity, for ``miss_ttl``, and the reason is
logged once: the platform-qualified id (``slack:U…``) still works.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import structlog
from slack_sdk.errors import SlackApiError

log = structlog.get_logger(__name__)

TTL = 3600.0
MISS_TTL = 300.0
SIZE = 10_000

Lookup = Callable[[str], Awaitable[Any]]  # users.info for one user id: its response data


class SlackEmails:
    """E-mail addresses of Slack users by id; see the module docstring."""

    def __init__(self, lookup: Lookup, *, ttl: float = TTL, miss_ttl: float = MISS_TTL, size: int = SIZE) -> None:
        self._lookup = lookup
        self._ttl, self._miss_ttl, self._size = ttl, miss_ttl, size
        self._known: dict[str, tuple[str | None, float]] = {}
        self._asking: dict[str, asyncio.Future[str | None]] = {}
        self._told: set[str] = set()  # reasons already logged

    async def of(self, user_id: str) -> str | None:
        known = self._known.get(user_id)
        if known is not None and known[1] > time.monotonic():
            return known[0]
        asking = self._asking.get(user_id)
        if asking is None:
            asking = self._asking[user_id] = asyncio.ensure_future(self._ask(user_id))
            asking.add_done_callback(lambda _f: self._asking.pop(user_id, None))
        return await asyncio.shield(asking)

    async def _ask(self, user_id: str) -> str | None:
        email, reason = None, None
        try:
            data = await self._lookup(user_id)
            user = data.get("user") if isinstance(data, dict) else None
            profile = user.get("profile") if isinstance(user, dict) else None
            found = profile.get("email") if isinstance(profile, dict) else None
            if isinstance(found, str) and "@" in found:
                email = found.strip().lower()
            else:
                reason = "no e-mail in the profile (is users:read.email granted?)"
        except SlackApiError as exc:
            data = exc.response.data if isinstance(exc.response.data, dict) else {}
            reason = str(data.get("error") or f"HTTP {exc.response.status_code}")
        except (aiohttp.ClientError, TimeoutError) as exc:
            reason = type(exc).__name__
        if reason is not None and reason not in self._told:
            self._told.add(reason)
            log.warning("slack_email_unknown", user=user_id, reason=reason)
        if len(self._known) >= self._size:
            now = time.monotonic()
            self._known = {k: v for k, v in self._known.items() if v[1] > now}
            if len(self._known) >= self._size:
                del self._known[next(iter(self._known))]
        self._known[user_id] = (email, time.monotonic() + (self._ttl if email else self._miss_ttl))
        return email
