"""Slack in and out: slack-bolt's ``AsyncApp`` turned into ``Event``s, ``Reply``s sent at Slack's pace.

Inbound, HTTP mode: ``POST /slack/events`` carries events, slash commands and button presses. A
thin guard (``adapters/slack_http.py``) runs before bolt: signature first (401), then shape (400),
and the body is parsed once. Socket Mode (``SLACK_APP_TOKEN``) feeds the same bolt app over
slack-sdk's WebSocket client, which pings the link and reconnects on its own.

Every listener only acknowledges and hands the event to ``adapters/answers.py`` with a bound
``send``, so an ack never waits for TWS or the LLM; answers run a bounded number at a time, and
each delivery is answered once (``dedup:slack:<event id>``: Slack retries after 3 s, 1 min, 5 min).

Where answers go: mentions are answered in their thread, DMs in the DM, button presses in the
thread of the message that carried the button. Slash commands answer through their
``response_url``, which works in every channel and DM the command can be typed in, including those
the bot was never invited to (``chat.postMessage`` would fail there with ``not_in_channel``).
``Reply.update`` edits with ``chat.update`` (or the ``response_url`` for an ephemeral message,
which ``chat.update`` cannot touch); ``Reply.ephemeral`` goes to the requester alone. A button
pressed where the bot is not a member (under a slash command's answer) is answered through the
press's ``response_url`` when Slack says ``not_in_channel``.

Outbound (``adapters/sending.py``), every message waits for its channel's next slot (about one a
second, Slack's guidance), a 429 pushes that channel back by its ``Retry-After``, 5xx and network
errors are retried with jittered backoff, and a message that finally fails is logged as
``slack_post_failed`` with its reason (and raised as ``DeliveryError`` to the alerts outbox).
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import html
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import structlog
from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response
from slack_bolt.adapter.socket_mode.aiohttp import AsyncSocketModeHandler
from slack_bolt.app.async_app import AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from adapters.answers import Answers
from adapters.sending import Pacer, failed, paced, refusal, unreachable
from adapters.slack_blocks import base_action_id, escape, render
from adapters.slack_http import Rejected, SlackGuard
from adapters.slack_users import SlackEmails
from bot.config import SlackSettings
from bot.errors import DeliveryError
from bot.events import Event, EventKind, Handle, Posted, Reply
from bot.store import Store
from bot.texts import say

log = structlog.get_logger(__name__)

PATH = "/slack/events"
PACE = 1.0  # seconds between two messages to one channel
TIMEOUT = 10  # seconds per Web API call
USERS_TIMEOUT = 3.0  # seconds for users.info: the answer waits for it, once per user and hour
START_TIMEOUT = 10.0  # how long start() waits for the first Socket Mode link
SOCKET_PING = 10.0  # Socket Mode ping interval; 4 missed pongs and the link is replaced
# slack-sdk formats a debug line with the whole payload on every call unless its logger's own
# level (not the effective one) is above DEBUG: give it a logger that says so.
_SDK_LOG = logging.getLogger("adapters.slack.sdk")
_SDK_LOG.setLevel(logging.INFO)
_TRANSIENT = frozenset({"internal_error", "fatal_error", "service_unavailable", "request_timeout", "ratelimited"})
# Refusals that mean "the bot is not in that conversation": a response_url can still answer there.
_NOT_IN_CHANNEL = frozenset({"not_in_channel", "channel_not_found"})


@dataclass(frozen=True, slots=True, kw_only=True)
class _Route:
    """Where the answers to one inbound event go."""

    channel: str
    user: str
    thread: str | None = None  # default thread for answers
    response_url: str | None = None  # slash commands and button presses carry one
    by_response_url: bool = False  # slash commands answer through it
    source_ts: str | None = None  # the message that carried the pressed button
    ephemeral_source: bool = False  # ... which only the presser could see


class SlackAdapter:
    """The Slack side of Resync: inbound events to ``handle``, replies and alerts out (a Notifier)."""

    name = "slack"

    def __init__(self, settings: SlackSettings, *, handle: Handle, store: Store) -> None:
        self._settings = settings
        self._client = AsyncWebClient(token=settings.bot_token, base_url=settings.api_url or AsyncWebClient.BASE_URL,
                                      timeout=TIMEOUT, retry_handlers=[],  # retries are ours: adapters/sending.py
                                      logger=_SDK_LOG)
        self._guard = SlackGuard(settings.signing_secret)
        self._emails = SlackEmails(self._user_info)
        self._answers = Answers(self._identified(handle), store, platform="slack")
        self._pacer = Pacer(PACE)
        self._socket: AsyncSocketModeHandler | None = None
        # The guard verifies every HTTP request, and it must be the only check: bolt gets the
        # already-parsed body (see adapters/slack_http.py).
        _quiet_token_notice()
        self._bolt = AsyncApp(client=self._client, signing_secret=settings.signing_secret,
                              process_before_response=True, request_verification_enabled=False, name="resync")
        self._bolt.event("app_mention")(self._on_mention)
        self._bolt.event("message")(self._on_message)
        self._bolt.command(settings.command)(self._on_command)
        self._bolt.action(re.compile(r"^resync_"))(self._on_action)

    # --- lifecycle -----------------------------------------------------------------------
    def mount(self, app: web.Application) -> None:
        """Serve Slack's HTTP deliveries (events, commands, interactivity) on ``POST /slack/events``."""
        if not self._settings.signing_secret:
            log.warning("slack_http_disabled", reason="SLACK_SIGNING_SECRET is not set: every request gets 401")
        app.router.add_post(PATH, self._on_http)

    async def start(self) -> None:
        """Open the Socket Mode link when an app token is configured (HTTP mode needs nothing)."""
        if not self._settings.app_token or self._socket is not None:
            return
        self._session()
        self._socket = AsyncSocketModeHandler(self._bolt, self._settings.app_token, web_client=self._client,
                                              ping_interval=SOCKET_PING)
        connecting = asyncio.ensure_future(self._socket.connect_async())
        try:
            await asyncio.wait_for(asyncio.shield(connecting), START_TIMEOUT)
            log.info("slack_socket_connected")
        except TimeoutError:
            # slack-sdk keeps retrying in the background; healthy() tells when it made it
            log.warning("slack_socket_connecting", waited=START_TIMEOUT)

    async def healthy(self) -> bool:
        """False while Socket Mode has no live link (HTTP mode: always True)."""
        if self._socket is None:
            return True
        return await self._socket.client.is_connected()

    async def close(self) -> None:
        """Stop Socket Mode, let answers in flight finish (briefly), close the HTTP session."""
        if self._socket is not None:
            await self._socket.close_async()
            self._socket = None
        await self._answers.close()
        session = self._client.session
        if session is not None and not session.closed:
            await session.close()

    def _session(self) -> aiohttp.ClientSession:
        """One pooled session for every Web API and response_url call, made inside the loop."""
        if self._client.session is None or self._client.session.closed:
            self._client.session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=TIMEOUT))
        return self._client.session

    # --- Notifier --------------------------------------------------------------------------
    def handles(self, target: str) -> bool:
        return target.startswith("slack:") and len(target) > len("slack:")

    async def post(self, target: str, reply: Reply, *, thread: str | None = None) -> Posted:
        """Post a proactive message (an alert) to ``slack:<channel id>``; DeliveryError if Slack won't."""
        channel = target.removeprefix("slack:")
        thread = thread or reply.thread
        try:
            data = await self._call("chat.postMessage", channel=channel, thread_ts=thread,
                                    unfurl_links=False, unfurl_media=False, **render(reply))
        except DeliveryError as exc:
            failed("slack", channel, exc)
            raise
        return Posted(target=target, message_ref=str(data.get("ts", "")), thread=thread)

    async def update(self, target: str, message_ref: str, reply: Reply) -> None:
        channel = target.removeprefix("slack:")
        try:
            await self._call("chat.update", channel=channel, ts=message_ref, **render(reply))
        except DeliveryError as exc:
            failed("slack", channel, exc)
            raise

    async def upload(self, target: str, data: bytes, *, filename: str, title: str, comment: str | None = None) -> None:
        """Share a file (the digest's chart) in a channel with Slack's files upload v2
        (files.getUploadURLExternal, the upload URL, files.completeUploadExternal)."""
        channel = target.removeprefix("slack:")

        async def attempt() -> dict[str, Any]:
            self._session()
            try:
                response = await self._client.files_upload_v2(channel=channel, file=data, filename=filename,
                                                              title=title, initial_comment=comment)
            except SlackApiError as exc:
                body = exc.response.data if isinstance(exc.response.data, dict) else {}
                raise refusal("files.upload_v2", exc.response.status_code, exc.response.headers,
                              reason=body.get("error"), transient=_TRANSIENT) from exc
            except (aiohttp.ClientError, TimeoutError) as exc:
                raise unreachable("files.upload_v2", exc) from exc
            return response.data if isinstance(response.data, dict) else {}

        await paced("files.upload_v2", channel, attempt, pacer=self._pacer, platform="slack")

    # --- inbound ---------------------------------------------------------------------------
    def _identified(self, handle: Handle) -> Handle:
        """``handle`` for events that carry the user's e-mail, when Slack gives it (users.info)."""
        async def identified(event: Event) -> list[Reply]:
            email = await self._emails.of(event.user_id) if event.user_id else None
            return await handle(dataclasses.replace(event, user_email=email) if email else event)

        return identified

    async def _user_info(self, user_id: str) -> Any:
        self._session()
        async with asyncio.timeout(USERS_TIMEOUT):
            return (await self._client.users_info(user=user_id)).data

    async def _on_http(self, request: web.Request) -> web.StreamResponse:
        try:
            bolt_request = self._guard.accept(request.headers, request.content_type, await request.read(),
                                              request.query_string)
        except Rejected as why:
            log.warning("slack_request_rejected", status=why.status, reason=str(why),
                        retry=request.headers.get("X-Slack-Retry-Num"))
            return web.json_response({"error": str(why)}, status=why.status)
        self._session()
        response = await self._bolt.async_dispatch(bolt_request)
        if response.status == 404:
            # No listener for it (app_rate_limited, an event we never subscribed to): acknowledge,
            # or Slack retries it and eventually disables the app's event subscriptions.
            log.info("slack_unhandled", type=bolt_request.body.get("type"),
                     event_type=(bolt_request.body.get("event") or {}).get("type"))
            return web.Response(status=200)
        return await to_aiohttp_response(response)

    async def _on_mention(self, ack: Callable[..., Awaitable[Any]], body: dict[str, Any],
                          event: dict[str, Any], context: Any) -> None:
        await ack()
        if not _from_a_person(event):
            return
        thread = event.get("thread_ts") or event.get("ts")
        self._spawn(*_translate_message(body, event, context.bot_user_id, kind="message", thread=thread))

    async def _on_message(self, ack: Callable[..., Awaitable[Any]], body: dict[str, Any],
                          event: dict[str, Any], context: Any) -> None:
        await ack()
        # Only direct messages: channel messages reach the bot as app_mention events.
        if event.get("channel_type") != "im" or not _from_a_person(event):
            return
        self._spawn(*_translate_message(body, event, context.bot_user_id, kind="dm", thread=event.get("thread_ts")))

    async def _on_command(self, ack: Callable[..., Awaitable[Any]], command: dict[str, Any]) -> None:
        text = _unescape(command.get("text", "")).strip()
        working = say("en", "working_on", text=_escape(text)) if text else say("en", "working")
        await ack(text=f":hourglass_flowing_sand: {working}", response_type="ephemeral")
        channel, user = command.get("channel_id", ""), command.get("user_id", "")
        event = Event(platform="slack", workspace=command.get("team_id", ""), channel=channel, user_id=user,
                      user_name=command.get("user_name", ""), text=text, kind="command",
                      event_id=command.get("trigger_id"))
        self._spawn(event, _Route(channel=channel, user=user, response_url=command.get("response_url"),
                                  by_response_url=True))

    async def _on_action(self, ack: Callable[..., Awaitable[Any]], body: dict[str, Any]) -> None:
        await ack()
        self._spawn(*_translate_action(body))

    def _spawn(self, event: Event, route: _Route) -> None:
        self._answers.spawn(event, functools.partial(self._send, route))

    # --- outbound --------------------------------------------------------------------------
    async def _send(self, route: _Route, reply: Reply) -> None:
        """Deliver one reply to an inbound event, by the rules in the module docstring."""
        payload = render(reply)
        if route.by_response_url or (reply.update and route.ephemeral_source and reply.update == route.source_ts):
            await self._respond(route, _webhook_body(payload, reply))
            return
        try:
            await self._post(route, reply, payload)
        except DeliveryError as exc:
            if not route.response_url or exc.reason not in _NOT_IN_CHANNEL:
                raise
            await self._respond(route, _webhook_body(payload, reply))

    async def _post(self, route: _Route, reply: Reply, payload: dict[str, Any]) -> None:
        thread = reply.thread or route.thread
        if reply.update:
            await self._call("chat.update", channel=route.channel, ts=reply.update, **payload)
        elif reply.ephemeral:
            await self._call("chat.postEphemeral", channel=route.channel, user=route.user,
                             thread_ts=thread, **payload)
        else:
            await self._call("chat.postMessage", channel=route.channel, thread_ts=thread,
                             unfurl_links=False, unfurl_media=False, **payload)

    async def _call(self, method: str, **params: Any) -> dict[str, Any]:
        """One Web API method to ``params["channel"]``, paced and retried; its data, or DeliveryError."""
        params = {k: v for k, v in params.items() if v is not None}

        async def attempt() -> dict[str, Any]:
            self._session()
            try:
                response = await self._client.api_call(method, json=params)
            except SlackApiError as exc:
                data = exc.response.data if isinstance(exc.response.data, dict) else {}
                raise refusal(method, exc.response.status_code, exc.response.headers, reason=data.get("error"),
                              transient=_TRANSIENT) from exc
            except (aiohttp.ClientError, TimeoutError) as exc:
                raise unreachable(method, exc) from exc
            return response.data if isinstance(response.data, dict) else {}

        return await paced(method, params["channel"], attempt, pacer=self._pacer, platform="slack")

    async def _respond(self, route: _Route, body: dict[str, Any]) -> None:
        """Answer through the event's response_url (valid 30 minutes, 5 uses)."""
        if not route.response_url:
            raise DeliveryError("response_url: missing", permanent=True, reason="missing")
        webhook = AsyncWebhookClient(route.response_url, timeout=TIMEOUT, session=self._session(), retry_handlers=[],
                                     logger=_SDK_LOG)

        async def attempt() -> None:
            try:
                response = await webhook.send_dict(body)
            except (aiohttp.ClientError, TimeoutError) as exc:
                raise unreachable("response_url", exc) from exc
            if response.status_code != 200:
                raise refusal("response_url", response.status_code, response.headers,
                              reason=(response.body or "")[:80] or None, transient=_TRANSIENT)

        await paced("response_url", route.channel, attempt, pacer=self._pacer, platform="slack")


# --- translation: Slack payloads -> Event ------------------------------------------------

_MENTION = re.compile(r"<@([A-Z0-9]+)(?:\|[^>]*)?>")


def _from_a_person(event: dict[str, Any]) -> bool:
    """Not a bot (ourselves included), not an edit, join or other message subtype."""
    user, channel = event.get("user"), event.get("channel")
    return (isinstance(user, str) and bool(user) and isinstance(channel, str) and bool(channel)
            and not event.get("bot_id") and not event.get("subtype"))


def _translate_message(body: dict[str, Any], event: dict[str, Any], bot_user_id: str | None, *, kind: EventKind,
                       thread: str | None) -> tuple[Event, _Route]:
    channel, user = event["channel"], event["user"]
    text = event.get("text") or ""
    if bot_user_id:
        text = text.replace(f"<@{bot_user_id}>", "")
        if f"<@{bot_user_id}|" in text:  # a mention may carry a name: <@U0BOT|resync>
            text = _MENTION.sub(lambda m: "" if m[1] == bot_user_id else m[0], text)
    translated = Event(platform="slack", workspace=body.get("team_id") or "", channel=channel, user_id=user,
                       text=_unescape(text).strip(), kind=kind,
                       thread=thread, event_id=body.get("event_id"))
    return translated, _Route(channel=channel, user=user, thread=thread)


def _translate_action(body: dict[str, Any]) -> tuple[Event, _Route]:
    action = body["actions"][0]
    container = body.get("container") or {}
    message = body.get("message") or {}
    user = body.get("user") or {}
    channel = (body.get("channel") or {}).get("id") or container.get("channel_id") or ""
    ts = message.get("ts") or container.get("message_ts")
    thread = message.get("thread_ts") or container.get("thread_ts") or ts
    value = action.get("value") or (action.get("selected_option") or {}).get("value")
    team = body.get("team")
    team_id = team.get("id") if isinstance(team, dict) else team
    event = Event(platform="slack", workspace=team_id or user.get("team_id") or "",
                  channel=channel, user_id=user.get("id") or "", user_name=user.get("username") or user.get("name") or "",
                  kind="action", action_id=base_action_id(action["action_id"]), action_value=value,
                  message_ref=ts, thread=thread, event_id=body.get("trigger_id"))
    return event, _Route(channel=channel, user=event.user_id, thread=thread, response_url=body.get("response_url"),
                         source_ts=ts, ephemeral_source=bool(container.get("is_ephemeral")))


def _unescape(text: str) -> str:
    """Slack sends ``&``, ``<`` and ``>`` typed by people as entities; the core wants plain text."""
    return html.unescape(text) if "&" in text else text


def _escape(text: str) -> str:
    return escape(text).replace("`", "'")


def _webhook_body(payload: dict[str, Any], reply: Reply) -> dict[str, Any]:
    """A response_url message: an update replaces the original (keeping who can see it), anything
    else is a new message, visible to the channel unless ephemeral."""
    if reply.update:
        return {**payload, "replace_original": True}
    return {**payload, "response_type": "ephemeral" if reply.ephemeral else "in_channel", "replace_original": False}


class _TokenNotice(logging.Filter):
    """Bolt reads SLACK_BOT_TOKEN from the environment on its own and then warns that the client
    we give it wins ("`token` will be unused"): true, intended, and noise at every start."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "will be unused" not in record.getMessage()


_TOKEN_NOTICE = _TokenNotice()


def _quiet_token_notice() -> None:
    bolt_log = logging.getLogger("slack_bolt.AsyncApp")
    if _TOKEN_NOTICE not in bolt_log.filters:
        bolt_log.addFilter(_TOKEN_NOTICE)
