"""What the bot must remember, behind one small interface with two real implementations.

``SqliteStore`` (embedded, the default, one process) and ``RedisStore`` (``REDIS_URL``, several
replicas) pass the same contract tests (tests/test_store_contract.py). Values are JSON-able dicts.

Key spaces used by the rest of the code (by convention, prefix first):
  dedup:<platform>:<event_id>        delivery dedup (claim)
  idem:<confirmation id>             an action ran at most once (claim)
  confirm:<id>                       a pending confirmation (put with TTL)
  ctx:<conversation key>             conversation context (put with TTL)
  convref:<target>                   proactive conversation references
  alert:<job id>:<run id>            alert records
  snooze:<job id> / mute:<pattern>   noise control (put with TTL)
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Protocol

import structlog

from bot.config import StoreSettings
from bot.errors import StoreError

log = structlog.get_logger(__name__)

JSON = dict[str, Any]

# How long ``outbox_add`` remembers a queued id, in seconds. Remembering forever grows without
# bound, and an alert id replayed after two weeks belongs to a new plan anyway: TWS job ids change
# with every daily plan, so the same id that late is not the same failure.
OUTBOX_MEMORY = 14 * 24 * 3600.0


@dataclass(frozen=True, slots=True, kw_only=True)
class OutboxItem:
    id: str
    payload: JSON
    attempts: int
    due_at: float  # epoch seconds
    last_error: str | None = None


def decode(text: str | bytes, where: str, kind: str) -> JSON:
    """A stored record back to JSON; a corrupt one is a StoreError naming where it lies."""
    try:
        return json.loads(text)
    except ValueError as exc:
        raise StoreError(f"{kind} store holds a corrupt record at {where!r}: {exc}") from exc


class Store(Protocol):
    """The state store port. Every method raises ``StoreError`` when the backend fails."""

    kind: str  # "sqlite" or "redis"

    async def ping(self) -> None: ...

    async def close(self) -> None: ...

    # --- keys with TTL: dedup and idempotency -------------------------------------------
    async def claim(self, key: str, ttl: float) -> bool:
        """Atomically mark ``key`` for ``ttl`` seconds; True only for the first caller."""
        ...

    # --- small JSON records -------------------------------------------------------------
    async def put(self, key: str, value: JSON, ttl: float | None = None) -> None: ...

    async def get(self, key: str) -> JSON | None: ...

    async def delete(self, key: str) -> None: ...

    async def scan(self, prefix: str) -> list[tuple[str, JSON]]:
        """Every live record whose key starts with ``prefix`` (sorted by key)."""
        ...

    # --- append-only, hash-chained log (audit) -------------------------------------------
    async def append_chained(self, log: str, build: Callable[[JSON | None], JSON]) -> JSON:
        """Append ``build(last_record)`` atomically: no two appends see the same last record."""
        ...

    async def read_log(self, log: str, *, last: int | None = None) -> list[JSON]:
        """The records of ``log`` in append order (only the newest ``last`` when given)."""
        ...

    async def read_log_text(self, log: str) -> list[str]:
        """Every record of ``log`` as stored, undecoded: ``audit verify`` names even unreadable ones."""
        ...

    # --- durable outbox (alerts are written here before they are sent) ---------------------
    async def outbox_add(self, item_id: str, payload: JSON, due_at: float) -> bool:
        """Queue an item; False (nothing changes) when ``item_id`` was queued within ``OUTBOX_MEMORY``.

        The memory outlives delivery, so an alert already sent is not queued again; it is bounded
        so that the store does not keep every id forever. An item still queued is never replaced.
        """
        ...

    async def outbox_due(self, now: float, limit: int = 50) -> list[OutboxItem]: ...

    async def outbox_done(self, item_id: str) -> None: ...

    async def outbox_retry(self, item_id: str, due_at: float, error: str) -> None: ...

    async def outbox_pending(self) -> int: ...

    # --- leader lock (one poller among replicas) ------------------------------------------
    async def acquire_lock(self, name: str, owner: str, ttl: float) -> bool:
        """Take the lock or renew it when ``owner`` already holds it."""
        ...

    async def release_lock(self, name: str, owner: str) -> None: ...

    # --- housekeeping ---------------------------------------------------------------------
    async def purge_expired(self) -> int:
        """Drop expired keys the backend does not expire by itself; how many went."""
        ...


# --- opening the configured store ---------------------------------------------------------

@asynccontextmanager
async def open_store(settings: StoreSettings, *, namespace: str = "resync:") -> AsyncIterator[Store]:
    """Redis when ``REDIS_URL`` is set, else ``<data_dir>/state.db``; closed on exit.

    A configured Redis that does not answer stops start-up with ``StoreError``: falling back to
    a local file would silently split state between replicas.
    """
    # Imported here: the implementations import this module, and redis is only needed with Redis.
    if settings.redis_url:
        from bot.store.redis import RedisStore

        redis_store = RedisStore.from_url(settings.redis_url, namespace=namespace, timeout=settings.redis_timeout,
                                          max_connections=settings.redis_max_connections)
        try:
            await redis_store.ping()
        except StoreError:
            await redis_store.close()
            raise
        log.info("store_opened", kind="redis", where=redis_store.where, namespace=namespace)
        persistence = await redis_store.persistence()
        if persistence == "":
            log.warning("redis_without_persistence", where=redis_store.where,
                        detail="Redis keeps no AOF and no RDB snapshots: a Redis restart empties the state, "
                               "the audit log included. Turn on appendonly (or save) on this server.")
        elif persistence is None:
            log.warning("redis_persistence_unknown", where=redis_store.where,
                        detail="CONFIG GET is not allowed here, so whether Redis persists the audit log is unknown")
        store: Store = redis_store
    else:
        from bot.store.sqlite import SqliteStore

        store = await SqliteStore.open(settings.data_dir / "state.db")
    try:
        yield store
    finally:
        await store.close()
