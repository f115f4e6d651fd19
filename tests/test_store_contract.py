"""One contract, two real backends: every test runs on SQLite (tmp_path) and Redis (uuid namespace)."""

from __future__ import annotations

import asyncio
import sqlite3
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from structlog.testing import capture_logs

from bot.config import StoreSettings
from bot.errors import StoreError
from bot.store import JSON, Store, open_store
from bot.store.redis import RedisStore
from bot.store.sqlite import SqliteStore

from .conftest import StoreBackend

SHORT = 0.3  # seconds: long enough to act within, short enough to wait out


async def test_kind_names_the_backend(store: Store, store_backend: StoreBackend) -> None:
    assert store.kind == store_backend.kind
    await store.ping()


# --- claim --------------------------------------------------------------------------------

async def test_claim_succeeds_once(store: Store) -> None:
    assert await store.claim("dedup:slack:Ev1", 60) is True
    assert await store.claim("dedup:slack:Ev1", 60) is False
    assert await store.claim("dedup:slack:Ev2", 60) is True


async def test_claim_is_free_again_after_its_ttl(store: Store) -> None:
    assert await store.claim("idem:c1", SHORT)
    assert not await store.claim("idem:c1", SHORT)
    await asyncio.sleep(SHORT + 0.1)
    assert await store.claim("idem:c1", 60)
    assert not await store.claim("idem:c1", 60)


async def test_concurrent_claims_have_one_winner(store: Store) -> None:
    results = await asyncio.gather(*(store.claim("idem:race", 60) for _ in range(20)))
    assert results.count(True) == 1


async def test_claims_and_records_are_separate(store: Store) -> None:
    await store.claim("confirm:x", 60)
    assert await store.get("confirm:x") is None
    assert await store.scan("confirm:") == []


# --- records ------------------------------------------------------------------------------

async def test_put_get_delete(store: Store) -> None:
    value = {"job": "CPU1#S.J", "n": 3, "nested": {"ok": True, "items": [1.5, None, "é"]}, "empty": []}
    await store.put("confirm:a", value)
    assert await store.get("confirm:a") == value
    await store.put("confirm:a", {"v": 2})
    assert await store.get("confirm:a") == {"v": 2}
    await store.delete("confirm:a")
    assert await store.get("confirm:a") is None
    await store.delete("confirm:a")  # deleting nothing is fine
    assert await store.get("never") is None


async def test_record_with_ttl_expires(store: Store) -> None:
    await store.put("ctx:k", {"v": 1}, ttl=SHORT)
    await store.put("ctx:forever", {"v": 2})
    assert await store.get("ctx:k") == {"v": 1}
    await asyncio.sleep(SHORT + 0.1)
    assert await store.get("ctx:k") is None
    assert await store.scan("ctx:") == [("ctx:forever", {"v": 2})]


async def test_put_without_ttl_clears_an_earlier_ttl(store: Store) -> None:
    await store.put("ctx:k", {"v": 1}, ttl=SHORT)
    await store.put("ctx:k", {"v": 2})
    await asyncio.sleep(SHORT + 0.1)
    assert await store.get("ctx:k") == {"v": 2}


async def test_scan_returns_live_records_with_the_prefix_sorted(store: Store) -> None:
    await store.put("snooze:b", {"n": 2})
    await store.put("snooze:a", {"n": 1})
    await store.put("snooze:c", {"n": 3}, ttl=SHORT)
    await store.put("SNOOZE:upper", {"n": 9})
    await store.put("snoozed", {"n": 9})
    await store.put("mute:*", {"n": 4})
    await store.put("mute:x", {"n": 5})
    assert await store.scan("snooze:") == [("snooze:a", {"n": 1}), ("snooze:b", {"n": 2}), ("snooze:c", {"n": 3})]
    # Glob characters in a prefix are literal.
    assert await store.scan("mute:*") == [("mute:*", {"n": 4})]
    await asyncio.sleep(SHORT + 0.1)
    assert [k for k, _ in await store.scan("snooze:")] == ["snooze:a", "snooze:b"]
    assert await store.scan("nothing:") == []


# --- chained log --------------------------------------------------------------------------

def _chain(last: JSON | None) -> JSON:
    return {"seq": 1 if last is None else last["seq"] + 1, "prev": None if last is None else last["seq"]}


async def test_append_chained_passes_the_last_record(store: Store) -> None:
    assert await store.read_log("audit") == []
    first = await store.append_chained("audit", _chain)
    second = await store.append_chained("audit", _chain)
    assert first == {"seq": 1, "prev": None}
    assert second == {"seq": 2, "prev": 1}
    assert await store.read_log("audit") == [first, second]
    assert await store.read_log("other") == []


async def test_fifty_concurrent_appends_form_one_chain(store: Store) -> None:
    started = time.monotonic()
    records = await asyncio.gather(*(store.append_chained("audit", _chain) for _ in range(50)))
    elapsed = time.monotonic() - started
    assert sorted(r["seq"] for r in records) == list(range(1, 51))
    stored = await store.read_log("audit")
    assert [r["seq"] for r in stored] == list(range(1, 51))
    assert all(r["prev"] == r["seq"] - 1 for r in stored[1:])
    assert elapsed < 10


async def test_read_log_last_n(store: Store) -> None:
    for _ in range(5):
        await store.append_chained("audit", _chain)
    assert [r["seq"] for r in await store.read_log("audit", last=2)] == [4, 5]
    assert [r["seq"] for r in await store.read_log("audit", last=50)] == [1, 2, 3, 4, 5]
    assert await store.read_log("audit", last=0) == []


async def test_append_chained_keeps_nothing_when_build_fails(store: Store) -> None:
    await store.append_chained("audit", _chain)

    def broken(last: JSON | None) -> JSON:
        raise ValueError("no")

    with pytest.raises(ValueError):
        await store.append_chained("audit", broken)
    assert [r["seq"] for r in await store.read_log("audit")] == [1]
    assert (await store.append_chained("audit", _chain))["seq"] == 2


# --- outbox -------------------------------------------------------------------------------

async def test_outbox_add_is_once_ever(store: Store) -> None:
    assert await store.outbox_add("alert:1", {"text": "A"}, due_at=100.0)
    assert not await store.outbox_add("alert:1", {"text": "changed"}, due_at=1.0)
    assert [(i.id, i.payload, i.due_at) for i in await store.outbox_due(200.0)] == [("alert:1", {"text": "A"}, 100.0)]
    await store.outbox_done("alert:1")
    assert not await store.outbox_add("alert:1", {"text": "again"}, due_at=1.0)
    assert await store.outbox_due(200.0) == []
    assert await store.outbox_pending() == 0


@asynccontextmanager
async def _short_memory(backend: StoreBackend) -> AsyncIterator[Store]:
    """The backend's store, but remembering outbox ids for SHORT seconds instead of two weeks."""
    store: Store
    if backend.kind == "sqlite":
        store = await SqliteStore.open(backend.sqlite_path, outbox_memory=SHORT)
    else:
        assert backend.settings.redis_url
        store = RedisStore.from_url(backend.settings.redis_url, namespace=backend.namespace, outbox_memory=SHORT)
    try:
        yield store
    finally:
        await store.close()


async def test_outbox_forgets_an_id_after_its_memory(store_backend: StoreBackend) -> None:
    async with _short_memory(store_backend) as store:
        assert await store.outbox_add("alert:1", {"text": "A"}, due_at=1.0)
        await store.outbox_done("alert:1")
        assert not await store.outbox_add("alert:1", {"text": "too soon"}, due_at=1.0)
        await asyncio.sleep(SHORT + 0.1)
        assert await store.outbox_add("alert:1", {"text": "B"}, due_at=2.0)
        assert not await store.outbox_add("alert:1", {"text": "C"}, due_at=3.0)  # remembered afresh
        due = await store.outbox_due(10.0)
        assert [(i.id, i.payload, i.due_at, i.attempts) for i in due] == [("alert:1", {"text": "B"}, 2.0, 0)]


async def test_outbox_item_still_queued_outlives_its_memory(store_backend: StoreBackend) -> None:
    async with _short_memory(store_backend) as store:
        assert await store.outbox_add("alert:1", {"text": "A"}, due_at=1.0)
        await store.outbox_retry("alert:1", due_at=5.0, error="slack 503")
        await asyncio.sleep(SHORT + 0.1)
        assert not await store.outbox_add("alert:1", {"text": "B"}, due_at=2.0)
        (item,) = await store.outbox_due(10.0)
        assert (item.payload, item.due_at, item.attempts, item.last_error) == ({"text": "A"}, 5.0, 1, "slack 503")
        assert await store.outbox_pending() == 1


async def test_outbox_due_orders_by_due_time_and_honours_limit(store: Store) -> None:
    await store.outbox_add("c", {"n": 3}, due_at=30.5)
    await store.outbox_add("a", {"n": 1}, due_at=10.25)
    await store.outbox_add("b", {"n": 2}, due_at=20.0)
    await store.outbox_add("later", {"n": 4}, due_at=1000.0)
    assert await store.outbox_pending() == 4
    due = await store.outbox_due(now=30.5)
    assert [i.id for i in due] == ["a", "b", "c"]
    assert due[0].attempts == 0 and due[0].last_error is None and due[0].due_at == 10.25
    assert [i.id for i in await store.outbox_due(now=30.5, limit=2)] == ["a", "b"]
    assert await store.outbox_due(now=5.0) == []


async def test_outbox_retry_moves_the_item_and_counts_attempts(store: Store) -> None:
    await store.outbox_add("a", {"n": 1}, due_at=10.0)
    await store.outbox_add("b", {"n": 2}, due_at=20.0)
    await store.outbox_retry("a", due_at=40.0, error="slack 429")
    assert [i.id for i in await store.outbox_due(now=30.0)] == ["b"]
    await store.outbox_retry("a", due_at=50.0, error="slack 503")
    (item,) = [i for i in await store.outbox_due(now=60.0) if i.id == "a"]
    assert (item.attempts, item.due_at, item.last_error, item.payload) == (2, 50.0, "slack 503", {"n": 1})
    assert await store.outbox_pending() == 2


async def test_outbox_done_item_is_not_revived_by_a_late_retry(store: Store) -> None:
    await store.outbox_add("a", {"n": 1}, due_at=10.0)
    await store.outbox_done("a")
    await store.outbox_retry("a", due_at=20.0, error="late")
    assert await store.outbox_due(now=100.0) == []
    assert await store.outbox_pending() == 0


# --- leader lock --------------------------------------------------------------------------

async def test_lock_is_exclusive_and_renewable(store: Store) -> None:
    assert await store.acquire_lock("poller", "pod-a", 60)
    assert not await store.acquire_lock("poller", "pod-b", 60)
    assert await store.acquire_lock("poller", "pod-a", 60)  # renew
    assert await store.acquire_lock("other", "pod-b", 60)


async def test_lock_renewal_extends_it(store: Store) -> None:
    assert await store.acquire_lock("poller", "pod-a", SHORT)
    await asyncio.sleep(SHORT / 2)
    assert await store.acquire_lock("poller", "pod-a", SHORT)
    await asyncio.sleep(SHORT * 0.7)  # past the first expiry, within the renewed one
    assert not await store.acquire_lock("poller", "pod-b", SHORT)


async def test_expired_lock_can_be_taken_over(store: Store) -> None:
    assert await store.acquire_lock("poller", "pod-a", SHORT)
    await asyncio.sleep(SHORT + 0.1)
    assert await store.acquire_lock("poller", "pod-b", 60)
    assert not await store.acquire_lock("poller", "pod-a", 60)


async def test_only_the_owner_releases_a_lock(store: Store) -> None:
    assert await store.acquire_lock("poller", "pod-a", 60)
    await store.release_lock("poller", "pod-b")
    assert not await store.acquire_lock("poller", "pod-b", 60)
    await store.release_lock("poller", "pod-a")
    assert await store.acquire_lock("poller", "pod-b", 60)


async def test_concurrent_lock_attempts_have_one_winner(store: Store) -> None:
    results = await asyncio.gather(*(store.acquire_lock("poller", f"pod-{i}", 60) for i in range(10)))
    assert results.count(True) == 1


# --- lifecycle ----------------------------------------------------------------------------

async def test_state_survives_close_and_reopen(store_backend: StoreBackend) -> None:
    async with store_backend.open() as first:
        await first.claim("idem:c1", 60)
        await first.put("convref:slack:C1", {"channel": "C1"})
        await first.append_chained("audit", _chain)
        await first.outbox_add("alert:1", {"text": "A"}, due_at=1.0)
        await first.acquire_lock("poller", "pod-a", 60)
    async with store_backend.open() as second:
        assert not await second.claim("idem:c1", 60)
        assert await second.get("convref:slack:C1") == {"channel": "C1"}
        assert await second.read_log("audit") == [{"seq": 1, "prev": None}]
        assert [i.id for i in await second.outbox_due(now=2.0)] == ["alert:1"]
        assert not await second.outbox_add("alert:1", {"text": "A"}, due_at=1.0)
        assert not await second.acquire_lock("poller", "pod-b", 60)


async def test_closed_sqlite_store_raises_store_error(sqlite_store: SqliteStore) -> None:
    await sqlite_store.close()
    await sqlite_store.close()  # twice is harmless
    with pytest.raises(StoreError, match="closed"):
        await sqlite_store.get("x")


async def test_redis_namespaces_do_not_see_each_other(redis_url: str, redis_namespace: str) -> None:
    settings = StoreSettings(redis_url=redis_url)
    async with open_store(settings, namespace=redis_namespace + "a:") as mine, \
            open_store(settings, namespace=redis_namespace + "b:") as theirs:
        await mine.put("k", {"v": 1})
        await theirs.put("k", {"v": 2})
        await mine.claim("c", 60)
        assert await mine.get("k") == {"v": 1}
        assert await theirs.scan("") == [("k", {"v": 2})]
        assert await theirs.claim("c", 60)


# --- start-up errors ----------------------------------------------------------------------

async def test_unreachable_redis_stops_start_up_without_leaking_the_password(tmp_path) -> None:
    settings = StoreSettings(redis_url="redis://:hunter2secret@127.0.0.1:1/0", data_dir=tmp_path)
    with capture_logs() as logs, pytest.raises(StoreError) as caught:
        async with open_store(settings, namespace=f"test:{uuid.uuid4().hex}:"):
            pytest.fail("open_store must not yield an unreachable Redis")
    message = str(caught.value)
    assert message.startswith("redis unreachable at 127.0.0.1:1: ")
    assert "\n" not in message
    assert "hunter2secret" not in message and "hunter2secret" not in repr(logs)
    assert not (tmp_path / "state.db").exists()  # no silent fallback to SQLite


async def test_sqlite_store_creates_its_directory(tmp_path) -> None:
    data_dir = tmp_path / "a" / "b"
    async with open_store(StoreSettings(data_dir=data_dir)) as opened:
        assert opened.kind == "sqlite"
        await opened.put("k", {"v": 1})
    assert (data_dir / "state.db").is_file()


async def test_sqlite_store_in_an_unusable_directory_raises_store_error(tmp_path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(StoreError, match="data directory"):
        async with open_store(StoreSettings(data_dir=blocker / "sub")):
            pass


async def test_sqlite_purge_expired_removes_dead_rows(sqlite_store: SqliteStore) -> None:
    await sqlite_store.claim("dedup:1", SHORT)
    await sqlite_store.put("ctx:1", {"v": 1}, ttl=SHORT)
    await sqlite_store.acquire_lock("poller", "pod-a", SHORT)
    await sqlite_store.put("ctx:2", {"v": 2})
    assert await sqlite_store.purge_expired() == 0
    await asyncio.sleep(SHORT + 0.1)
    assert await sqlite_store.purge_expired() == 3
    assert await sqlite_store.get("ctx:2") == {"v": 2}


async def test_sqlite_purge_expired_forgets_outbox_ids(tmp_path) -> None:
    store = await SqliteStore.open(tmp_path / "state.db", outbox_memory=SHORT)
    try:
        await store.outbox_add("alert:1", {"text": "A"}, due_at=1.0)
        await store.outbox_done("alert:1")
        assert await store.purge_expired() == 0
        await asyncio.sleep(SHORT + 0.1)
        assert await store.purge_expired() == 1
        assert await store.outbox_add("alert:1", {"text": "B"}, due_at=1.0)
    finally:
        await store.close()


async def test_sqlite_file_from_before_the_memory_keeps_its_ids(tmp_path) -> None:
    """A state.db whose outbox_seen has no expiry column: its ids get a full memory from now."""
    path = tmp_path / "state.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE outbox_seen (id TEXT PRIMARY KEY)")
        db.execute("INSERT INTO outbox_seen (id) VALUES ('alert:old')")
    db.close()
    store = await SqliteStore.open(path, outbox_memory=SHORT)
    try:
        assert not await store.outbox_add("alert:old", {"text": "A"}, due_at=1.0)
        assert await store.outbox_add("alert:new", {"text": "B"}, due_at=1.0)
        await asyncio.sleep(SHORT + 0.1)
        assert await store.outbox_add("alert:old", {"text": "C"}, due_at=1.0)
    finally:
        await store.close()


async def test_sqlite_uses_wal(sqlite_store: SqliteStore) -> None:
    import sqlite3

    with sqlite3.connect(sqlite_store.path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


async def test_two_sqlite_stores_on_one_file_append_one_chain(tmp_path) -> None:
    """Two connections (as two processes would have) must not fork the chain or deadlock."""
    first, second = await SqliteStore.open(tmp_path / "state.db"), await SqliteStore.open(tmp_path / "state.db")
    try:
        await asyncio.gather(*(s.append_chained("audit", _chain) for _ in range(25) for s in (first, second)))
        stored = await first.read_log("audit")
    finally:
        await first.close()
        await second.close()
    assert [r["seq"] for r in stored] == list(range(1, 51))
    assert all(r["prev"] == r["seq"] - 1 for r in stored[1:])


async def test_sqlite_waits_for_another_process_holding_the_write_lock_without_blocking_the_loop(tmp_path) -> None:
    """Calls run on the event loop's own connection; one that meets another process's write lock
    must wait for it off the loop (on the worker), not fail and not freeze the loop."""
    import subprocess
    import sys

    path = tmp_path / "state.db"
    store = await SqliteStore.open(path)
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sqlite3, sys, time\n"
        f"db = sqlite3.connect({str(path)!r}, isolation_level=None)\n"
        "db.execute('BEGIN IMMEDIATE')\n"
        "db.execute(\"INSERT INTO records (key, value) VALUES ('other', '{}')\")\n"
        "print('locked', flush=True)\n"
        "time.sleep(0.8)\n"
        "db.execute('COMMIT')\n")], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        ticks: list[float] = []

        async def ticker() -> None:
            while True:
                ticks.append(time.monotonic())
                await asyncio.sleep(0.02)

        ticking = asyncio.ensure_future(ticker())
        started = time.monotonic()
        assert await store.claim("dedup:slack:Ev1", 60) is True
        await store.put("ctx:C1", {"job_id": "J1"}, ttl=60)
        waited = time.monotonic() - started
        ticking.cancel()
        assert holder.wait(5) == 0
    finally:
        holder.kill()
        await store.close()
    assert waited >= 0.3  # it did wait for the other process's commit ...
    gaps = [b - a for a, b in zip(ticks, ticks[1:])]
    assert gaps and max(gaps) < 0.3  # ... while the event loop kept running
    reopened = await SqliteStore.open(path)
    try:
        assert await reopened.claim("dedup:slack:Ev1", 60) is False
        assert await reopened.get("ctx:C1") == {"job_id": "J1"}
        assert await reopened.get("other") == {}
    finally:
        await reopened.close()


async def test_sqlite_keeps_its_wal_bounded_under_many_writes(sqlite_store: SqliteStore) -> None:
    """The loop's connection never checkpoints (it would fsync on the loop): the worker must.

    Without checkpoints 3,000 one-row commits leave a WAL of about 25 MB."""
    for n in range(3000):
        await sqlite_store.claim(f"dedup:slack:Ev{n}", 60)
        if n % 20 == 0:  # events arrive over time, not in one tight loop that never frees the lock
            await asyncio.sleep(0.002)
    await sqlite_store.ping()
    await sqlite_store._offload(lambda: None)  # the housekeeping queued so far has run
    wal = sqlite_store.path.with_name(sqlite_store.path.name + "-wal")
    assert wal.stat().st_size < 4 * 1024 * 1024
