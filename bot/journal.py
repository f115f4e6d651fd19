"""The action journal: a write-ahead record, on local disk, of every confirmed job action.

Why: once TWS has been asked to rerun, hold, release or cancel a job, what happened must never
depend on the state store still answering. Before the request goes out, the journal records that
it will (``asked``); when TWS answers, it records the outcome (``answered``); every audit record of
the action is queued here first. Each write is one SQLite transaction with ``synchronous=FULL``
(fsynced), so a store outage, or ``kill -9`` of this process, loses none of it:

* a second press of Confirm on this replica is answered from the journal, without the store:
  the action never runs twice and the user is told what is known;
* ``replay`` writes the queued audit records (with their original time) and the ``done:`` record
  into the store once it answers again, and drops the pending confirmation; it runs on a short
  interval (``keep_replaying``) and after every action;
* an action still ``asked`` by a process that is gone (killed while TWS was being asked) is closed
  as ``unknown``: TWS may or may not have acted, and nobody is told otherwise.

Replicas share the idempotency claim through the store (``idem:<id>``); the journal is each
replica's own (``<RESYNC_DATA_DIR>/journal.db``). Audit records are replayed in the order they were
queued; each carries ``details.ref`` so a replay that was cut off after the store took a record
does not append it twice.

Stages of an entry: ``claimed`` (local claim taken, TWS not asked yet) -> ``asked`` -> ``answered``;
``synced`` once the store holds the outcome.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import sqlite3
import time
import uuid
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import structlog

from bot import audit
from bot.errors import StoreError
from bot.store import Store

log = structlog.get_logger(__name__)

_DONE_TTL = 7 * 24 * 3600.0
# An entry "asked" by a process on another host is presumed dead after this long (TWS requests are
# bounded by TWS_TIMEOUT, seconds); on this host a dead owner is recognised by its pid at once.
_FOREIGN_ABANDONED_AFTER = 15 * 60.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS actions (
    id TEXT PRIMARY KEY, stage TEXT NOT NULL, owner TEXT NOT NULL, lang TEXT NOT NULL,
    job TEXT NOT NULL, tool TEXT NOT NULL, outcome TEXT, synced INTEGER NOT NULL DEFAULT 0,
    created REAL NOT NULL, updated REAL NOT NULL, audit_base TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS audit_queue (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, ref TEXT NOT NULL UNIQUE, entry TEXT NOT NULL, ts TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0
);
"""


@dataclass(frozen=True, slots=True, kw_only=True)
class JournalEntry:
    id: str  # the confirmation id
    stage: str  # "claimed", "asked", "answered"
    owner: str  # host:pid of the process that took the claim
    lang: str
    job: str
    tool: str
    outcome: str | None  # "ok", "refused: ...", "unknown", "error: ..."
    synced: bool  # the store holds the outcome (done:<id>) and the audit records
    updated: float


def this_process() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class ActionJournal:
    """The journal file; every method is a short synchronous transaction on local disk."""

    def __init__(self, db: sqlite3.Connection, *, where: str, owner: str | None = None,
                 clock: Any = time.time) -> None:
        self._db = db
        self.where = where
        self.owner = owner or this_process()
        self._clock = clock
        self._inflight: set[str] = set()  # asked by this process and not answered yet
        self._replaying = asyncio.Lock()

    @classmethod
    def open(cls, path: Path | None, *, owner: str | None = None) -> ActionJournal:
        """``path`` None: in memory (tests and one-shot commands; not durable)."""
        where = ":memory:" if path is None else str(path)
        try:
            if path is not None:
                path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(where, isolation_level=None, timeout=10, check_same_thread=False)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")  # fsync every commit: the point of a journal
            db.executescript(_SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"cannot open the action journal {where}: {exc}") from exc
        return cls(db, where=where, owner=owner)

    def close(self) -> None:
        self._db.close()

    # --- the action path ------------------------------------------------------------------------
    def get(self, action_id: str) -> JournalEntry | None:
        row = self._db.execute("SELECT id, stage, owner, lang, job, tool, outcome, synced, updated FROM actions "
                               "WHERE id = ?", (action_id,)).fetchone()
        if row is None:
            return None
        return JournalEntry(id=row[0], stage=row[1], owner=row[2], lang=row[3], job=row[4], tool=row[5],
                            outcome=row[6], synced=bool(row[7]), updated=row[8])

    def claim(self, action_id: str, *, lang: str, job: str, tool: str, audit_base: dict[str, Any]) -> bool:
        """Take the local claim; False when this journal already knows the action."""
        now = self._clock()
        cursor = self._db.execute(
            "INSERT OR IGNORE INTO actions (id, stage, owner, lang, job, tool, created, updated, audit_base) "
            "VALUES (?, 'claimed', ?, ?, ?, ?, ?, ?, ?)",
            (action_id, self.owner, lang, job, tool, now, now, json.dumps(audit_base)))
        return cursor.rowcount == 1

    def release(self, action_id: str) -> None:
        """Drop a claim that never reached TWS (the store refused it): a later try starts afresh."""
        self._db.execute("DELETE FROM actions WHERE id = ? AND stage = 'claimed'", (action_id,))

    def asking(self, action_id: str) -> None:
        """Written (and fsynced) before the request goes to TWS."""
        self._inflight.add(action_id)
        self._db.execute("UPDATE actions SET stage = 'asked', updated = ? WHERE id = ?", (self._clock(), action_id))

    def answered(self, action_id: str, outcome: str) -> None:
        self._db.execute("UPDATE actions SET stage = 'answered', outcome = ?, updated = ? WHERE id = ?",
                         (outcome, self._clock(), action_id))
        self._inflight.discard(action_id)

    def queue_audit(self, entry: audit.AuditEntry, *, at: datetime) -> None:
        ref = uuid.uuid4().hex
        details = {**(entry.details or {}), "ref": ref}
        body = json.dumps({**asdict(entry), "details": details}, default=str)
        self._db.execute("INSERT INTO audit_queue (ref, entry, ts) VALUES (?, ?, ?)", (ref, body, at.isoformat()))

    def backlog(self) -> int:
        """Audit records and outcomes not in the store yet."""
        (queued,) = self._db.execute("SELECT COUNT(*) FROM audit_queue").fetchone()
        (unsynced,) = self._db.execute("SELECT COUNT(*) FROM actions WHERE synced = 0 AND stage != 'claimed'"
                                       ).fetchone()
        return int(queued) + int(unsynced)

    def needs_replay(self) -> bool:
        asked = self._db.execute("SELECT 1 FROM actions WHERE stage = 'asked' LIMIT 1").fetchone()
        return bool(asked) or self.backlog() > 0

    # --- replay ---------------------------------------------------------------------------------
    async def replay(self, store: Store) -> int:
        """Write what the store lacks; stop at the first store failure (order is kept). How many went."""
        async with self._replaying:
            self._close_abandoned()
            written = 0
            try:
                written += await self._replay_audit(store)
                written += await self._replay_outcomes(store)
            except StoreError as exc:
                log.warning("journal_replay_deferred", error=str(exc), backlog=self.backlog())
            else:
                if written:
                    log.info("journal_replayed", written=written)
            return written

    async def _replay_audit(self, store: Store) -> int:
        written = 0
        rows = self._db.execute("SELECT seq, ref, entry, ts, attempts FROM audit_queue ORDER BY seq").fetchall()
        for seq, ref, body, ts, attempts in rows:
            self._db.execute("UPDATE audit_queue SET attempts = attempts + 1 WHERE seq = ?", (seq,))
            if attempts and await _already_logged(store, ref):
                self._db.execute("DELETE FROM audit_queue WHERE seq = ?", (seq,))
                continue
            await audit.append(store, audit.AuditEntry(**json.loads(body)), now=datetime.fromisoformat(ts))
            self._db.execute("DELETE FROM audit_queue WHERE seq = ?", (seq,))
            written += 1
        return written

    async def _replay_outcomes(self, store: Store) -> int:
        rows = self._db.execute("SELECT id, lang, outcome FROM actions WHERE synced = 0 AND stage = 'answered'"
                                ).fetchall()
        for action_id, lang, outcome in rows:
            await store.put(f"done:{action_id}", {"lang": lang, "outcome": outcome}, ttl=_DONE_TTL)
            await store.delete(f"confirm:{action_id}")
            self._db.execute("UPDATE actions SET synced = 1 WHERE id = ?", (action_id,))
        # The store remembers a synced outcome as long as the journal needs to (done:<id>, same TTL).
        self._db.execute("DELETE FROM actions WHERE synced = 1 AND updated < ?", (self._clock() - _DONE_TTL,))
        return len(rows)

    def _close_abandoned(self) -> None:
        """An action asked by a process that died before TWS answered: its outcome is unknown."""
        rows = self._db.execute("SELECT id, owner, updated, audit_base, tool, job FROM actions WHERE stage = 'asked'"
                                ).fetchall()
        for action_id, owner, updated, base, tool, job in rows:
            if not self._abandoned(action_id, owner, updated):
                continue
            outcome = "unknown: the bot stopped while TWS was being asked"
            fields = json.loads(base)
            self.queue_audit(audit.AuditEntry(action="outcome", tool=tool, target=job, result=outcome, **fields),
                             at=datetime.fromtimestamp(self._clock()).astimezone())
            self._db.execute("UPDATE actions SET stage = 'answered', outcome = ?, updated = ? WHERE id = ?",
                             (outcome, self._clock(), action_id))
            log.warning("journal_action_abandoned", action=action_id, owner=owner, job=job)

    def _abandoned(self, action_id: str, owner: str, updated: float) -> bool:
        if owner == self.owner:
            return action_id not in self._inflight
        host, _, pid = owner.rpartition(":")
        if host == socket.gethostname() and pid.isdigit():
            return not _alive(int(pid))
        return self._clock() - updated > _FOREIGN_ABANDONED_AFTER


async def keep_replaying(journal: ActionJournal, store: Store, *, interval: float = 5.0) -> None:
    """Replay now (the store may hold less than the journal after a restart), then every ``interval``."""
    while True:
        try:
            if journal.needs_replay():
                await journal.replay(store)
        except Exception:  # the catch-all of this scheduled entry point: log, try again next time
            log.exception("journal_replay_failed")
        await asyncio.sleep(interval)


async def _already_logged(store: Store, ref: str) -> bool:
    """Did an earlier, interrupted replay get this record into the store after all?"""
    return any((r.get("details") or {}).get("ref") == ref for r in await audit.tail(store, 200))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
