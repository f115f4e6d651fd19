"""The embedded state store: one SQLite file, for a single bot process.

sqlite3 is blocking, so every call runs on one private worker thread: the connection never
changes threads and calls are serialised without a lock. Expiring rows keep an expiry epoch and
are treated as absent once it has passed; they are deleted when met and by ``purge_expired``.
Transactions are explicit (autocommit connection, ``BEGIN IMMEDIATE``), so another process
opening the same file in WAL mode cannot interleave with a claim, an append or a lock.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import structlog

from bot.errors import StoreError
from bot.store import JSON, OUTBOX_MEMORY, OutboxItem, decode

log = structlog.get_logger(__name__)

T = TypeVar("T")

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

# Expired rows nobody reads again would otherwise stay forever: sweep every so many writes.
_PURGE_EVERY = 1000


class SqliteStore:
    """``Store`` on one SQLite file; open it with ``await SqliteStore.open(path)``."""

    kind = "sqlite"

    def __init__(self, path: Path, *, outbox_memory: float = OUTBOX_MEMORY) -> None:
        self.path = path
        self.outbox_memory = outbox_memory
        self._executor: ThreadPoolExecutor | None = ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="resync-sqlite")
        self._db: sqlite3.Connection | None = None
        self._writes = 0

    @classmethod
    async def open(cls, path: Path, *, outbox_memory: float = OUTBOX_MEMORY) -> SqliteStore:
        store = cls(path, outbox_memory=outbox_memory)
        try:
            await store._run(store._connect)
        except StoreError:
            await store.close()
            raise
        log.info("store_opened", kind="sqlite", path=str(path))
        return store

    # --- plumbing -------------------------------------------------------------------------
    def _connect(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot create the data directory {self.path.parent}: {exc.strerror}") from exc
        db = sqlite3.connect(self.path, isolation_level=None, timeout=10.0)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.executescript(_SCHEMA)
            _migrate_outbox_seen(db, time.time() + self.outbox_memory)
        except sqlite3.Error:
            db.close()
            raise
        self._db = db

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        if self._executor is None:
            raise StoreError("the sqlite store is closed")
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._executor, partial(fn, *args))
        except sqlite3.Error as exc:
            raise StoreError(f"sqlite store {self.path} failed: {exc}") from exc

    @property
    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            raise StoreError("the sqlite store is closed")
        return self._db

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE takes the write lock up front: read-then-write cannot race."""
        db = self._conn
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    def _wrote(self) -> None:
        self._writes += 1
        if self._writes % _PURGE_EVERY == 0:
            self._purge(time.time())

    # --- lifecycle ------------------------------------------------------------------------
    async def ping(self) -> None:
        await self._run(lambda: self._conn.execute("SELECT 1").fetchone())

    async def close(self) -> None:
        if self._executor is None:
            return
        if self._db is not None:
            await self._run(self._db.close)
            self._db = None
        self._executor.shutdown(wait=True)
        self._executor = None

    async def purge_expired(self) -> int:
        """Delete every expired claim, record, lock and outbox memory; returns how many rows went."""
        return await self._run(self._purge, time.time())

    def _purge(self, now: float) -> int:
        db = self._conn
        gone = db.execute("DELETE FROM claims WHERE expires_at <= ?", (now,)).rowcount
        gone += db.execute("DELETE FROM records WHERE expires_at <= ?", (now,)).rowcount
        gone += db.execute("DELETE FROM locks WHERE expires_at <= ?", (now,)).rowcount
        gone += db.execute("DELETE FROM outbox_seen WHERE expires_at <= ?", (now,)).rowcount
        if gone:
            log.debug("store_purged", rows=gone)
        return gone

    # --- claims ---------------------------------------------------------------------------
    async def claim(self, key: str, ttl: float) -> bool:
        return await self._run(self._claim, key, ttl)

    def _claim(self, key: str, ttl: float) -> bool:
        now = time.time()
        # The upsert only overwrites an expired claim, so rowcount says who won, atomically.
        cursor = self._conn.execute(
            "INSERT INTO claims (key, expires_at) VALUES (?, ?) ON CONFLICT (key) DO UPDATE"
            " SET expires_at = excluded.expires_at WHERE claims.expires_at <= ?",
            (key, now + ttl, now))
        self._wrote()
        return cursor.rowcount == 1

    # --- records --------------------------------------------------------------------------
    async def put(self, key: str, value: JSON, ttl: float | None = None) -> None:
        text = json.dumps(value, separators=(",", ":"))
        await self._run(self._put, key, text, ttl)

    def _put(self, key: str, text: str, ttl: float | None) -> None:
        expires_at = None if ttl is None else time.time() + ttl
        self._conn.execute(
            "INSERT INTO records (key, value, expires_at) VALUES (?, ?, ?) ON CONFLICT (key) DO UPDATE"
            " SET value = excluded.value, expires_at = excluded.expires_at",
            (key, text, expires_at))
        self._wrote()

    async def get(self, key: str) -> JSON | None:
        text = await self._run(self._get, key)
        return None if text is None else decode(text, key, "sqlite")

    def _get(self, key: str) -> str | None:
        row = self._conn.execute("SELECT value, expires_at FROM records WHERE key = ?", (key,)).fetchone()
        if row is None:
            return None
        if row[1] is not None and row[1] <= time.time():
            self._conn.execute("DELETE FROM records WHERE key = ? AND expires_at <= ?", (key, time.time()))
            return None
        return row[0]

    async def delete(self, key: str) -> None:
        await self._run(lambda: self._conn.execute("DELETE FROM records WHERE key = ?", (key,)))

    async def scan(self, prefix: str) -> list[tuple[str, JSON]]:
        rows = await self._run(self._scan, prefix)
        return [(key, decode(text, key, "sqlite")) for key, text in rows]

    def _scan(self, prefix: str) -> list[tuple[str, str]]:
        # substr, not LIKE: LIKE ignores ASCII case and treats % and _ as wildcards.
        return self._conn.execute(
            "SELECT key, value FROM records WHERE key >= ? AND substr(key, 1, ?) = ?"
            " AND (expires_at IS NULL OR expires_at > ?) ORDER BY key",
            (prefix, len(prefix), prefix, time.time())).fetchall()

    # --- chained log ----------------------------------------------------------------------
    async def append_chained(self, log: str, build: Callable[[JSON | None], JSON]) -> JSON:
        return await self._run(self._append_chained, log, build)

    def _append_chained(self, log_name: str, build: Callable[[JSON | None], JSON]) -> JSON:
        with self._transaction() as db:
            row = db.execute("SELECT record FROM logs WHERE log = ? ORDER BY pos DESC LIMIT 1",
                             (log_name,)).fetchone()
            record = build(None if row is None else decode(row[0], log_name, "sqlite"))
            db.execute("INSERT INTO logs (log, record) VALUES (?, ?)",
                       (log_name, json.dumps(record, separators=(",", ":"))))
        return record

    async def read_log(self, log: str, *, last: int | None = None) -> list[JSON]:
        rows = await self._run(self._read_log, log, last)
        return [decode(text, log, "sqlite") for text in rows]

    async def read_log_text(self, log: str) -> list[str]:
        return await self._run(self._read_log, log, None)

    def _read_log(self, log_name: str, last: int | None) -> list[str]:
        if last is None:
            rows = self._conn.execute("SELECT record FROM logs WHERE log = ? ORDER BY pos", (log_name,))
            return [r[0] for r in rows]
        rows = self._conn.execute("SELECT record FROM logs WHERE log = ? ORDER BY pos DESC LIMIT ?",
                                  (log_name, max(last, 0))).fetchall()
        return [r[0] for r in reversed(rows)]

    # --- outbox ---------------------------------------------------------------------------
    async def outbox_add(self, item_id: str, payload: JSON, due_at: float) -> bool:
        return await self._run(self._outbox_add, item_id, json.dumps(payload, separators=(",", ":")), due_at)

    def _outbox_add(self, item_id: str, text: str, due_at: float) -> bool:
        now = time.time()
        with self._transaction() as db:
            # An item can outlive its memory (retried for weeks): it is still queued, so not new.
            if db.execute("SELECT 1 FROM outbox WHERE id = ?", (item_id,)).fetchone() is not None:
                return False
            # outbox_seen outlives the item: an alert sent yesterday is not queued again. As with
            # claims, the upsert only overwrites an expired memory, so rowcount says who won.
            seen = db.execute(
                "INSERT INTO outbox_seen (id, expires_at) VALUES (?, ?) ON CONFLICT (id) DO UPDATE"
                " SET expires_at = excluded.expires_at WHERE outbox_seen.expires_at <= ?",
                (item_id, now + self.outbox_memory, now))
            if seen.rowcount == 0:
                return False
            db.execute("INSERT INTO outbox (id, payload, due_at) VALUES (?, ?, ?)", (item_id, text, due_at))
        self._wrote()
        return True

    async def outbox_due(self, now: float, limit: int = 50) -> list[OutboxItem]:
        rows = await self._run(lambda: self._conn.execute(
            "SELECT id, payload, attempts, due_at, last_error FROM outbox WHERE due_at <= ?"
            " ORDER BY due_at, id LIMIT ?", (now, limit)).fetchall())
        return [OutboxItem(id=r[0], payload=decode(r[1], r[0], "sqlite"), attempts=r[2], due_at=r[3], last_error=r[4])
                for r in rows]

    async def outbox_done(self, item_id: str) -> None:
        await self._run(lambda: self._conn.execute("DELETE FROM outbox WHERE id = ?", (item_id,)))

    async def outbox_retry(self, item_id: str, due_at: float, error: str) -> None:
        await self._run(lambda: self._conn.execute(
            "UPDATE outbox SET attempts = attempts + 1, due_at = ?, last_error = ? WHERE id = ?",
            (due_at, error, item_id)))

    async def outbox_pending(self) -> int:
        return await self._run(lambda: self._conn.execute("SELECT count(*) FROM outbox").fetchone()[0])

    # --- leader lock ----------------------------------------------------------------------
    async def acquire_lock(self, name: str, owner: str, ttl: float) -> bool:
        return await self._run(self._acquire_lock, name, owner, ttl)

    def _acquire_lock(self, name: str, owner: str, ttl: float) -> bool:
        now = time.time()
        cursor = self._conn.execute(
            "INSERT INTO locks (name, owner, expires_at) VALUES (?, ?, ?) ON CONFLICT (name) DO UPDATE"
            " SET owner = excluded.owner, expires_at = excluded.expires_at"
            " WHERE locks.owner = excluded.owner OR locks.expires_at <= ?",
            (name, owner, now + ttl, now))
        return cursor.rowcount == 1

    async def release_lock(self, name: str, owner: str) -> None:
        await self._run(lambda: self._conn.execute("DELETE FROM locks WHERE name = ? AND owner = ?", (name, owner)))


def _migrate_outbox_seen(db: sqlite3.Connection, expires_at: float) -> None:
    """Files from before OUTBOX_MEMORY remembered ids forever: give those ids a full memory from now."""
    # BEGIN IMMEDIATE: a second process opening the same file must not add the column twice.
    db.execute("BEGIN IMMEDIATE")
    try:
        columns = {row[1] for row in db.execute("PRAGMA table_info(outbox_seen)")}
        if "expires_at" not in columns:
            db.execute("ALTER TABLE outbox_seen ADD COLUMN expires_at REAL")
            db.execute("UPDATE outbox_seen SET expires_at = ? WHERE expires_at IS NULL", (expires_at,))
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")
