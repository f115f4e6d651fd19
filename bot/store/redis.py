"""The shared state store: Redis, for several bot replicas behind one load balancer.

Every key starts with ``namespace`` (default ``resync:``) so that deployments and test runs can
share one server. Layout under the namespace:

  claim:<key>        a claim (SET NX PX)
  kv:<key>           a JSON record, with PX when it expires
  log:<name>         a chained log (a list, oldest first)
  outbox:items       hash id -> payload JSON     outbox:due    sorted set id by due time
  outbox:attempts    hash id -> attempts         outbox:errors hash id -> last error
  outbox:seen:<id>   an id queued within OUTBOX_MEMORY (SET NX PX; makes outbox_add "once")
  lock:<name>        the owner of a leader lock (PX)

Each step that must not interleave with another replica is one Lua script or one WATCH/MULTI
transaction. redis errors become ``StoreError`` here and nowhere else.

Bursts: the client draws from a ``BlockingConnectionPool`` of ``REDIS_MAX_CONNECTIONS``
connections. A caller beyond that waits for a free connection (up to ``REDIS_TIMEOUT``) instead of
being refused at once, as redis-py's default pool does ("Too many connections"). Every call is also
bounded as a whole by ``REDIS_TIMEOUT`` (the socket timeouts alone do not bound a call that waits for
a connection, retries, or runs a WATCH loop), and its overrun is a ``StoreError`` like any other.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.client import Pipeline
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError, ResponseError, WatchError
from redis.exceptions import TimeoutError as RedisTimeoutError

from bot.errors import StoreError
from bot.store import JSON, OUTBOX_MEMORY, OutboxItem, decode

# Under contention every WATCH round has one winner, so n concurrent appends need at most n
# rounds; past this many the server is pathologically busy and the caller should hear about it.
_APPEND_ATTEMPTS = 200

# An item can outlive its memory (retried for weeks): while it is still queued it is not new.
_OUTBOX_ADD = """
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then return 0 end
if not redis.call('SET', KEYS[3], '1', 'NX', 'PX', ARGV[4]) then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
return 1
"""

# Only an item still queued is retried: one marked done meanwhile must not come back.
_OUTBOX_RETRY = """
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('HINCRBY', KEYS[3], ARGV[1], 1)
redis.call('HSET', KEYS[4], ARGV[1], ARGV[3])
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1])
return 1
"""

_LOCK_ACQUIRE = """
local owner = redis.call('GET', KEYS[1])
if owner == false or owner == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
"""

_LOCK_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class RedisStore:
    """``Store`` on redis.asyncio. Closes the client only when it created it (``from_url``)."""

    kind = "redis"

    def __init__(self, client: Redis, *, namespace: str = "resync:", owns_client: bool = False,
                 outbox_memory: float = OUTBOX_MEMORY, timeout: float = 5.0) -> None:
        self.namespace = namespace
        self.timeout = timeout
        self.outbox_memory = outbox_memory
        self._redis = client
        self._owns_client = owns_client
        kwargs = client.connection_pool.connection_kwargs
        self.where = kwargs.get("path") or f"{kwargs.get('host', '?')}:{kwargs.get('port', '?')}"
        self._password = kwargs.get("password")
        self._outbox_add = client.register_script(_OUTBOX_ADD)
        self._outbox_retry = client.register_script(_OUTBOX_RETRY)
        self._lock_acquire = client.register_script(_LOCK_ACQUIRE)
        self._lock_release = client.register_script(_LOCK_RELEASE)

    @classmethod
    def from_url(cls, url: str, *, namespace: str = "resync:", timeout: float = 5.0, max_connections: int = 50,
                 outbox_memory: float = OUTBOX_MEMORY) -> RedisStore:
        pool = BlockingConnectionPool.from_url(url, decode_responses=True, max_connections=max_connections,
                                               timeout=timeout, socket_connect_timeout=timeout, socket_timeout=timeout)
        client = Redis.from_pool(pool)  # the client owns the pool: closing one closes the other
        return cls(client, namespace=namespace, owns_client=True, outbox_memory=outbox_memory, timeout=timeout)

    def _key(self, space: str, name: str) -> str:
        return f"{self.namespace}{space}:{name}"

    @asynccontextmanager
    async def _translated(self) -> AsyncIterator[None]:
        """Bound the call in time and translate redis errors; the only place they are caught."""
        try:
            async with asyncio.timeout(self.timeout):
                yield
        except TimeoutError as exc:
            raise StoreError(f"redis at {self.where} did not answer within {self.timeout:g} s") from exc
        except (RedisConnectionError, RedisTimeoutError) as exc:
            raise StoreError(f"redis unreachable at {self.where}: {self._reason(exc)}") from exc
        except RedisError as exc:
            raise StoreError(f"redis at {self.where} failed: {self._reason(exc)}") from exc

    def _reason(self, exc: RedisError) -> str:
        reason = str(exc) or type(exc).__name__
        return reason.replace(self._password, "***") if self._password else reason

    # --- lifecycle ------------------------------------------------------------------------
    async def ping(self) -> None:
        async with self._translated():
            await self._redis.ping()

    async def close(self) -> None:
        if self._owns_client:
            async with self._translated():
                await self._redis.aclose()

    async def purge_expired(self) -> int:
        """Nothing to do: Redis expires keys itself (here for symmetry with SqliteStore)."""
        return 0

    # --- claims ---------------------------------------------------------------------------
    async def claim(self, key: str, ttl: float) -> bool:
        async with self._translated():
            return bool(await self._redis.set(self._key("claim", key), "1", nx=True, px=_ms(ttl)))

    # --- records --------------------------------------------------------------------------
    async def put(self, key: str, value: JSON, ttl: float | None = None) -> None:
        text = json.dumps(value, separators=(",", ":"))
        async with self._translated():
            await self._redis.set(self._key("kv", key), text, px=None if ttl is None else _ms(ttl))

    async def get(self, key: str) -> JSON | None:
        async with self._translated():
            text = await self._redis.get(self._key("kv", key))
        return None if text is None else decode(text, key, "redis")

    async def delete(self, key: str) -> None:
        async with self._translated():
            await self._redis.delete(self._key("kv", key))

    async def scan(self, prefix: str) -> list[tuple[str, JSON]]:
        head = self._key("kv", "")
        async with self._translated():
            keys = sorted({k async for k in self._redis.scan_iter(match=_glob_escape(head + prefix) + "*", count=500)})
            values = [v for chunk in _chunks(keys, 500) for v in await self._redis.mget(chunk)]
        # A record may expire between SCAN and MGET: it is simply absent.
        return [(key[len(head):], decode(text, key, "redis")) for key, text in zip(keys, values) if text is not None]

    # --- chained log ----------------------------------------------------------------------
    async def append_chained(self, log: str, build: Callable[[JSON | None], JSON]) -> JSON:
        """WATCH the list, build from its tail, RPUSH in MULTI; ``build`` may run more than once."""
        key = self._key("log", log)
        async with self._translated():
            async with self._redis.pipeline(transaction=True) as pipe:
                for attempt in range(_APPEND_ATTEMPTS):
                    try:
                        return await _append_once(pipe, key, log, build)
                    except WatchError:
                        await asyncio.sleep(random.uniform(0, 0.001 * min(attempt, 10)))
        raise StoreError(f"append to log {log!r} lost the race {_APPEND_ATTEMPTS} times")

    async def read_log(self, log: str, *, last: int | None = None) -> list[JSON]:
        if last is not None and last <= 0:
            return []
        async with self._translated():
            texts = await self._redis.lrange(self._key("log", log), 0 if last is None else -last, -1)
        return [decode(text, log, "redis") for text in texts]

    async def read_log_text(self, log: str) -> list[str]:
        async with self._translated():
            return await self._redis.lrange(self._key("log", log), 0, -1)

    async def persistence(self) -> str | None:
        """What keeps the data across a restart ("AOF", "RDB save 3600 1"), "" for nothing, None if unknown."""
        async with self._translated():
            try:
                aof = (await self._redis.config_get("appendonly")).get("appendonly")
                save = (await self._redis.config_get("save")).get("save")
            except ResponseError:  # CONFIG disabled or renamed (managed Redis services do this)
                return None
        kept = (["AOF"] if aof == "yes" else []) + ([f"RDB save {save}"] if save else [])
        return ", ".join(kept)

    # --- outbox ---------------------------------------------------------------------------
    def _outbox_keys(self) -> list[str]:
        return [self._key("outbox", part) for part in ("items", "due", "attempts", "errors")]

    async def outbox_add(self, item_id: str, payload: JSON, due_at: float) -> bool:
        items, due, _, _ = self._outbox_keys()
        seen = self._key("outbox", f"seen:{item_id}")
        text = json.dumps(payload, separators=(",", ":"))
        async with self._translated():
            return bool(await self._outbox_add(keys=[items, due, seen],
                                               args=[item_id, text, repr(due_at), _ms(self.outbox_memory)]))

    async def outbox_due(self, now: float, limit: int = 50) -> list[OutboxItem]:
        items, due, attempts, errors = self._outbox_keys()
        async with self._translated():
            scored = await self._redis.zrangebyscore(due, "-inf", repr(now), start=0, num=limit, withscores=True)
            if not scored:
                return []
            ids = [item_id for item_id, _ in scored]
            async with self._redis.pipeline(transaction=False) as pipe:
                pipe.hmget(items, ids).hmget(attempts, ids).hmget(errors, ids)
                payloads, counts, last_errors = await pipe.execute()
        return [OutboxItem(id=item_id, payload=decode(text, item_id, "redis"), attempts=int(count or 0), due_at=score,
                           last_error=error)
                for (item_id, score), text, count, error in zip(scored, payloads, counts, last_errors)
                if text is not None]

    async def outbox_done(self, item_id: str) -> None:
        items, due, attempts, errors = self._outbox_keys()
        async with self._translated():
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.hdel(items, item_id).zrem(due, item_id).hdel(attempts, item_id).hdel(errors, item_id)
                await pipe.execute()

    async def outbox_retry(self, item_id: str, due_at: float, error: str) -> None:
        items, due, attempts, errors = self._outbox_keys()
        async with self._translated():
            await self._outbox_retry(keys=[items, due, attempts, errors], args=[item_id, repr(due_at), error])

    async def outbox_pending(self) -> int:
        async with self._translated():
            return int(await self._redis.zcard(self._key("outbox", "due")))

    # --- leader lock ----------------------------------------------------------------------
    async def acquire_lock(self, name: str, owner: str, ttl: float) -> bool:
        async with self._translated():
            return bool(await self._lock_acquire(keys=[self._key("lock", name)], args=[owner, _ms(ttl)]))

    async def release_lock(self, name: str, owner: str) -> None:
        async with self._translated():
            await self._lock_release(keys=[self._key("lock", name)], args=[owner])


async def _append_once(pipe: Pipeline, key: str, log_name: str, build: Callable[[JSON | None], JSON]) -> JSON:
    await pipe.watch(key)
    last = await pipe.lindex(key, -1)
    record = build(None if last is None else decode(last, log_name, "redis"))
    pipe.multi()
    pipe.rpush(key, json.dumps(record, separators=(",", ":")))
    await pipe.execute()
    return record


def _ms(seconds: float) -> int:
    """Redis TTLs are whole milliseconds, and 0 is an error rather than "expire now"."""
    return max(1, round(seconds * 1000))


def _glob_escape(text: str) -> str:
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)


def _chunks(items: list[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]
