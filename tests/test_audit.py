"""The audit chain on both real stores, tampered with directly in the backend."""

from __future__ import annotations

import asyncio
import hashlib
import json
import sqlite3
from datetime import UTC, datetime, timedelta, timezone

import pytest
from redis.asyncio import Redis
from structlog.testing import capture_logs

from bot import audit
from bot.audit import GENESIS, AuditEntry, Problem
from bot.errors import StoreError
from bot.store import JSON, Store

from .conftest import StoreBackend

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def _entry(n: int) -> AuditEntry:
    return AuditEntry(actor=f"slack:U{n} (ana)", action="request", tool="rerun_job",
                      target=f"CPU1#PAYROLL_DAILY.EXTRACT{n:02d}", where="slack:T1:C123",
                      why="client asked", details={"n": n})


async def _fill(store: Store, count: int = 5) -> list[JSON]:
    return [await audit.append(store, _entry(n), now=T0 + timedelta(seconds=n)) for n in range(1, count + 1)]


# --- tampering, straight in the backend -----------------------------------------------------
# A chained log is a list of JSON texts in both backends: read it raw, change it, write it back.

async def _raw(backend: StoreBackend, redis_url: str) -> list[str]:
    if backend.kind == "sqlite":
        with sqlite3.connect(backend.sqlite_path) as db:
            return [r[0] for r in db.execute("SELECT record FROM logs WHERE log = 'audit' ORDER BY pos")]
    client = Redis.from_url(redis_url, decode_responses=True)
    try:
        return await client.lrange(f"{backend.namespace}log:audit", 0, -1)
    finally:
        await client.aclose()


async def _rewrite(backend: StoreBackend, redis_url: str, texts: list[str]) -> None:
    if backend.kind == "sqlite":
        with sqlite3.connect(backend.sqlite_path) as db:
            db.execute("DELETE FROM logs WHERE log = 'audit'")
            db.executemany("INSERT INTO logs (log, record) VALUES ('audit', ?)", [(t,) for t in texts])
        return
    client = Redis.from_url(redis_url, decode_responses=True)
    key = f"{backend.namespace}log:audit"
    try:
        async with client.pipeline(transaction=True) as pipe:
            pipe.delete(key).rpush(key, *texts)
            await pipe.execute()
    finally:
        await client.aclose()


async def _edit_in_place(backend: StoreBackend, redis_url: str, index: int, text: str) -> None:
    """Change one stored record without touching its neighbours (UPDATE / LSET)."""
    if backend.kind == "sqlite":
        with sqlite3.connect(backend.sqlite_path) as db:
            (pos,) = db.execute("SELECT pos FROM logs WHERE log = 'audit' ORDER BY pos LIMIT 1 OFFSET ?",
                                (index,)).fetchone()
            db.execute("UPDATE logs SET record = ? WHERE pos = ?", (text, pos))
        return
    client = Redis.from_url(redis_url, decode_responses=True)
    try:
        await client.lset(f"{backend.namespace}log:audit", index, text)
    finally:
        await client.aclose()


def _kinds(problems: list[Problem]) -> list[tuple[int | None, str]]:
    return [(p.seq, p.kind) for p in problems]


# --- the chain ------------------------------------------------------------------------------

async def test_records_are_chained_and_verify_clean(store: Store) -> None:
    with capture_logs() as logs:
        records = await _fill(store)
    assert [r["seq"] for r in records] == [1, 2, 3, 4, 5]
    assert records[0]["prev"] == GENESIS
    assert all(r["prev"] == before["hash"] for before, r in zip(records, records[1:]))
    stored = await store.read_log("audit")
    assert stored == records
    assert audit.verify(stored) == []
    assert [e["event"] for e in logs] == ["audit_appended"] * 5
    assert logs[-1]["seq"] == 5 and logs[-1]["hash"] == records[-1]["hash"]


async def test_record_fields_and_hash(store: Store) -> None:
    entry = AuditEntry(actor="slack:U1 (ana)", action="outcome", tool="hold_job", target="CPU1#S.J",
                       where="slack:T1:C1", why="maintenance", result="ok", details={"when": T0, "n": 1.5})
    record = await audit.append(store, entry, now=datetime(2025, 3, 1, 9, 0, tzinfo=timezone(timedelta(hours=-3))))
    assert record["ts"] == "2025-03-01T12:00:00.000Z"
    assert record["details"] == {"when": "2025-03-01 12:00:00+00:00", "n": 1.5}
    assert {k: record[k] for k in ("actor", "action", "tool", "target", "where", "why", "result")} == {
        "actor": "slack:U1 (ana)", "action": "outcome", "tool": "hold_job", "target": "CPU1#S.J",
        "where": "slack:T1:C1", "why": "maintenance", "result": "ok"}
    body = {k: v for k, v in record.items() if k != "hash"}
    expected = hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    assert record["hash"] == expected
    assert set(record) == {"seq", "ts", "actor", "action", "tool", "target", "where", "why", "result",
                           "details", "prev", "hash"}


async def test_concurrent_appends_keep_one_valid_chain(store: Store) -> None:
    await asyncio.gather(*(audit.append(store, _entry(n)) for n in range(1, 31)))
    stored = await store.read_log("audit")
    assert [r["seq"] for r in stored] == list(range(1, 31))
    assert audit.verify(stored) == []


async def test_tail_returns_the_newest(store: Store) -> None:
    await _fill(store, 6)
    assert [r["seq"] for r in await audit.tail(store, 3)] == [4, 5, 6]
    assert [r["seq"] for r in await audit.tail(store)] == [1, 2, 3, 4, 5, 6]


# --- tamper evidence ------------------------------------------------------------------------

async def test_an_edited_field_is_found(store: Store, store_backend: StoreBackend, redis_url: str) -> None:
    await _fill(store)
    record = json.loads((await _raw(store_backend, redis_url))[2])
    record["result"] = "ok"  # someone pretends the action succeeded
    await _edit_in_place(store_backend, redis_url, 2, json.dumps(record))
    problems = audit.verify(await store.read_log("audit"))
    assert _kinds(problems) == [(3, "edited")]
    assert "record 3" in problems[0].detail


async def test_a_deleted_middle_record_is_found(store: Store, store_backend: StoreBackend, redis_url: str) -> None:
    await _fill(store)
    texts = await _raw(store_backend, redis_url)
    await _rewrite(store_backend, redis_url, texts[:2] + texts[3:])
    problems = audit.verify(await store.read_log("audit"))
    assert _kinds(problems) == [(3, "deleted")]
    assert problems[0].detail == "record 3 is missing"


async def test_swapped_records_are_found(store: Store, store_backend: StoreBackend, redis_url: str) -> None:
    await _fill(store)
    texts = await _raw(store_backend, redis_url)
    texts[1], texts[3] = texts[3], texts[1]
    await _rewrite(store_backend, redis_url, texts)
    assert _kinds(audit.verify(await store.read_log("audit"))) == [(2, "reordered"), (4, "reordered")]


async def test_a_rewritten_and_rehashed_record_breaks_the_link(store: Store, store_backend: StoreBackend,
                                                               redis_url: str) -> None:
    await _fill(store)
    record = json.loads((await _raw(store_backend, redis_url))[2])
    record["actor"] = "slack:U999 (mallory)"
    record["hash"] = audit.record_hash(record)
    await _edit_in_place(store_backend, redis_url, 2, json.dumps(record))
    problems = audit.verify(await store.read_log("audit"))
    assert _kinds(problems) == [(4, "broken-link")]
    assert "record 3" in problems[0].detail


async def test_appending_after_damage_fails_closed(store: Store, store_backend: StoreBackend, redis_url: str) -> None:
    await _fill(store, 2)
    await _edit_in_place(store_backend, redis_url, 1, json.dumps({"junk": True}))
    with pytest.raises(StoreError, match="audit verify"):
        await audit.append(store, _entry(3))


# --- verify on plain lists (no backend needed) ------------------------------------------------

def _chain(count: int) -> list[JSON]:
    records: list[JSON] = []
    for seq in range(1, count + 1):
        record = {"seq": seq, "ts": "2025-03-01T12:00:00.000Z", "actor": "a", "action": "request", "tool": "t",
                  "target": "x", "where": "w", "why": None, "result": None, "details": None,
                  "prev": records[-1]["hash"] if records else GENESIS}
        record["hash"] = audit.record_hash(record)
        records.append(record)
    return records


def test_verify_empty_log_is_intact() -> None:
    assert audit.verify([]) == []


def test_verify_finds_deleted_first_records_and_runs() -> None:
    records = _chain(8)
    problems = audit.verify(records[2:4] + records[6:])
    assert [(p.seq, p.kind, p.detail) for p in problems] == [
        (1, "deleted", "records 1-2 are missing"), (5, "deleted", "records 5-6 are missing")]


def test_verify_finds_a_duplicated_record() -> None:
    records = _chain(3)
    assert _kinds(audit.verify(records + [records[1]])) == [(2, "broken-link"), (2, "reordered"), (3, "reordered")]


def test_verify_finds_a_changed_hash_once() -> None:
    records = _chain(4)
    records[1] = {**records[1], "hash": "f" * 64}
    assert _kinds(audit.verify(records)) == [(2, "edited")]


def test_verify_finds_a_forged_first_record() -> None:
    records = _chain(2)
    forged = {**records[0], "prev": "1" * 64}
    forged["hash"] = audit.record_hash(forged)
    assert _kinds(audit.verify([forged, records[1]])) == [(1, "broken-link"), (2, "broken-link")]


def test_verify_survives_garbage() -> None:
    records = _chain(3)
    problems = audit.verify([records[0], {"seq": "two"}, records[2]])
    assert _kinds(problems) == [(None, "edited"), (2, "deleted")]
    assert "position 2" in problems[0].detail


def test_format_record_is_one_readable_line() -> None:
    record = _chain(1)[0] | {"actor": "slack:U1 (ana)", "tool": "rerun_job", "target": "CPU1#S.J",
                             "why": "client\nasked", "result": "ok", "details": {"rc": 0}}
    line = audit.format_record(record)
    assert "\n" not in line
    assert line.startswith("2025-03-01T12:00:00.000Z #1 slack:U1 (ana) request rerun_job CPU1#S.J in w")
    assert "-> ok" in line and '{"rc":0}' in line and "client asked" in line
    assert line.endswith(f"[{record['hash'][:12]}]")
