"""Teams in and out: botbuilder's ``CloudAdapter`` at ``POST /api/messages``, replies as Adaptive
Cards at Teams' pace. Every botbuilder import of Resync is in the ``adapters/teams*.py`` files (the
SDK is archived upstream; moving to its successor, microsoft-agents-hosting-aiohttp, touches them
only):

    teams.py                the route, the turn, sending (this file)
    teams_auth.py           the SDK's token validation, the serviceUrl rule, outbound credentials
    teams_activities.py     Activity -> Event (mentions, reply chains, locale, card submissions)
    teams_cards.py          Reply -> Adaptive Card 1.5 within Teams' 40 KB
    teams_conversations.py  the stored conversation references (proactive sends, alert targets)

Inbound, nothing runs before the request is known to be whole and from Teams: not JSON is 415,
not an Activity (or ``deliveryMode: expectReplies``) 400, a bad or missing token or a
``serviceUrl`` other than the token's 401, a tenant outside ``TEAMS_ALLOWED_TENANTS`` 403. Then
``CloudAdapter.process_activity`` runs the turn, which stores the conversation reference, answers
an ``invoke`` at once (never the SDK's 501, which Teams shows as "Unable to reach app") and hands
the event to ``Answers``: claimed once (``dedup:teams:<activity id>``, or the card submission's key),
then the typing indicator, the core, the replies; when the core takes longer than ``ACK_AFTER``,
a "working on it" goes out first, and the answer replaces it in place. The HTTP answer never waits for the core, so Teams' 15 s window
(after which it redelivers) is never at stake.

Where answers go: a channel message is answered in its reply chain, personal and group chats in
place; ``Reply.update`` rewrites a card (``update_activity``), which is how a confirmation card
shows its outcome without buttons. Outbound calls use one SDK ``ConnectorClient`` per
``serviceUrl`` (inside turns too), within Teams' per-conversation limits (``SendWindow``: 7 a second,
60 in 30 s), retried on 429 (``Retry-After``), 412, 502 and 504 (and other 5xx) with full-jitter
backoff (``adapters.sending``); a post that finally fails raises ``DeliveryError``, so the alerts
outbox keeps it. A conversation the bot was removed from (403, or 404 on a post) is marked gone
and reported once; later sends there are refused without a call until the bot is installed again.
"""
from __future__ import annotations

import asyncio
import json
import time
from collections import deque
from dataclasses import replace
from types import SimpleNamespace
from typing import Any

import aiohttp
import structlog
from aiohttp import web
from botbuilder.core import TurnContext
from botbuilder.integration.aiohttp import CloudAdapter
from botbuilder.schema import Activity, ActivityTypes, ErrorResponseException
from msrest.exceptions import ClientRequestError

from adapters.answers import Answers
from adapters.sending import paced, refusal, unreachable
from adapters.teams_activities import invoke_answer, parse, tenant_of, translate
from adapters.teams_auth import REFRESH_EVERY, ChannelAuth
from adapters.teams_cards import render
from adapters.teams_conversations import Conversation, Conversations, base_id
from adapters.teams_images import image_activity
from bot.config import TeamsSettings
from bot.errors import DeliveryError, StoreError
from bot.events import Event, Handle, Posted, Reply
from bot.store import Store
from bot.texts import say

log = structlog.get_logger(__name__)

PATH = "/api/messages"
ACK_AFTER = 3.0  # seconds of core work before "working on it" is sent
EMAIL_TTL = 3600.0
_TRANSIENT = frozenset({412, 502, 504})  # besides 429 and other 5xx: Teams' documented retryables


class SendWindow:
    """Per-conversation send slots within sliding-window limits, by default Teams': at most 7 in
    any second and 60 in any 30 s (``LIMITS``; the widest window must come last).

    A 429 blocks the conversation for its ``Retry-After``. One event loop and no await between
    checking and taking a slot, so no lock.
    """

    LIMITS = ((1.0, 7), (30.0, 60))

    def __init__(self, limits: tuple[tuple[float, int], ...] = LIMITS) -> None:
        self._limits = limits
        self._span = max(span for span, _ in limits)
        self._sent: dict[str, deque[float]] = {}
        self._blocked: dict[str, float] = {}

    async def wait(self, key: str) -> None:
        loop = asyncio.get_running_loop()
        while True:
            now = loop.time()
            sent = self._sent.setdefault(key, deque())
            while sent and sent[0] <= now - self._span:
                sent.popleft()
            delay = self._blocked.get(key, now) - now
            for span, most in self._limits:
                recent = [t for t in sent if t > now - span]
                if len(recent) >= most:
                    delay = max(delay, recent[-most] + span - now)
            if delay <= 0:
                sent.append(now)
                if len(self._sent) > 10_000:
                    self._sent = {k: v for k, v in self._sent.items() if v and v[-1] > now - self._span}
                return
            await asyncio.sleep(delay)

    def block(self, key: str, seconds: float) -> None:
        until = asyncio.get_running_loop().time() + seconds
        self._blocked[key] = max(until, self._blocked.get(key, 0.0))


class _Gone(DeliveryError):
    """The connector says the bot is no longer in that conversation (403, or 404 on a post)."""


class TeamsAdapter:
    """The Teams side of Resync: activities to ``handle``, replies and alerts out (a Notifier)."""

    name = "teams"

    def __init__(self, settings: TeamsSettings, *, handle: Handle, store: Store, ack_after: float = ACK_AFTER) -> None:
        self._settings = settings
        self._ack_after = ack_after
        self._handle = handle
        self._auth = ChannelAuth(settings)
        self._cloud = CloudAdapter(self._auth.sdk)
        self._cloud.on_turn_error = self._turn_failed
        self._conversations = Conversations(store)
        self._answers = Answers(self._answer, store, platform="teams")
        self._window = SendWindow()
        self._clients: dict[str, Any] = {}  # serviceUrl -> ConnectorClient
        self._emails: dict[str, tuple[str | None, float]] = {}
        self._warm: asyncio.Task[None] | None = None

    # --- lifecycle -----------------------------------------------------------------------
    def mount(self, app: web.Application) -> None:
        app.router.add_post(PATH, self._on_http)

    async def start(self) -> None:
        """Fetch the signing keys and the outbound token now and every ``REFRESH_EVERY``, off the loop."""
        await self._auth.refresh()
        self._warm = asyncio.ensure_future(self._keep_warm())

    async def healthy(self) -> bool:
        """False until the channel's signing keys were fetched once: every request would get 401."""
        return self._auth.keys_known

    async def close(self) -> None:
        if self._warm is not None:
            self._warm.cancel()
        await self._answers.close()
        for client in self._clients.values():
            await client.__aexit__(None, None, None)
        self._clients.clear()

    async def _keep_warm(self) -> None:
        while True:
            await asyncio.sleep(REFRESH_EVERY)
            await self._auth.refresh()

    # --- Notifier --------------------------------------------------------------------------
    def handles(self, target: str) -> bool:
        return target.startswith("teams:") and len(target) > len("teams:")

    async def post(self, target: str, reply: Reply, *, thread: str | None = None,
                   mention: tuple[str, str] | None = None) -> Posted:
        """Post to ``teams:<conversation id>`` (in the reply chain ``thread`` of a channel),
        @mentioning ``mention`` (AAD object id, name) when given."""
        conversation = await self._known(target.removeprefix("teams:"))
        in_channel = conversation.type == "channel"
        to = f"{conversation.id};messageid={thread}" if in_channel and thread else conversation.id
        activity = Activity.deserialize(render(reply, mention=mention))
        sent = await self._call("send", conversation, lambda c: c.conversations.send_to_conversation(to, activity))
        message_id = getattr(sent, "id", None) or ""
        return Posted(target=target, message_ref=message_id, thread=(thread or message_id) if in_channel else None)

    async def update(self, target: str, message_ref: str, reply: Reply) -> None:
        conversation = await self._known(target.removeprefix("teams:"))
        activity = Activity.deserialize({**render(reply), "id": message_ref})
        await self._call("update", conversation,
                         lambda c: c.conversations.update_activity(conversation.id, message_ref, activity))

    async def upload(self, target: str, data: bytes, *, filename: str, title: str, comment: str | None = None) -> None:
        """Show a picture (the digest's chart) in ``teams:<conversation id>``: a card with the image
        inline (``adapters.teams_images``); ``comment`` is not used (the digest's text went before)."""
        conversation = await self._known(target.removeprefix("teams:"))
        activity = Activity.deserialize(image_activity(data, title=title, filename=filename))
        await self._call("send", conversation,
                         lambda c: c.conversations.send_to_conversation(conversation.id, activity))

    # --- inbound -----------------------------------------------------------------------------
    async def _on_http(self, request: web.Request) -> web.Response:
        try:
            if request.content_type != "application/json":
                raise ValueError
            body = await request.json()
        except ValueError:
            return _refused(415, "the body must be a JSON Activity (application/json)")
        activity, problem = parse(body)
        if activity is None:
            return _refused(400, problem)
        auth = await self._auth.authenticate(activity, request.headers.get("Authorization", ""))
        if auth is None:
            return _refused(401, "missing or invalid bearer token")
        tenant = tenant_of(activity)
        if self._settings.allowed_tenants and tenant not in self._settings.allowed_tenants:
            return _refused(403, "this tenant may not use this bot", tenant=tenant)
        auth.connector_factory = SimpleNamespace(create=lambda url, _audience: self._client(url))
        answer = await self._cloud.process_activity(auth, activity, self._on_turn)
        if answer is not None:
            return web.json_response(answer.body, status=answer.status)
        return web.Response(status=200)

    async def _on_turn(self, turn: TurnContext) -> None:
        activity = turn.activity
        if activity.type == ActivityTypes.invoke:
            await turn.send_activity(invoke_answer(activity))
        if activity.type in (ActivityTypes.conversation_update, ActivityTypes.installation_update):
            await self._installed(activity)
            return
        event = translate(activity)
        if event is None:
            return
        await self._seen(activity)
        self._answers.spawn(event, lambda reply: self._send(event, reply))

    async def _turn_failed(self, turn: TurnContext, error: Exception) -> None:
        log.error("teams_turn_failed", error=f"{type(error).__name__}: {error}"[:300], exc_info=error)
        if turn.activity.type == ActivityTypes.invoke and not turn.turn_state.get(self._cloud._INVOKE_RESPONSE_KEY):
            await turn.send_activity(invoke_answer(turn.activity))

    async def _installed(self, activity: Activity) -> None:
        bot = activity.recipient.id if activity.recipient else None
        removed = activity.action == "remove" or any(m.id == bot for m in activity.members_removed or ())
        if removed:
            if await self._conversations.gone(base_id(activity.conversation.id), "the bot was removed"):
                log.warning("teams_conversation_gone", conversation=base_id(activity.conversation.id),
                            reason="the bot was removed")
            return
        await self._seen(activity)
        log.info("teams_conversation_installed", conversation=base_id(activity.conversation.id),
                 type=activity.conversation.conversation_type)

    async def _seen(self, activity: Activity) -> None:
        """Store the conversation reference; an outage must not cost the user the answer."""
        data = activity.channel_data if isinstance(activity.channel_data, dict) else {}
        reference = TurnContext.get_conversation_reference(activity).serialize()
        reference.pop("activityId", None)
        reference["conversation"]["id"] = base_id(activity.conversation.id)
        conversation = Conversation(
            id=reference["conversation"]["id"], type=activity.conversation.conversation_type or "personal",
            tenant=tenant_of(activity), service_url=activity.service_url, reference=reference,
            team=_name(data.get("team")), channel=_name(data.get("channel")))
        try:
            await self._conversations.seen(conversation)
        except StoreError as exc:
            log.warning("teams_reference_not_saved", conversation=conversation.id, error=str(exc))

    # --- answering ---------------------------------------------------------------------------
    async def _answer(self, event: Event) -> list[Reply]:
        """What ``Answers`` runs once per delivery: typing and the core at once, an ack if it is slow."""
        typing = asyncio.ensure_future(self._quietly(self._typing(event)))
        work = asyncio.ensure_future(self._handle(await self._with_email(event)))
        try:
            replies = await asyncio.wait_for(asyncio.shield(work), self._ack_after)
        except TimeoutError:
            await typing
            lang = event.lang or "en"
            ack = await self._quietly(self.post(f"teams:{event.channel}", Reply(text=say(lang, "working"), lang=lang),
                                                thread=event.thread))
            replies = await work
            if ack is not None and replies and not replies[0].update and not replies[0].thread:
                replies = [replace(replies[0], update=ack.message_ref), *replies[1:]]  # the answer replaces the ack
        await typing  # the indicator goes out before the answer, never after it
        return replies

    async def _send(self, event: Event, reply: Reply) -> None:
        target = f"teams:{event.channel}"
        if reply.update:
            await self.update(target, reply.update, reply)
        else:
            # Teams has no message only one person sees: outside a personal chat, name the requester.
            mention = (event.user_id, event.user_name) if reply.ephemeral and event.kind != "dm" else None
            await self.post(target, reply, thread=reply.thread or event.thread, mention=mention)

    async def _typing(self, event: Event) -> None:
        conversation = await self._known(event.channel)
        to = f"{event.channel};messageid={event.thread}" if event.thread else event.channel
        await self._call("typing", conversation, lambda c: c.conversations.send_to_conversation(
            to, Activity(type=ActivityTypes.typing)))

    async def _with_email(self, event: Event) -> Event:
        """The user's e-mail as Teams itself knows it (member info), cached; never from the text."""
        cached = self._emails.get(event.user_id)
        if cached is None or cached[1] < time.monotonic():
            email = None
            try:
                conversation = await self._known(event.channel)
                raw = await self._call("member", conversation, lambda c: c.conversations.get_conversation_member(
                    conversation.id, event.user_id, raw=True))
                email = json.loads(raw.response.text or "{}").get("email") or None  # requests-style response
            except (DeliveryError, ValueError) as exc:
                log.info("teams_member_unknown", user=event.user_id, reason=str(exc)[:200])
            cached = self._emails[event.user_id] = (email, time.monotonic() + EMAIL_TTL)
        return replace(event, user_email=cached[0]) if cached[0] else event

    async def _quietly(self, sending: Any) -> Any:
        """A courtesy (typing, "working on it"): its result, or None when Teams did not take it."""
        try:
            return await sending
        except DeliveryError as exc:
            log.info("teams_courtesy_not_sent", reason=str(exc)[:200])
            return None

    # --- outbound ----------------------------------------------------------------------------
    async def _known(self, conversation_id: str) -> Conversation:
        conversation = await self._conversations.get(base_id(conversation_id))
        if conversation is None:
            raise DeliveryError(f"teams:{conversation_id}: conversation not known yet (install the bot there)",
                                reason="unknown_conversation")
        if conversation.gone:
            raise DeliveryError(f"teams:{conversation_id}: {conversation.gone}", permanent=True, reason="gone")
        return conversation

    async def _client(self, service_url: str) -> Any:
        """One SDK ConnectorClient (and HTTP session) per serviceUrl, for turns and sends alike."""
        client = self._clients.get(service_url)
        if client is None:
            client = self._clients[service_url] = await self._auth.connector_factory().create(service_url, None)
        return client

    async def _call(self, what: str, conversation: Conversation, op: Any) -> Any:
        client = await self._client(conversation.service_url)

        async def attempt() -> Any:
            try:
                return await op(client)
            except ErrorResponseException as exc:
                status, code = exc.response.status_code, _error_code(exc)
                if status == 403 or (status == 404 and what == "send"):
                    raise _Gone(f"{what}: {code or status}", permanent=True, reason=code or str(status)) from exc
                raise refusal(what, status, exc.response.headers, reason=code, transient=_TRANSIENT) from exc
            except (ClientRequestError, aiohttp.ClientError, TimeoutError) as exc:
                raise unreachable(what, exc) from exc

        try:
            return await paced(what, conversation.id, attempt, pacer=self._window, platform="teams")  # type: ignore[arg-type]
        except _Gone as exc:
            if await self._conversations.gone(conversation.id, f"removed from the conversation ({exc.reason})"):
                log.error("teams_conversation_gone", conversation=conversation.id, reason=exc.reason,
                          hint="install the bot there again, or route alerts elsewhere")
            raise


def _name(part: Any) -> str | None:
    """A team's or channel's name from channelData, when Teams sent one."""
    name = part.get("name") if isinstance(part, dict) else None
    return name if isinstance(name, str) and name else None


def _error_code(exc: ErrorResponseException) -> str | None:
    try:
        return exc.error.error.code or None
    except AttributeError:
        return None


def _refused(status: int, reason: str, **context: Any) -> web.Response:
    if status != 401:  # 401s are logged with their reason where they are decided
        log.warning("teams_request_rejected", status=status, reason=reason, **context)
    return web.json_response({"error": reason}, status=status)
