"""Issue 10, item 2: a burst of simultaneous Redis operations on one replica all succeed.

The server is a private redis-server limited to 60 clients, like a managed Redis with a client
cap: redis-py's default pool opens one connection per concurrent caller and is refused beyond it
(the reproduction below), while the store's blocking pool (``REDIS_MAX_CONNECTIONS``) makes callers
beyond its size wait for a free connection.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from redis.asyncio import Redis
from redis.exceptions import RedisError

from bot.audit import AuditEntry, append, verify
from bot.config import StoreSettings
from bot.errors import StoreError
from bot.store import open_store
from tests.redis_server import RedisServer

pytestmark = pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs the redis-server binary")

BURST = 500


@pytest.fixture
def capped_redis(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path, extra=("--maxclients", "60")).start()
    yield server
    server.kill()


async def test_default_pool_is_refused_beyond_the_server_cap(capped_redis: RedisServer) -> None:
    """The failure of the issue: one connection per caller, refused past the cap."""
    client = Redis.from_url(capped_redis.url)
    try:
        results = await asyncio.gather(*(client.set(f"k{i}", "v") for i in range(BURST)), return_exceptions=True)
    finally:
        await client.aclose()
    refused = [r for r in results if isinstance(r, RedisError)]
    assert refused, "the bare client was expected to be refused beyond 60 clients"


async def test_500_simultaneous_operations_succeed(capped_redis: RedisServer) -> None:
    settings = StoreSettings(redis_url=capped_redis.url, redis_max_connections=40, redis_timeout=10)
    async with open_store(settings, namespace="burst:") as store:
        async def one(i: int) -> object:
            match i % 5:
                case 0:
                    return await store.claim(f"idem:{i}", 60)
                case 1:
                    return await store.put(f"ctx:conv-{i}", {"job_id": f"J{i}"}, ttl=60)  # conversation context
                case 2:
                    return await store.get(f"ctx:conv-{i - 1}")
                case 3:
                    return await append(store, AuditEntry(actor=f"http:u{i}", action="request", tool="rerun_job",
                                                          target=f"J{i}", where="http:api:c"))
                case _:
                    return await store.scan("ctx:")

        results = await asyncio.gather(*(one(i) for i in range(BURST)), return_exceptions=True)
        failures = [r for r in results if isinstance(r, BaseException)]
        assert failures == []
        # Nothing silently lost: every context write and every audit record is there, chained.
        contexts = dict(await store.scan("ctx:"))
        assert len(contexts) == BURST // 5
        records = await store.read_log("audit")
        assert len(records) == BURST // 5 and verify(records) == []
        assert all(results[i] is True for i in range(0, BURST, 5))  # every claim was the first


async def test_a_call_is_bounded_in_time(tmp_path: Path) -> None:
    """A server that accepts but never answers (here: paused) costs REDIS_TIMEOUT, then a StoreError."""
    server = RedisServer(tmp_path).start()
    try:
        async with open_store(StoreSettings(redis_url=server.url, redis_timeout=0.5), namespace="t:") as store:
            server.process.send_signal(19)  # SIGSTOP: connections stay open, nothing answers
            loop = asyncio.get_running_loop()
            started = loop.time()
            with pytest.raises(StoreError):
                await store.get("anything")
            assert loop.time() - started < 3
            server.process.send_signal(18)  # SIGCONT
    finally:
        server.kill()
