"""The one event every adapter produces and the one reply every adapter renders.

Slack, Teams, the console and the HTTP chat API translate their payloads into ``Event`` and turn
``Reply`` into Block Kit, an Adaptive Card, terminal text or JSON. Nothing under ``bot/`` knows
which platform it is talking to.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Protocol, runtime_checkable

if TYPE_CHECKING:
    from aiohttp import web

EventKind = Literal["message", "dm", "command", "action"]
Level = Literal["info", "success", "warning", "error"]
#: The markup a ``Reply``'s text is written in; each renderer converts it to its platform's own.
#: "mrkdwn": ``*bold*``, ``_italic_``, `` `code` ``, ``• `` bullets (what the core writes);
#: "markdown": CommonMark (``**bold**``); "plain": no markup at all.
Dialect = Literal["mrkdwn", "markdown", "plain"]

# Action ids carried by buttons; adapters route them back into the core unchanged.
ACTION_CONFIRM = "resync_confirm"
ACTION_CANCEL = "resync_cancel"
ACTION_CHOOSE = "resync_choose"  # value: JSON {"tool": ..., "job_id": ...} picked among candidates
ACTION_ALERT_RERUN = "resync_alert_rerun"
ACTION_ALERT_LOG = "resync_alert_log"
ACTION_ALERT_ACK = "resync_alert_ack"
ACTION_ALERT_SNOOZE_1H = "resync_alert_snooze_1h"
ACTION_ALERT_SNOOZE_24H = "resync_alert_snooze_24h"
ACTION_ALERT_CONFIRM_SUCC = "resync_alert_confirm_succ"  # PEND alert: TWS confirm-succ (policy action confirm)
ACTION_ALERT_CONFIRM_ABEND = "resync_alert_confirm_abend"  # PEND alert: TWS confirm-abend
ACTION_ALERT_KILL = "resync_alert_kill"  # long-running alert: TWS kill


@dataclass(frozen=True, slots=True, kw_only=True)
class Event:
    """A message, slash command or button press, whatever platform it came from.

    ``kind`` is "message" for a channel mention, "dm" for a direct message, "command" for a slash
    command (``text`` is what follows the command), "action" for a button (``action_id`` and
    ``action_value`` carry the payload).
    """

    platform: str  # "slack", "teams", "console", "http"
    workspace: str  # Slack team id, Teams tenant id, "local"
    channel: str  # channel or conversation id
    user_id: str
    text: str = ""
    kind: EventKind = "message"
    thread: str | None = None  # thread root the conversation lives in, if any
    user_name: str = ""
    user_email: str | None = None
    action_id: str | None = None
    action_value: str | None = None
    message_ref: str | None = None  # the message that carried the pressed button
    event_id: str | None = None  # the platform's delivery id, for deduplication
    lang: str | None = None  # "en" or "pt" when the platform knows the user's locale

    @property
    def conversation_key(self) -> str:
        """Where follow-ups ("and its log?") are remembered: per thread, or per DM."""
        return f"{self.platform}:{self.workspace}:{self.channel}:{self.thread or ''}"

    @property
    def identity(self) -> str:
        """The platform-qualified user (``slack:U0OPS``): the only form users are compared in.

        A bare id is not a user: ``U0OPS`` sent through the HTTP API is ``http:U0OPS``, never the
        Slack user ``slack:U0OPS``.
        """
        return f"{self.platform}:{self.user_id}"

    @property
    def identities(self) -> tuple[str, ...]:
        """Identity strings a permission policy may name for this user.

        Always qualified by platform, so that a user id sent through one surface (say the HTTP
        chat API) can never pass for another's (``console:operator``). ``user_email`` is set only
        by an adapter that got it from the platform itself, never from user input.
        """
        ids = [self.identity]
        if self.user_email:
            ids.append(self.user_email.lower())
        return tuple(ids)


@dataclass(frozen=True, slots=True, kw_only=True)
class Field:
    label: str
    value: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Button:
    label: str
    action_id: str
    value: str
    style: Literal["primary", "danger"] | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Reply:
    """What the bot says back; adapters render it within their platform's limits.

    ``code`` is a verbatim block (a job log); ``thread`` names the thread to answer in (None: the
    adapter's default for the event); ``ephemeral`` asks for a reply only the requester sees;
    ``update`` names an earlier message (``Event.message_ref`` or a stored alert message) to
    replace instead of posting a new one. ``text``, ``fields`` and ``context`` are written in
    ``dialect`` (see ``Dialect``); ``lang`` is the reply's language, which renderers use for the
    words they add themselves (cut markers), English when None.
    """

    text: str
    title: str | None = None
    fields: tuple[Field, ...] = ()
    code: str | None = None
    code_title: str | None = None
    buttons: tuple[Button, ...] = ()
    thread: str | None = None
    ephemeral: bool = False
    update: str | None = None
    level: Level = "info"
    context: str | None = None  # small print under the reply (e.g. "requested by @ana")
    dialect: Dialect = "mrkdwn"
    lang: str | None = None


#: What an adapter is given: one callable from event to replies.
Handle = Callable[[Event], Awaitable[list[Reply]]]

#: A knowledge-base lookup: the best runbook answer for a query, or None.
RunbookSearch = Callable[[str], Awaitable[str | None]]


@runtime_checkable
class RunbookAnswers(Protocol):
    """A knowledge base that also answers chat questions with passages (``bot.kb.KnowledgeBase``)."""

    async def __call__(self, query: str) -> str | None: ...

    async def answer(self, question: str, *, lang: str) -> list[Reply]: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class Posted:
    """Where a proactive message landed, so it can be threaded under and updated later."""

    target: str  # e.g. "slack:C0123456"
    message_ref: str  # Slack ts, Teams activity id
    thread: str | None = None


class Notifier(Protocol):
    """Proactive delivery (alerts) to a routed target such as ``slack:C0123456``.

    Raises ``DeliveryError`` when the platform refused or could not be reached, so the outbox
    can retry later.
    """

    def handles(self, target: str) -> bool: ...

    async def post(self, target: str, reply: Reply, *, thread: str | None = None) -> Posted: ...

    async def update(self, target: str, message_ref: str, reply: Reply) -> None: ...


ReplySink = Callable[[Reply], Awaitable[None]]


class ChatAdapter(Notifier, Protocol):
    """A chat platform in the web app: a ``Notifier`` that also serves its inbound requests.

    ``mount`` adds its routes to the one aiohttp app, ``start`` opens any long-lived link once the
    app runs, ``healthy`` tells ``/readyz`` whether that link is up, ``close`` lets answers in
    flight finish. ``name`` ("slack", "teams") labels it in ``/readyz``.
    """

    name: str

    def mount(self, app: web.Application) -> None: ...

    async def start(self) -> None: ...

    async def healthy(self) -> bool: ...

    async def close(self) -> None: ...
