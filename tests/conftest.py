"""Shared fixtures. Store fixtures open real backends: SQLite in tmp_path, Redis under a uuid namespace."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from pathlib import Path

import pytest
from redis.asyncio import Redis

from bot.config import StoreSettings
from bot.store import Store, open_store
from bot.store.sqlite import SqliteStore

# --- state store --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class StoreBackend:
    """How to (re)open one test store: the same settings and namespace every time."""

    kind: str
    settings: StoreSettings
    namespace: str

    def open(self) -> AbstractAsyncContextManager[Store]:
        return open_store(self.settings, namespace=self.namespace)

    @property
    def sqlite_path(self) -> Path:
        return self.settings.data_dir / "state.db"


@pytest.fixture
def redis_url() -> str:
    return os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0"


@pytest.fixture
async def redis_namespace(redis_url: str) -> AsyncIterator[str]:
    """A fresh key prefix; every key under it is deleted afterwards."""
    namespace = f"test:{uuid.uuid4().hex}:"
    yield namespace
    client = Redis.from_url(redis_url)
    try:
        keys = [k async for k in client.scan_iter(match=namespace + "*", count=500)]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


@pytest.fixture(params=["sqlite", "redis"])
def store_backend(request: pytest.FixtureRequest, tmp_path: Path) -> StoreBackend:
    if request.param == "sqlite":
        return StoreBackend(kind="sqlite", settings=StoreSettings(data_dir=tmp_path), namespace="")
    redis_url, namespace = request.getfixturevalue("redis_url"), request.getfixturevalue("redis_namespace")
    return StoreBackend(kind="redis", settings=StoreSettings(redis_url=redis_url), namespace=namespace)


@pytest.fixture
async def store(store_backend: StoreBackend) -> AsyncIterator[Store]:
    async with store_backend.open() as opened:
        yield opened


@pytest.fixture
async def sqlite_store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    opened = await SqliteStore.open(tmp_path / "state.db")
    yield opened
    await opened.close()
