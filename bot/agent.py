"""The agent core: one Event in, replies out, with every state change made safe.

Understanding runs in a fixed order: the command grammar and the bilingual rules (``bot.nlu``),
then, when configured, LLM tool-calling (``bot.llm``) for what the rules did not understand. The
LLM only ever *chooses* a registered tool; what it chooses goes through exactly the same path as
a typed command:

    read tool   -> policy.can_read -> run -> reply
    action tool -> resolve the job (choices, never a guess) -> policy.can_act -> [reason] ->
                   confirmation (Confirm / Cancel, TTL) -> requester or role holder confirms ->
                   idempotency claim (runs at most once) -> TWS -> audit -> reply

Every request, denial, confirmation and outcome of an action is appended to the audit log.
"""

from __future__ import annotations

import json
import math
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any, Protocol

import structlog

from bot import audit
from bot.actions import JobActions, entry_for
from bot.config import PolicySettings
from bot.errors import (
    JobNotFound,
    LlmError,
    ResyncError,
    StoreError,
    TwsAuthError,
    TwsError,
    TwsForbidden,
    TwsUnavailable,
)
from bot.events import (
    ACTION_ALERT_ACK,
    ACTION_ALERT_CONFIRM_ABEND,
    ACTION_ALERT_CONFIRM_SUCC,
    ACTION_ALERT_KILL,
    ACTION_ALERT_LOG,
    ACTION_ALERT_RERUN,
    ACTION_ALERT_SNOOZE_1H,
    ACTION_ALERT_SNOOZE_24H,
    ACTION_CANCEL,
    ACTION_CHOOSE,
    ACTION_CONFIRM,
    Button,
    Event,
    Field,
    Reply,
    RunbookSearch,
)
from bot.journal import ActionJournal
from bot.llm import claims_action, contradicts_data
from bot.nlu import detect_language, examples, understand
from bot.policy import Policy, action_of, job_names_for, tws_action
from bot.store import Store
from bot.texts import quote_answer, say
from bot.places import PlaceIndex
from bot.tools import (
    TOOLS,
    Intent,
    Outcome,
    ToolContext,
    choice_args,
    full_name,
    has_wildcard,
    job_fields,
    resolve,
    run_read_tool,
)
from bot.tws.client import TwsClient
from bot.tws.models import WAITING_STATUSES, Job

log = structlog.get_logger(__name__)

AlertActions = Callable[[Event], Awaitable[list[Reply] | None]]
JobActionHook = Callable[..., Awaitable[None]]  # (job_id=, tool=, actor=, outcome=)

_EXPIRED_KEPT = 24 * 3600.0  # a confirmation outlives its TTL by this much, to be audited as expired when touched
# States from which TWS accepts each action (docs/tws-wire.md); used to warn before confirming.
_ALLOWED_FROM = {
    "rerun": {"SUCC", "ABEND", "FAIL", "SUPPR", "CANCL"},
    "hold": {"SCHED", "READY", "HOLD", "WAIT", "INTRO", "ADD", "FENCE", "BOUND"},
    "release": {"HOLD"},
    "cancel": {"SCHED", "READY", "HOLD", "WAIT", "INTRO", "ADD", "FENCE", "BOUND", "ABEND", "FAIL", "ERROR", "PEND"},
    "confirm": {"PEND", "ABEND", "FAIL", "SUCC", "EXEC"},
    "kill": {"EXEC"},
}
#: Alert buttons that propose an action on the alert's job (value: the job id).
_ALERT_TOOLS = {ACTION_ALERT_CONFIRM_SUCC: "confirm_succ_job", ACTION_ALERT_CONFIRM_ABEND: "confirm_abend_job",
                ACTION_ALERT_KILL: "kill_job"}


class ChatTool(Protocol):
    """What the agent needs of an LLM tool caller (``bot.llm.ToolCaller``; tests use the stub)."""

    async def choose(self, text: str, *, lang: str, context: str | None = None) -> Intent: ...

    async def explain(self, question: str, *, lang: str, tool: str, result: str) -> str: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class Hooks:
    """What other components plug into the core (the alerts engine, the knowledge base)."""

    alert_actions: AlertActions | None = None
    on_job_action: JobActionHook | None = None
    runbooks: RunbookSearch | None = None
    observe_action: Callable[[str, str], None] | None = None  # (policy action, outcome or "denied"): metrics


class Agent:
    def __init__(self, *, tws: TwsClient, store: Store, policy: Policy, settings: PolicySettings,
                 llm: ChatTool | None = None, hooks: Hooks = Hooks(), clock: Callable[[], float] = time.time,
                 actions: JobActions | None = None) -> None:
        self.tws = tws
        self.store = store
        self.policy = policy
        self.settings = settings
        self.llm = llm
        self.hooks = hooks
        self.clock = clock
        # Confirmed actions run through the write-ahead journal (bot.actions, bot.journal); without
        # one given (tests, one-shot commands) it lives in memory.
        self.actions = actions or JobActions(tws=tws, store=store, journal=ActionJournal.open(None))
        self.places = PlaceIndex()  # which names are workstations / streams, shared by conversations

    # --- entry point ------------------------------------------------------------------------
    async def handle(self, event: Event) -> list[Reply]:
        # The entry point (HTTP route, Slack task, console) bound the correlation id; add to it.
        structlog.contextvars.bind_contextvars(platform=event.platform, channel=event.channel, user=event.user_id)
        try:
            if event.kind == "action":
                return await self._on_action(event, _lang_of(event))
            return await self._on_text(event)  # understanding the text also tells its language
        except TwsUnavailable as exc:
            return [Reply(text=_unavailable(_lang_of(event), exc), level="error", ephemeral=True)]
        except TwsAuthError:
            return [Reply(text=say(_lang_of(event), "tws_auth"), level="error", ephemeral=True)]
        except TwsForbidden:
            return [Reply(text=say(_lang_of(event), "tws_forbidden"), level="error", ephemeral=True)]
        except JobNotFound as exc:
            return [Reply(text=str(exc), level="warning")]
        except StoreError as exc:
            log.error("store_unavailable", error=str(exc))
            return [Reply(text=say(_lang_of(event), "store_down"), level="error", ephemeral=True)]
        except TwsError as exc:
            ref = uuid.uuid4().hex[:8]
            log.error("request_failed", ref=ref, error=f"{type(exc).__name__}: {exc}")
            return [Reply(text=say(_lang_of(event), "internal_error", ref=ref), level="error", ephemeral=True)]

    # --- text -------------------------------------------------------------------------------
    async def _on_text(self, event: Event) -> list[Reply]:
        text = event.text.strip()
        reason_key = f"reason:{event.conversation_key}:{event.identity}"
        try:
            waiting = await self.store.get(reason_key) if text else None
        except StoreError as exc:  # reads still work without the store; actions will say why they cannot
            log.warning("store_unavailable", error=str(exc))
            waiting = None
        intent = understand(text, lang=event.lang)
        lang = event.lang or intent.lang or "en"
        if waiting:
            kind = reason_kind(text, intent)
            if kind == "cancel":
                await self.store.delete(reason_key)
                return await self._cancel_waiting(event, waiting["id"], lang)
            if kind == "thin":
                return [Reply(text=say(lang, "reason_thin"), level="warning")]
            if kind == "reason":
                await self.store.delete(reason_key)
                return await self._take_reason(event, waiting["id"], text)
            # a question or a command: answered as itself; the action keeps waiting for its reason
            replies = await self._understood(event, intent, text, lang)
            return [*replies, await self._still_waiting(waiting["id"], lang)]
        return await self._understood(event, intent, text, lang)

    async def _understood(self, event: Event, intent: Intent, text: str, lang: str) -> list[Reply]:
        note = None
        if intent.tool is None and not intent.unsupported and self.llm is not None and text:
            try:
                intent = await self.llm.choose(text, lang=lang, context=await self._context_hint(event))
            except LlmError as exc:
                log.warning("llm_fallback", error=str(exc))
                note = say(lang, "llm_fallback")
        if intent.tool is None and intent.unsupported:
            kind, _, word = intent.unsupported.partition(":")  # "history:yesterday", "filter:slow"
            what = say(lang, f"cant_{kind}", word=word)
            return [Reply(text=say(lang, "cant_answer", what=what), level="warning")]
        if intent.tool is None:
            sample = "\n".join(f"• `{e}`" for e in examples(lang)[:5])
            return [Reply(text=(note + "\n" if note else "") + say(lang, "not_understood") + "\n" + sample)]
        replies = await self._run(event, intent, lang)
        if note:
            replies = [Reply(text=note, level="warning"), *replies]
        return replies

    async def _run(self, event: Event, intent: Intent, lang: str) -> list[Reply]:
        spec = TOOLS.get(intent.tool or "")
        if spec is None:
            return [Reply(text=say(lang, "not_understood"))]
        decision = self.policy.can_read(event.identities)
        if not decision.allowed and spec.name != "help":
            log.info("permission_denied", tool=spec.name, reason=decision.reason)
            if spec.changes_state:
                await self._audit(event, "deny", spec.name, full_name(intent.args), result="denied: unknown user")
            self._observed(action_of(spec.name), "denied")
            return [Reply(text=say(lang, "denied_read"), level="warning", ephemeral=True)]
        args = dict(intent.args)
        # Context fills in only a job the message left out ("and its log?"), never one it named.
        if intent.refers_back and "job" in spec.parameters.get("properties", {}) and not args.get("job") and not args.get("job_id"):
            remembered = await self._remembered(event)
            if remembered:
                args["job_id"] = remembered
        ctx = ToolContext(tws=self.tws, lang=lang, text=event.text, runbooks=self.hooks.runbooks, places=self.places)
        if spec.changes_state:
            return await self._propose(event, spec.name, args, ctx, said=event.text if intent.source == "llm" else None)
        outcome = await run_read_tool(spec.name, args, ctx)
        await self._remember(event, outcome)
        # Runbook answers are already grounded in their passages, with citations: not re-explained.
        if intent.source == "llm" and self.llm is not None and outcome.replies and spec.name != "search_runbooks":
            outcome = await self._explained(event, spec.name, outcome, lang)
        return outcome.replies

    async def _explained(self, event: Event, tool: str, outcome: Outcome, lang: str) -> Outcome:
        """The model's words on the (bounded, data-marked) tool result, shown after the facts.

        The TWS answer is never replaced: the model's text comes second, marked as the model's,
        and is dropped when it claims an action happened (no action runs from a read tool) or
        states a status or job count the data does not hold (it never contradicts the data).
        """
        first = outcome.replies[0]
        data = reply_as_text(first)
        try:
            answer = await self.llm.explain(event.text, lang=lang, tool=tool, result=data)  # type: ignore[union-attr]
        except LlmError as exc:
            log.warning("llm_explain_failed", error=str(exc))
            return outcome
        if claims_action(answer):
            log.warning("llm_claim_dropped", tool=tool)
            return outcome
        if contradicts_data(answer, data):
            log.warning("llm_contradiction_dropped", tool=tool)
            return outcome
        words = Reply(text=say(lang, "llm_words", text=answer), level="info")
        return Outcome(replies=[*outcome.replies, words], job=outcome.job)

    # --- context ------------------------------------------------------------------------------
    def _context_key(self, event: Event) -> str:
        return f"ctx:{event.conversation_key}"

    async def _remember(self, event: Event, outcome: Outcome) -> None:
        """Conversation context is a convenience: a store outage must not cost the user the answer."""
        if outcome.job is None:
            return
        try:
            await self.store.put(self._context_key(event), {"job_id": outcome.job.id, "job": outcome.job.full_name},
                                 ttl=self.settings.context_ttl)
        except StoreError as exc:
            log.warning("context_not_saved", error=str(exc))

    async def _context(self, event: Event) -> dict[str, Any] | None:
        try:
            return await self.store.get(self._context_key(event))
        except StoreError as exc:
            log.warning("context_unavailable", error=str(exc))
            return None

    async def _remembered(self, event: Event) -> str | None:
        record = await self._context(event)
        return record["job_id"] if record else None

    async def _context_hint(self, event: Event) -> str | None:
        record = await self._context(event)
        return f"last job discussed: {record['job']}" if record else None

    # --- proposing an action --------------------------------------------------------------------
    async def _propose(self, event: Event, tool: str, args: dict[str, str], ctx: ToolContext, *,
                       said: str | None = None) -> list[Reply]:
        lang, action = ctx.lang, action_of(tool)
        wild = next((args[k] for k in ("job", "stream", "workstation") if args.get(k) and has_wildcard(args[k])), None)
        if wild:
            await self._audit(event, "deny", tool, full_name(args), result="denied: wildcard")
            return [Reply(text=say(lang, "denied_action", action=say(lang, f"verb_{action}"), job=wild,
                                   reason=say(lang, "reason_wildcard")), level="warning", ephemeral=True)]
        found = await resolve(ctx, tool, args)
        if isinstance(found, Reply):
            return [found]
        job = found
        await self._remember(event, Outcome(replies=[], job=job))
        decision = self.policy.can_act(event.identities, tool, job_names_for(job.workstation, job.stream, job.name))
        if not decision.allowed:
            log.info("permission_denied", tool=tool, job=job.full_name, reason=decision.reason)
            await self._audit(event, "deny", tool, job.full_name, result=f"denied: {decision.reason}")
            self._observed(action_of(tool), "denied")
            return [Reply(text=say(lang, "denied_action", action=say(lang, f"verb_{action}"), job=job.full_name,
                                   reason=decision.reason_in(lang)), level="warning", ephemeral=True)]
        pending_id = uuid.uuid4().hex
        pending = {
            "id": pending_id, "tool": tool, "job_id": job.id, "job": job.full_name, "status": job.status,
            "names": list(job_names_for(job.workstation, job.stream, job.name)),
            "requester": event.identity, "requester_name": event.user_name or event.user_id,
            "where": event.conversation_key, "created": self.clock(), "lang": lang,
            "reason": None, "justification_required": decision.justification_required,
            "said": said[:300] if said else None,  # the user's words, when the model chose the action
        }
        # Kept past its expiry (the clock decides, not the store), so a late press is audited as expired.
        await self.store.put(f"confirm:{pending_id}", pending, ttl=self.settings.confirm_ttl + _EXPIRED_KEPT)
        await self._audit(event, "request", tool, job.full_name, result="pending", details={"status": job.status})
        if decision.justification_required:
            await self.store.put(f"reason:{event.conversation_key}:{event.identity}", {"id": pending_id},
                                 ttl=self.settings.confirm_ttl)
            return [Reply(text=say(lang, "ask_reason", action=say(lang, f"verb_{action}"), job=job.full_name), level="warning")]
        return [self._confirmation(pending, job, lang, await self._successors(job, lang))]

    async def _successors(self, job: Job, lang: str) -> Field:
        """How many jobs wait for this one, for the confirmation: "unknown" when TWS cannot say, never 0."""
        try:
            found = await self.tws.successors(job)
        except TwsError as exc:
            log.warning("confirm_successors_unknown", job=job.full_name, error=type(exc).__name__)
            return Field(label=say(lang, "f_successors"), value=say(lang, "successors_unknown"))
        waiting = sum(1 for s in found if s.status in WAITING_STATUSES)
        return Field(label=say(lang, "f_successors"), value=say(lang, "successors_count", count=len(found), waiting=waiting))

    async def _still_waiting(self, pending_id: str, lang: str) -> Reply:
        pending = await self.store.get(f"confirm:{pending_id}")
        if pending is None:
            return Reply(text=say(lang, "expired"), level="warning")
        action = say(pending["lang"], f"verb_{action_of(pending['tool'])}")
        return Reply(text=say(pending["lang"], "reason_still_waiting", action=action, job=pending["job"]), level="warning")

    async def _cancel_waiting(self, event: Event, pending_id: str, lang: str) -> list[Reply]:
        """"n", "no", "não", "cancel" while a reason is awaited: the request is dropped, and audited."""
        pending = await self.store.get(f"confirm:{pending_id}")
        if pending is None:
            return [Reply(text=say(lang, "expired"), level="warning")]
        await self.store.delete(f"confirm:{pending_id}")
        await self._audit(event, "cancelled", pending["tool"], pending["job"], result="cancelled by user (no reason given)")
        return [Reply(text=say(pending["lang"], "cancelled"))]

    async def _take_reason(self, event: Event, pending_id: str, reason: str) -> list[Reply]:
        pending = await self.store.get(f"confirm:{pending_id}")
        lang = event.lang or detect_language(reason)
        if pending is None:
            return [Reply(text=say(lang, "expired"), level="warning")]
        if self.clock() > pending["created"] + self.settings.confirm_ttl:
            await self.store.delete(f"confirm:{pending_id}")
            if await self._first_to_expire(pending_id):
                await self._audit(event, "expired", pending["tool"], pending["job"], result="expired")
            return [Reply(text=say(lang, "expired"), level="warning")]
        pending["reason"] = reason[:500]
        remaining = max(1.0, pending["created"] + self.settings.confirm_ttl + _EXPIRED_KEPT - self.clock())
        await self.store.put(f"confirm:{pending_id}", pending, ttl=remaining)
        job = await self.tws.get_job(pending["job_id"])
        return [self._confirmation(pending, job, pending["lang"], await self._successors(job, pending["lang"]))]

    def _confirmation(self, pending: dict[str, Any], job: Job, lang: str, successors: Field | None = None) -> Reply:
        action = action_of(pending["tool"])
        rc = f", rc={job.return_code}" if job.return_code is not None else ""
        meaning = say(lang, f"mean_{tws_action(pending['tool']).replace('-', '_')}", job=job.full_name,
                      status=job.status, rc=rc)
        if pending.get("said"):  # the model picked this: show what the user wrote and how it was read
            meaning = say(lang, "understood_as", said=pending["said"], action=say(lang, f"verb_{action}"),
                          job=job.full_name) + "\n" + meaning
        if job.status not in _ALLOWED_FROM[action]:
            meaning += "\n" + say(lang, "state_warning", status=job.status, verb=say(lang, f"verb_{action}"))
        fields = job_fields(job, lang) + ((successors,) if successors else ())
        if pending.get("reason"):
            fields += (Field(label=say(lang, "f_reason"), value=pending["reason"]),)
        return Reply(
            title=say(lang, "confirm_title", action=say(lang, f"verb_{action}").capitalize(), job=job.full_name),
            text=say(lang, "confirm_text", meaning=meaning, expires=_duration(self.settings.confirm_ttl)),
            fields=fields, level="warning",
            buttons=(Button(label=say(lang, "btn_confirm"), action_id=ACTION_CONFIRM, value=pending["id"], style="danger"),
                     Button(label=say(lang, "btn_cancel"), action_id=ACTION_CANCEL, value=pending["id"])),
            context=say(lang, "requested_by", user=pending["requester_name"]),
        )

    # --- buttons ------------------------------------------------------------------------------
    async def _on_action(self, event: Event, lang: str) -> list[Reply]:
        action_id, value = event.action_id or "", event.action_value or ""
        if action_id == ACTION_CONFIRM:
            return await self._confirm(event, value)
        if action_id == ACTION_CANCEL:
            return await self._cancel(event, value)
        if action_id == ACTION_CHOOSE:
            try:
                choice = json.loads(value)
                tool = str(choice["tool"])
                args = choice_args(choice)
            except (ValueError, KeyError, TypeError):
                return [Reply(text=say(lang, "not_understood"), ephemeral=True)]
            lang = event.lang or (choice.get("lang") if choice.get("lang") in ("en", "pt") else lang)
            return await self._run(event, Intent(tool=tool, args=args, lang=lang, source="button"), lang)
        if action_id == ACTION_ALERT_RERUN:
            return await self._run(event, Intent(tool="rerun_job", args={"job_id": value}, lang=lang, source="button"), lang)
        if action_id in _ALERT_TOOLS:
            return await self._run(event, Intent(tool=_ALERT_TOOLS[action_id], args={"job_id": value}, lang=lang,
                                                 source="button"), lang)
        if action_id == ACTION_ALERT_LOG:
            return await self._run(event, Intent(tool="job_log", args={"job_id": value}, lang=lang, source="button"), lang)
        if action_id in {ACTION_ALERT_ACK, ACTION_ALERT_SNOOZE_1H, ACTION_ALERT_SNOOZE_24H} and self.hooks.alert_actions:
            if not self.policy.can_read(event.identities).allowed:
                return [Reply(text=say(lang, "denied_read"), level="warning", ephemeral=True)]
            return await self.hooks.alert_actions(event) or []
        log.warning("unknown_action", action_id=action_id)
        return [Reply(text=say(lang, "not_understood"), ephemeral=True)]

    async def _confirm(self, event: Event, pending_id: str) -> list[Reply]:
        known = self.actions.known(pending_id)  # this replica ran it: answered without the store
        if known is not None:
            return [known]
        pending = await self.store.get(f"confirm:{pending_id}")
        if pending is None:
            done = await self.store.get(f"done:{pending_id}")
            lang = done["lang"] if done else (event.lang or "en")
            return [Reply(text=say(lang, "already_done" if done else "expired"), ephemeral=True, level="warning")]
        lang, tool, action = pending["lang"], pending["tool"], action_of(pending["tool"])
        if self.clock() > pending["created"] + self.settings.confirm_ttl:
            await self.store.delete(f"confirm:{pending_id}")
            if await self._first_to_expire(pending_id):
                await self._audit(event, "expired", tool, pending["job"], result="expired")
            return [Reply(text=say(lang, "expired"), ephemeral=True, level="warning")]
        if pending.get("justification_required") and not pending.get("reason"):
            return [Reply(text=say(lang, "ask_reason", action=say(lang, f"verb_{action}"), job=pending["job"]), ephemeral=True)]
        if event.identity != pending["requester"] and not self._may_confirm(event, pending):
            await self._audit(event, "deny", tool, pending["job"], result="denied: not requester nor role holder")
            self._observed(action_of(pending["tool"]), "denied")
            return [Reply(text=say(lang, "not_yours", action=say(lang, f"verb_{action}")), ephemeral=True, level="warning")]
        outcome, reply = await self.actions.run(pending_id, pending, event)
        if outcome is not None:
            self._observed(action, outcome.partition(":")[0])
        if outcome is not None and self.hooks.on_job_action is not None:
            try:  # the alert thread's note is a courtesy: it must not turn a true answer into an error
                await self.hooks.on_job_action(job_id=pending["job_id"], tool=tool,
                                               actor=event.user_name or event.user_id, outcome=outcome)
            except ResyncError as exc:
                log.warning("job_action_note_failed", error=str(exc))
        return [reply]

    def _may_confirm(self, event: Event, pending: dict[str, Any]) -> bool:
        return self.policy.can_act(event.identities, pending["tool"], pending["names"]).allowed

    async def _cancel(self, event: Event, pending_id: str) -> list[Reply]:
        pending = await self.store.get(f"confirm:{pending_id}")
        if pending is None:
            return [Reply(text=say(event.lang or "en", "expired"), ephemeral=True)]
        lang = pending["lang"]
        if event.identity != pending["requester"] and not self._may_confirm(event, pending):
            return [Reply(text=say(lang, "not_yours", action=say(lang, f"verb_{action_of(pending['tool'])}")), ephemeral=True)]
        if self.clock() > pending["created"] + self.settings.confirm_ttl:
            await self.store.delete(f"confirm:{pending_id}")
            if await self._first_to_expire(pending_id):
                await self._audit(event, "expired", pending["tool"], pending["job"], result="expired")
            return [Reply(text=say(lang, "expired"), ephemeral=True, level="warning")]
        await self.store.delete(f"confirm:{pending_id}")
        await self._audit(event, "cancelled", pending["tool"], pending["job"], result="cancelled by user")
        return [Reply(text=say(lang, "cancelled"), update=event.message_ref,
                      context=say(lang, "requested_by", user=pending["requester_name"]))]

    def _observed(self, action: str, outcome: str) -> None:
        if self.hooks.observe_action is not None:
            self.hooks.observe_action(action, outcome)

    # --- audit ----------------------------------------------------------------------------------
    async def sweep_expired(self) -> int:
        """Audit each confirmation nobody touched, once, as expired after its TTL; returns how many.

        Run periodically (bot/wiring.py). The ``expired:<id>`` claim (SET NX) makes it once across
        restarts, replicas and a late press racing the sweep.
        """
        now, count = self.clock(), 0
        for key, pending in await self.store.scan("confirm:"):
            if not isinstance(pending, dict) or now <= float(pending.get("created", now)) + self.settings.confirm_ttl:
                continue
            pending_id = str(pending.get("id") or key.removeprefix("confirm:"))
            if await self._first_to_expire(pending_id):
                requester = pending.get("requester", "?")
                name = pending.get("requester_name")
                try:
                    await audit.append(self.store, audit.AuditEntry(
                        actor=f"{requester} ({name})" if name else requester, action="expired",
                        tool=pending.get("tool", "?"), target=pending.get("job", "?"), where=pending.get("where", "?"),
                        result="expired", details={"by": "sweep"}))
                except StoreError:
                    await self.store.delete(f"expired:{pending_id}")  # not written: the next sweep tries again
                    raise
                count += 1
            await self.store.delete(key)
        if count:
            log.info("confirmations_expired", count=count)
        return count

    async def _first_to_expire(self, pending_id: str) -> bool:
        return await self.store.claim(f"expired:{pending_id}", self.settings.confirm_ttl + _EXPIRED_KEPT)

    async def _audit(self, event: Event, action: str, tool: str, target: str, *, why: str | None = None,
                     result: str | None = None, details: dict[str, Any] | None = None) -> None:
        await audit.append(self.store, entry_for(event, action, tool, target, why=why, result=result, details=details))


_CANCEL_WORDS = frozenset({"n", "no", "nope", "nao", "não", "cancel", "cancela", "cancelar", "cancele", "abort",
                           "stop", "nevermind", "never mind", "esquece", "deixa", "deixa pra la", "deixa pra lá",
                           "desisto", "forget it", "nao precisa", "não precisa", "cancel it", "cancela isso"})
_QUESTION_START = ("what", "which", "how", "is ", "are ", "did ", "does ", "can ", "show", "list", "status", "log ",
                   "qual", "quais", "como", "o que", "mostra", "lista", "cade", "cadê", "quando", "when", "where", "onde",
                   "wait", "espera", "peraí", "perai", "pera")


def reason_kind(text: str, intent: Intent) -> str:
    """What a message sent while a reason is awaited is: "cancel", "thin" (no substance), a
    "question"/command to answer as itself, or the "reason"."""
    folded = text.strip().lower().strip(".!")
    if folded in _CANCEL_WORDS:
        return "cancel"
    if intent.source == "command" or text.rstrip().endswith("?"):
        return "question"
    if intent.tool is not None and (intent.args or intent.tool in TOOLS and TOOLS[intent.tool].changes_state):
        return "question"
    if intent.tool is not None and folded.startswith(_QUESTION_START):
        return "question"
    letters = sum(c.isalpha() for c in text)
    if len(text.split()) < 3 or letters < 12:
        return "thin"
    return "reason"


def _lang_of(event: Event) -> str:
    return event.lang or detect_language(event.text or "")


def _unavailable(lang: str, exc: TwsUnavailable) -> str:
    """Why TWS could not serve the request, truthfully: what it answered (quoted as in the alert
    notices: one line, credentials cut out), whether the breaker is holding requests back after
    such answers, or that nothing answered at all."""
    if exc.answer is None:
        return say(lang, "tws_down", detail=str(exc))
    if exc.held_for is not None:
        return say(lang, "tws_error_held", detail=quote_answer(exc.answer), seconds=max(1, math.ceil(exc.held_for)))
    return say(lang, "tws_error", detail=quote_answer(exc.answer))


def _duration(seconds: float) -> str:
    minutes, rest = divmod(int(seconds), 60)
    return " ".join(part for part in (f"{minutes} min" if minutes else "", f"{rest} s" if rest else "") if part) or "0 s"


def reply_as_text(reply: Reply, limit: int = 4000) -> str:
    """A reply flattened to text: what the LLM sees of a tool result (bounded)."""
    parts = [reply.title or "", reply.text, *(f"{f.label}: {f.value}" for f in reply.fields), reply.code or ""]
    return "\n".join(p for p in parts if p)[:limit]
