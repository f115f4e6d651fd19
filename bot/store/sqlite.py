"""The embedded state store: one SQLite file, for a single bot process.

Where each call runs. A point read or a one-row write costs SQLite 10-40 µs, while handing it to
a thread and back costs the event loop about 130 µs of CPU (measured on the 2-core benchmark
machine): an answered ``status`` made three, 0.4 of its 2.9 ms (bench/slack.py). So short calls
run on a connection owned by the event loop, which never waits: its busy timeout is zero and it
never checkpoints the WAL (checkpoints fsync). When another process holds the write lock (a
``resync`` command on the same data folder), the call is refused at once with SQLITE_BUSY and
runs again on the worker thread's own connection, which waits up to ``BUSY_TIMEOUT``; long calls
(log reads, scans, purges, checkpoints) always run there. Both connections are in WAL mode, so a
reader never blocks a writer.

Expiring rows keep an expiry epoch and are treated as absent once it has passed; they are deleted
when met and by ``purge_expired``. Transactions are explicit (autocommit connections, ``BEGIN
IMMEDIATE``), so another connection in WAL mode cannot interleave with a claim, an append or a lock.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import structlog

from bot.errors import StoreError
from bot.store import JSON, OUTBOX_MEMORY, OutboxItem, decode

log = structlog.get_logger(__name__)

T = TypeVar("T")
Db = sqlite3.Connection

_SCHEMA = """
CREATE TABLE IF NOT EXISTS claims (key TEXT PRIMARY KEY, expires_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS records (key TEXT PRIMARY KEY, value TEXT NOT NULL, expires_at REAL);
CREATE TABLE IF NOT EXISTS logs (
    pos INTEGER PRIMARY KEY AUTOINCREMENT, log TEXT NOT NULL, record TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS logs_by_log ON logs (log, pos);
CREATE TABLE IF NOT EXISTS outbox (
    id TEXT PRIMARY KEY, payload TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,
    due_at REAL NOT NULL, last_error TEXT);
CREATE INDEX IF NOT EXISTS outbox_by_due ON outbox (due_at, id);
CREATE TABLE IF NOT EXISTS outbox_seen (id TEXT PRIMARY KEY, expires_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS locks (name TEXT PRIMARY KEY, owner TEXT NOT NULL, expires_at REAL NOT NULL);
"""

BUSY_TIMEOUT = 10.0  # seconds the worker thread waits for another process's write lock
# Every so many writes the worker checkpoints the WAL (the loop's connection never does; SQLite's
# own default, 1,000 pages, is about 300 one-row writes), and sweeps expired rows nobody reads again.
_CHECKPOINT_EVERY = 250
_PURGE_EVERY = 1000


class SqliteStore:
    """``Store`` on one SQLite file; open it with ``await SqliteStore.open(path)``."""

    kind = "sqlite"

    def __init__(self, path: Path, *, outbox_memory: float = OUTBOX_MEMORY) -> None:
        self.path = path
        self.outbox_memory = outbox_memory
        self._executor: ThreadPoolExecutor | None = ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="resync-sqlite")
        self._worker_db: Db | None = None  # used on the worker thread only
        self._loop_db: Db | None = None  # used on the event loop's thread only
        self._writes = 0
        self._housekeeping_queued: Future[None] | None = None

    @classmethod
    async def open(cls, path: Path, *, outbox_memory: float = OUTBOX_MEMORY) -> SqliteStore:
        store = cls(path, outbox_memory=outbox_memory)
        try:
            store._worker_db = await store._offload(store._connect)
            store._loop_db = _connection(path, timeout=0.0)
            store._loop_db.execute("PRAGMA wal_autocheckpoint=0")
        except (StoreError, sqlite3.Error) as exc:
            await store.close()
            raise exc if isinstance(exc, StoreError) else StoreError(f"sqlite store {path} failed: {exc}") from exc
        log.info("store_opened", kind="sqlite", path=str(path))
        return store

    # --- plumbing -------------------------------------------------------------------------
    def _connect(self) -> Db:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot create the data directory {self.path.parent}: {exc.strerror}") from exc
        db = _connection(self.path, timeout=BUSY_TIMEOUT)
        try:
            db.executescript(_SCHEMA)
            _migrate_outbox_seen(db, time.time() + self.outbox_memory)
        except sqlite3.Error:
            db.close()
            raise
        return db

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(db, *args)`` on the loop's connection; on the worker's when another process writes."""
        db = self._loop_db
        if db is None:
            raise StoreError("the sqlite store is closed")
        try:
            return fn(db, *args)
        except sqlite3.OperationalError as exc:
            if not _busy(exc):
                raise StoreError(f"sqlite store {self.path} failed: {exc}") from exc
        except sqlite3.Error as exc:
            raise StoreError(f"sqlite store {self.path} failed: {exc}") from exc
        return await self._on_worker(fn, *args)

    async def _on_worker(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(db, *args)`` on the worker thread's connection, which waits for locks."""
        return await self._offload(lambda: fn(self._worker_conn, *args))

    async def _offload(self, fn: Callable[[], T]) -> T:
        if self._executor is None:
            raise StoreError("the sqlite store is closed")
        try:
            return await asyncio.get_running_loop().run_in_executor(self._executor, fn)
        except sqlite3.Error as exc:
            raise StoreError(f"sqlite store {self.path} failed: {exc}") from exc

    @property
    def _worker_conn(self) -> Db:
        if self._worker_db is None:
            raise StoreError("the sqlite store is closed")
        return self._worker_db

    def _wrote(self) -> None:
        self._writes += 1
        if self._writes % _CHECKPOINT_EVERY or self._executor is None:
            return
        queued = self._housekeeping_queued
        if queued is None or queued.done():  # one at a time: a burst of writes queues one, not many
            self._housekeeping_queued = self._executor.submit(self._housekeeping, purge=self._writes >= _PURGE_EVERY)
            if self._writes >= _PURGE_EVERY:
                self._writes = 0

    def _housekeeping(self, *, purge: bool) -> None:
        """On the worker: the WAL checkpointed, expired rows out. Nobody awaits it, so it logs."""
        db = self._worker_db
        if db is None:  # closed meanwhile
            return
        try:
            if purge:
                _purge(db, time.time())
            # RESTART, not PASSIVE: a passive checkpoint racing the loop's writes never catches up,
            # so the WAL would never start over; this one holds the write lock for its few ms
            # (the loop's writes meanwhile fall back to this thread) and then rewinds the WAL.
            db.execute("PRAGMA wal_checkpoint(RESTART)").fetchall()
        except sqlite3.Error as exc:
            log.warning("store_housekeeping_failed", kind="sqlite", error=str(exc))

    # --- lifecycle ------------------------------------------------------------------------
    async def ping(self) -> None:
        await self._run(lambda db: db.execute("SELECT 1").fetchone())

    async def close(self) -> None:
        if self._loop_db is not None:
            self._loop_db.close()
            self._loop_db = None
        if self._executor is None:
            return
        if self._worker_db is not None:
            worker_db, self._worker_db = self._worker_db, None
            await self._offload(worker_db.close)
        self._executor.shutdown(wait=True)
        self._executor = None

    async def purge_expired(self) -> int:
        """Delete every expired claim, record, lock and outbox memory; returns how many rows went."""
        return await self._on_worker(_purge, time.time())

    # --- claims ---------------------------------------------------------------------------
    async def claim(self, key: str, ttl: float) -> bool:
        won = await self._run(_claim, key, ttl)
        self._wrote()
        return won

    # --- records --------------------------------------------------------------------------
    async def put(self, key: str, value: JSON, ttl: float | None = None) -> None:
        text = json.dumps(value, separators=(",", ":"))
        await self._run(_put, key, text, ttl)
        self._wrote()

    async def get(self, key: str) -> JSON | None:
        text = await self._run(_get, key)
        return None if text is None else decode(text, key, "sqlite")

    async def delete(self, key: str) -> None:
        await self._run(lambda db: db.execute("DELETE FROM records WHERE key = ?", (key,)))

    async def scan(self, prefix: str) -> list[tuple[str, JSON]]:
        rows = await self._on_worker(_scan, prefix)
        return [(key, decode(text, key, "sqlite")) for key, text in rows]

    # --- chained log ----------------------------------------------------------------------
    async def append_chained(self, log: str, build: Callable[[JSON | None], JSON]) -> JSON:
        return await self._run(_append_chained, log, build)

    async def read_log(self, log: str, *, last: int | None = None) -> list[JSON]:
        rows = await self._on_worker(_read_log, log, last)
        return [decode(text, log, "sqlite") for text in rows]

    async def read_log_text(self, log: str) -> list[str]:
        return await self._on_worker(_read_log, log, None)

    # --- outbox ---------------------------------------------------------------------------
    async def outbox_add(self, item_id: str, payload: JSON, due_at: float) -> bool:
        added = await self._run(partial(_outbox_add, memory=self.outbox_memory), item_id,
                                json.dumps(payload, separators=(",", ":")), due_at)
        if added:
            self._wrote()
        return added

    async def outbox_due(self, now: float, limit: int = 50) -> list[OutboxItem]:
        rows = await self._on_worker(lambda db: db.execute(
            "SELECT id, payload, attempts, due_at, last_error FROM outbox WHERE due_at <= ?"
            " ORDER BY due_at, id LIMIT ?", (now, limit)).fetchall())
        return [OutboxItem(id=r[0], payload=decode(r[1], r[0], "sqlite"), attempts=r[2], due_at=r[3], last_error=r[4])
                for r in rows]

    async def outbox_done(self, item_id: str) -> None:
        await self._run(lambda db: db.execute("DELETE FROM outbox WHERE id = ?", (item_id,)))

    async def outbox_retry(self, item_id: str, due_at: float, error: str) -> None:
        await self._run(lambda db: db.execute(
            "UPDATE outbox SET attempts = attempts + 1, due_at = ?, last_error = ? WHERE id = ?",
            (due_at, error, item_id)))

    async def outbox_pending(self) -> int:
        return await self._run(lambda db: db.execute("SELECT count(*) FROM outbox").fetchone()[0])

    # --- leader lock ----------------------------------------------------------------------
    async def acquire_lock(self, name: str, owner: str, ttl: float) -> bool:
        return await self._run(_acquire_lock, name, owner, ttl)

    async def release_lock(self, name: str, owner: str) -> None:
        await self._run(lambda db: db.execute("DELETE FROM locks WHERE name = ? AND owner = ?", (name, owner)))


# --- the statements, each given the connection of the thread it runs on ---------------------

def _connection(path: Path, *, timeout: float) -> Db:
    # check_same_thread off: each connection is used by one thread at a time by construction,
    # and the loop's may be opened by one event loop's thread and used by the next (tests, CLI).
    db = sqlite3.connect(path, isolation_level=None, timeout=timeout, check_same_thread=False)
    try:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
    except sqlite3.Error:
        db.close()
        raise
    return db


def _busy(exc: sqlite3.OperationalError) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
    return "locked" in str(exc) or "busy" in str(exc)


@contextmanager
def _transaction(db: Db) -> Iterator[Db]:
    """BEGIN IMMEDIATE takes the write lock up front: read-then-write cannot race."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield db
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


def _purge(db: Db, now: float) -> int:
    gone = db.execute("DELETE FROM claims WHERE expires_at <= ?", (now,)).rowcount
    gone += db.execute("DELETE FROM records WHERE expires_at <= ?", (now,)).rowcount
    gone += db.execute("DELETE FROM locks WHERE expires_at <= ?", (now,)).rowcount
    gone += db.execute("DELETE FROM outbox_seen WHERE expires_at <= ?", (now,)).rowcount
    if gone:
        log.debug("store_purged", rows=gone)
    return gone


def _claim(db: Db, key: str, ttl: float) -> bool:
    now = time.time()
    # The upsert only overwrites an expired claim, so rowcount says who won, atomically.
    cursor = db.execute(
        "INSERT INTO claims (key, expires_at) VALUES (?, ?) ON CONFLICT (key) DO UPDATE"
        " SET expires_at = excluded.expires_at WHERE claims.expires_at <= ?",
        (key, now + ttl, now))
    return cursor.rowcount == 1


def _put(db: Db, key: str, text: str, ttl: float | None) -> None:
    expires_at = None if ttl is None else time.time() + ttl
    db.execute(
        "INSERT INTO records (key, value, expires_at) VALUES (?, ?, ?) ON CONFLICT (key) DO UPDATE"
        " SET value = excluded.value, expires_at = excluded.expires_at",
        (key, text, expires_at))


def _get(db: Db, key: str) -> str | None:
    row = db.execute("SELECT value, expires_at FROM records WHERE key = ?", (key,)).fetchone()
    if row is None:
        return None
    if row[1] is not None and row[1] <= time.time():
        db.execute("DELETE FROM records WHERE key = ? AND expires_at <= ?", (key, time.time()))
        return None
    return row[0]


def _scan(db: Db, prefix: str) -> list[tuple[str, str]]:
    # substr, not LIKE: LIKE ignores ASCII case and treats % and _ as wildcards.
    return db.execute(
        "SELECT key, value FROM records WHERE key >= ? AND substr(key, 1, ?) = ?"
        " AND (expires_at IS NULL OR expires_at > ?) ORDER BY key",
        (prefix, len(prefix), prefix, time.time())).fetchall()


def _append_chained(db: Db, log_name: str, build: Callable[[JSON | None], JSON]) -> JSON:
    with _transaction(db):
        row = db.execute("SELECT record FROM logs WHERE log = ? ORDER BY pos DESC LIMIT 1", (log_name,)).fetchone()
        record = build(None if row is None else decode(row[0], log_name, "sqlite"))
        db.execute("INSERT INTO logs (log, record) VALUES (?, ?)", (log_name, json.dumps(record, separators=(",", ":"))))
    return record


def _read_log(db: Db, log_name: str, last: int | None) -> list[str]:
    if last is None:
        return [r[0] for r in db.execute("SELECT record FROM logs WHERE log = ? ORDER BY pos", (log_name,))]
    rows = db.execute("SELECT record FROM logs WHERE log = ? ORDER BY pos DESC LIMIT ?",
                      (log_name, max(last, 0))).fetchall()
    return [r[0] for r in reversed(rows)]


def _outbox_add(db: Db, item_id: str, text: str, due_at: float, *, memory: float) -> bool:
    now = time.time()
    with _transaction(db):
        # An item can outlive its memory (retried for weeks): it is still queued, so not new.
        if db.execute("SELECT 1 FROM outbox WHERE id = ?", (item_id,)).fetchone() is not None:
            return False
        # outbox_seen outlives the item: an alert sent yesterday is not queued again. As with
        # claims, the upsert only overwrites an expired memory, so rowcount says who won.
        seen = db.execute(
            "INSERT INTO outbox_seen (id, expires_at) VALUES (?, ?) ON CONFLICT (id) DO UPDATE"
            " SET expires_at = excluded.expires_at WHERE outbox_seen.expires_at <= ?",
            (item_id, now + memory, now))
        if seen.rowcount == 0:
            return False
        db.execute("INSERT INTO outbox (id, payload, due_at) VALUES (?, ?, ?)", (item_id, text, due_at))
    return True


def _acquire_lock(db: Db, name: str, owner: str, ttl: float) -> bool:
    now = time.time()
    cursor = db.execute(
        "INSERT INTO locks (name, owner, expires_at) VALUES (?, ?, ?) ON CONFLICT (name) DO UPDATE"
        " SET owner = excluded.owner, expires_at = excluded.expires_at"
        " WHERE locks.owner = excluded.owner OR locks.expires_at <= ?",
        (name, owner, now + ttl, now))
    return cursor.rowcount == 1


def _migrate_outbox_seen(db: Db, expires_at: float) -> None:
    """Files from before OUTBOX_MEMORY remembered ids forever: give those ids a full memory from now."""
    # BEGIN IMMEDIATE: a second process opening the same file must not add the column twice.
    with _transaction(db):
        columns = {row[1] for row in db.execute("PRAGMA table_info(outbox_seen)")}
        if "expires_at" not in columns:
            db.execute("ALTER TABLE outbox_seen ADD COLUMN expires_at REAL")
            db.execute("UPDATE outbox_seen SET expires_at = ? WHERE expires_at IS NULL", (expires_at,))
