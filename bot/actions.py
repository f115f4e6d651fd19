"""Running a confirmed job action exactly once, and telling the user exactly what is known.

The agent core (``bot.agent``) decides *whether* an action may run (policy, confirmation,
requester); this module runs it::

    local claim (journal) -> shared claim (store, idem:<id>) -> audit "confirm" (journal first)
      -> journal "asked" (fsynced) -> TWS -> journal "answered" (fsynced) -> audit "outcome"
      -> replay into the store (done:<id>, audit log) when it answers

Until the shared claim is taken nothing has been asked of TWS, so a store failure there is the
honest "nothing was changed; try again". After it, no store failure changes what the user hears:
the outcome comes from TWS's answer and the journal (``bot.journal``) carries it into the store
later. A second press of Confirm is answered from the journal, so the action never runs twice.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import structlog

from bot import audit
from bot.errors import InvalidState, OutcomeUnknown, StoreError, TwsError
from bot.events import Event, Reply
from bot.journal import ActionJournal
from bot.policy import action_of, tws_action
from bot.store import Store
from bot.texts import say
from bot.tws.client import TwsClient

log = structlog.get_logger(__name__)

_DONE_TTL = 7 * 24 * 3600.0


def actor_of(event: Event) -> str:
    """Who, for the audit log: the qualified identity and the display name."""
    name = f" ({event.user_name})" if event.user_name else ""
    return f"{event.identity}{name}"


def where_of(event: Event) -> str:
    return f"{event.platform}:{event.workspace}:{event.channel}"


def entry_for(event: Event, action: str, tool: str, target: str, *, why: str | None = None,
              result: str | None = None, details: dict[str, Any] | None = None) -> audit.AuditEntry:
    return audit.AuditEntry(actor=actor_of(event), action=action, tool=tool, target=target, where=where_of(event),
                            why=why, result=result, details=details)


class JobActions:
    """Confirmed rerun / hold / release / cancel, journaled; owns nothing it did not open."""

    def __init__(self, *, tws: TwsClient, store: Store, journal: ActionJournal) -> None:
        self.tws = tws
        self.store = store
        self.journal = journal

    def known(self, action_id: str) -> Reply | None:
        """What this replica's journal knows of an action, answered without the store."""
        entry = self.journal.get(action_id)
        if entry is None:
            return None
        lang, action = entry.lang, action_of(entry.tool)
        if entry.stage != "answered" or entry.outcome is None:
            return Reply(text=say(lang, "in_progress"), ephemeral=True)
        kind, _, detail = entry.outcome.partition(": ")
        key = {"ok": "handled_ok", "refused": "handled_refused", "unknown": "handled_unknown"}.get(kind, "handled_error")
        text = say(lang, key, action=say(lang, f"noun_{action}"), job=entry.job, detail=detail or kind)
        if not entry.synced:
            text += "\n" + say(lang, "kept_locally")
        return Reply(text=text, ephemeral=True, level="success" if kind == "ok" else "warning")

    async def run(self, action_id: str, pending: dict[str, Any], event: Event) -> tuple[str | None, Reply]:
        """Run the confirmed action once; (outcome, reply), outcome None when it did not run here."""
        lang, tool, job = pending["lang"], pending["tool"], pending["job"]
        why = pending.get("reason")
        base = {"actor": actor_of(event), "where": where_of(event), "why": why}
        if not self.journal.claim(action_id, lang=lang, job=job, tool=tool, audit_base=base):
            return None, self.known(action_id) or Reply(text=say(lang, "already_done"), ephemeral=True)
        try:
            first = await self.store.claim(f"idem:{action_id}", _DONE_TTL)
        except StoreError:
            self.journal.release(action_id)  # TWS was not asked: a later try may run it
            raise
        if not first:
            self.journal.release(action_id)
            log.info("duplicate_confirmation", pending=action_id)
            return None, Reply(text=say(lang, "already_done"), ephemeral=True)
        self.journal.queue_audit(entry_for(event, "confirm", tool, job, why=why, result="confirmed"), at=_now())
        await self.journal.replay(self.store)  # best effort: the journal keeps it if the store is down
        self.journal.asking(action_id)
        try:
            outcome, reply = await self._execute(pending, event)
        except BaseException:
            self.journal.answered(action_id, "unknown: the request to TWS was interrupted")
            raise
        self.journal.answered(action_id, outcome)
        self.journal.queue_audit(entry_for(event, "outcome", tool, job, why=why, result=outcome), at=_now())
        await self.journal.replay(self.store)
        entry = self.journal.get(action_id)
        if entry is not None and not entry.synced:
            reply = replace(reply, text=reply.text + "\n" + say(lang, "kept_locally"))
        return outcome, reply

    async def _execute(self, pending: dict[str, Any], event: Event) -> tuple[str, Reply]:
        lang, action, job = pending["lang"], action_of(pending["tool"]), pending["job"]
        verb, noun = say(lang, f"verb_{action}"), say(lang, f"noun_{action}")
        by = say(lang, "requested_by", user=pending["requester_name"]) + f" · ✔ {event.user_name or event.user_id}"
        try:
            result = await self.tws.job_action(pending["job_id"], tws_action(pending["tool"]))
        except InvalidState as exc:
            return f"refused: {exc}", Reply(text=say(lang, "action_invalid", action=verb, job=job, detail=str(exc)),
                                            level="error", update=event.message_ref, context=by)
        except OutcomeUnknown:
            return "unknown", Reply(text=say(lang, "action_unknown", action=noun, job=job), level="warning",
                                    update=event.message_ref, context=by)
        except TwsError as exc:
            return f"error: {type(exc).__name__}", Reply(text=say(lang, "action_failed", action=noun, job=job, detail=str(exc)),
                                                         level="error", update=event.message_ref, context=by)
        detail = " ".join(result.messages)[:300]
        log.info("job_action_done", action=action, job=job, run=result.new_run_id)
        return "ok", Reply(text=say(lang, "action_done", action=noun, job=job, detail=detail), level="success",
                           update=event.message_ref, context=by)


def _now() -> datetime:
    return datetime.now(UTC)
