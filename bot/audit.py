"""The audit log: who asked for, confirmed, refused or ran which job action, where and why.

Records live in the state store's chained log ``audit``. Each one carries ``seq`` (1, 2, ...),
the hash of the record before it (``prev``; 64 zeros for the first) and its own ``hash``: the
SHA-256 of its canonical JSON without ``hash``. Editing, deleting or reordering a stored record
therefore shows up in ``verify``, which names the record concerned.

A hash chain cannot tell a log whose newest records were cut off from a shorter log: compare the
last ``seq`` and ``hash`` with a copy kept elsewhere (the ``audit_appended`` log events carry both)
to catch that.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

import structlog

from bot.errors import StoreError
from bot.store import JSON, Store

log = structlog.get_logger(__name__)

LOG_NAME = "audit"
GENESIS = "0" * 64


@dataclass(frozen=True, slots=True, kw_only=True)
class AuditEntry:
    """What a caller records; ``seq``, ``ts``, ``prev`` and ``hash`` are added by ``append``."""

    actor: str  # who, e.g. "slack:U123 (ana)"
    action: str  # "request", "confirm", "deny", "cancelled", "expired", "outcome"
    tool: str  # e.g. "rerun_job"
    target: str  # e.g. "CPU1#PAYROLL_DAILY.EXTRACT01"
    where: str  # e.g. "slack:T1:C123"
    why: str | None = None  # the justification given
    result: str | None = None  # "ok", "denied", "error: ...", "unknown"
    details: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Problem:
    """One finding of ``verify``; ``seq`` is None only when a record has no usable seq."""

    seq: int | None
    kind: str  # "edited", "deleted", "reordered", "broken-link", "unparseable"
    detail: str


def verify_stored(texts: list[str]) -> tuple[list[JSON], list[Problem]]:
    """``verify`` for records as stored: one replaced by something that is not a JSON record is
    named too (by its position, and the seq it must have had), not just a reason to give up."""
    records: list[JSON] = []
    unreadable: list[Problem] = []
    last_seq = 0
    for position, text in enumerate(texts, start=1):
        try:
            record = json.loads(text)
        except ValueError:
            record = None
        if not isinstance(record, dict):
            last_seq += 1
            unreadable.append(Problem(seq=last_seq, kind="unparseable", detail=(
                f"record {last_seq} (stored at position {position}) is not a JSON record: {str(text)[:40]!r}")))
            continue
        records.append(record)
        last_seq = _seq(record) or last_seq
    problems = verify(records, unreadable=frozenset(p.seq for p in unreadable if p.seq is not None))
    return records, sorted([*unreadable, *problems], key=lambda p: (-1 if p.seq is None else p.seq, p.kind))


def record_hash(record: JSON) -> str:
    """SHA-256 of the canonical JSON of ``record`` without its ``hash`` field."""
    body = {k: v for k, v in record.items() if k != "hash"}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


async def append(store: Store, entry: AuditEntry, *, now: datetime | None = None) -> JSON:
    """Chain ``entry`` onto the audit log and return the stored record."""
    moment = now or datetime.now(UTC)
    moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    # Round-trip through JSON so the hashed record is exactly what the store will hand back.
    fields = json.loads(json.dumps(asdict(entry), default=str))
    ts = moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")

    def build(last: JSON | None) -> JSON:
        record = {"seq": _next_seq(last), "ts": ts, **fields, "prev": GENESIS if last is None else last.get("hash")}
        record["hash"] = record_hash(record)
        return record

    record = await store.append_chained(LOG_NAME, build)
    log.info("audit_appended", seq=record["seq"], hash=record["hash"], action=entry.action, tool=entry.tool,
             target=entry.target, actor=entry.actor)
    return record


def _next_seq(last: JSON | None) -> int:
    if last is None:
        return 1
    seq = last.get("seq")
    if not isinstance(seq, int) or isinstance(seq, bool):
        # Fail closed: chaining onto a damaged record would bury the damage.
        raise StoreError("the newest audit record is damaged (no seq); run `resync audit verify`")
    return seq + 1


async def tail(store: Store, n: int = 20) -> list[JSON]:
    """The newest ``n`` audit records, oldest first."""
    return await store.read_log(LOG_NAME, last=n)


# --- verification ---------------------------------------------------------------------------

def verify(records: list[JSON], *, unreadable: frozenset[int] = frozenset()) -> list[Problem]:
    """Check a whole audit log (from seq 1, in stored order); an empty list means intact.

    ``unreadable``: seqs of records that could not be parsed (already reported by the caller).
    """
    edited = _edited(records)
    seqs = [s for s in (_seq(r) for r in records) if s is not None]
    problems = [*edited, *_duplicates(seqs), *_missing(sorted({*seqs, *unreadable})), *_reordered(seqs),
                *_broken_links(records, {p.seq for p in edited} | set(unreadable))]
    return sorted(problems, key=lambda p: (-1 if p.seq is None else p.seq, p.kind))


def _seq(record: JSON) -> int | None:
    seq = record.get("seq") if isinstance(record, dict) else None
    return seq if isinstance(seq, int) and not isinstance(seq, bool) else None


def _edited(records: list[JSON]) -> list[Problem]:
    found = []
    for position, record in enumerate(records, start=1):
        seq = _seq(record)
        if seq is None:
            found.append(Problem(seq=None, kind="edited",
                                 detail=f"the record stored at position {position} has no valid seq"))
        elif record.get("hash") != record_hash(record):
            found.append(Problem(seq=seq, kind="edited",
                                 detail=f"record {seq} does not match its hash: its content was changed"))
    return found


def _duplicates(seqs: list[int]) -> list[Problem]:
    return [Problem(seq=seq, kind="broken-link", detail=f"record {seq} appears {count} times")
            for seq, count in Counter(seqs).items() if count > 1]


def _missing(seqs: list[int]) -> list[Problem]:
    problems = []
    previous = 0
    for seq in sorted(set(seqs)):
        if seq > previous + 1:
            gap = f"record {previous + 1} is" if seq == previous + 2 else f"records {previous + 1}-{seq - 1} are"
            problems.append(Problem(seq=previous + 1, kind="deleted", detail=f"{gap} missing"))
        previous = seq
    return problems


def _reordered(seqs: list[int]) -> list[Problem]:
    expected = sorted(seqs)
    return [Problem(seq=seq, kind="reordered",
                    detail=f"record {seq} is stored at position {position + 1}, where record {want} belongs")
            for position, (seq, want) in enumerate(zip(seqs, expected)) if seq != want]


def _broken_links(records: list[JSON], edited: set[int | None]) -> list[Problem]:
    """Links between intact neighbours only: an edit or a deletion is already reported."""
    by_seq: dict[int, JSON] = {}
    for record in records:
        seq = _seq(record)
        if seq is not None:
            by_seq.setdefault(seq, record)
    problems = []
    for seq, record in sorted(by_seq.items()):
        if seq == 1 and record.get("prev") != GENESIS and 1 not in edited:
            problems.append(Problem(seq=1, kind="broken-link", detail="record 1 does not start the chain"))
        before = by_seq.get(seq - 1)
        if before is None or seq in edited or seq - 1 in edited:
            continue
        if record.get("prev") != before.get("hash"):
            problems.append(Problem(seq=seq, kind="broken-link", detail=(
                f"record {seq} does not link to record {seq - 1}: one of them was rewritten with a new hash")))
    return problems


# --- display ------------------------------------------------------------------------------

def format_record(record: JSON) -> str:
    """One line per record, for ``resync audit tail``."""
    parts = [str(record.get("ts", "?")), f"#{record.get('seq', '?')}", str(record.get("actor", "?")),
             str(record.get("action", "?")), str(record.get("tool", "?")), str(record.get("target", "?")),
             f"in {record.get('where', '?')}"]
    if record.get("why"):
        parts.append(f"why: \"{record['why']}\"")
    if record.get("result"):
        parts.append(f"-> {record['result']}")
    if record.get("details"):
        parts.append(json.dumps(record["details"], sort_keys=True, separators=(",", ":"), default=str))
    parts.append(f"[{str(record.get('hash', ''))[:12]}]")
    return " ".join(" ".join(p.split()) for p in parts)
