"""Slack in and out: slack-bolt's ``AsyncApp`` turned into ``Event``s, ``Reply``s sent at Slack's pace.

Inbound, HTTP mode: ``POST /slack/events`` carries events, slash commands and button presses. A
thin guard runs before bolt: the signature is checked first (bad, stale or missing: 401), then the
payload's shape (not JSON, missing fields, unexpected content type: 400), so nothing reaches bolt
or the core unless Slack sent it and it is whole. Socket Mode (``SLACK_APP_TOKEN``) feeds the same
bolt app over slack-sdk's WebSocket client, which pings the link and reconnects on its own.

Every listener only acknowledges and starts a background task, so an ack never waits for TWS or
the LLM; the task drops deliveries already seen (``dedup:slack:<event id>`` in the store: Slack
retries after 3 s, 1 min and 5 min), runs ``handle`` and sends each reply.

Where answers go: mentions are answered in their thread, DMs in the DM, button presses in the
thread of the message that carried the button. Slash commands answer through their
``response_url``, which works in every channel and DM the command can be typed in, including those
the bot was never invited to (``chat.postMessage`` would fail there with ``not_in_channel``).
``Reply.update`` edits with ``chat.update`` (or the ``response_url`` for an ephemeral message,
which ``chat.update`` cannot touch); ``Reply.ephemeral`` goes to the requester alone. A button
pressed where the bot is not a member (under a slash command's answer) is answered through the
press's ``response_url`` when Slack says ``not_in_channel``.

Outbound, every message waits for its channel's next slot (about one a second, Slack's guidance),
a 429 pushes that channel back by its ``Retry-After``, 5xx and network errors are retried with
jittered backoff, and a message that finally fails is logged as ``slack_post_failed`` with its
reason (and raised as ``DeliveryError`` to the alerts outbox, which retries later).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import html
import json
import logging
import random
import re
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode

import aiohttp
import structlog
from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response
from slack_bolt.adapter.socket_mode.aiohttp import AsyncSocketModeHandler
from slack_bolt.app.async_app import AsyncApp
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from adapters.slack_blocks import base_action_id, escape, render
from bot.config import SlackSettings
from bot.errors import DeliveryError
from bot.events import Event, EventKind, Handle, Posted, Reply
from bot.logs import bind_correlation
from bot.store import Store
from bot.texts import say

log = structlog.get_logger(__name__)

PATH = "/slack/events"
DEDUP_TTL = 86_400.0  # Slack's last retry comes after about 5 minutes; a day is plenty
SIGNATURE_AGE = 300  # seconds: Slack's rule for stale requests
PACE = 1.0  # seconds between two messages to one channel
ATTEMPTS = 4  # per outbound message
BACKOFF = 0.25  # first retry delay for 5xx and network errors, doubled each time, full jitter
TIMEOUT = 10  # seconds per Web API call
START_TIMEOUT = 10.0  # how long start() waits for the first Socket Mode link
DRAIN_TIMEOUT = 10.0  # how long close() lets answers in flight finish
SOCKET_PING = 10.0  # Socket Mode ping interval; 4 missed pongs and the link is replaced
_TRANSIENT = frozenset({"internal_error", "fatal_error", "service_unavailable", "request_timeout", "ratelimited"})
# Refusals that mean "the bot is not in that conversation": a response_url can still answer there.
_NOT_IN_CHANNEL = frozenset({"not_in_channel", "channel_not_found"})


class SlackRefused(DeliveryError):
    """Slack (or the way to it) did not take a call; ``reason`` is its error code."""

    def __init__(self, what: str, reason: str, *, retry_after: float | None = None, permanent: bool = False) -> None:
        super().__init__(f"{what}: {reason}", retry_after=retry_after, permanent=permanent)
        self.reason = reason


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


class _Pacer:
    """Per-channel send slots ``interval`` apart; a 429 blocks the channel until it may send.

    One event loop, no awaits between reading and writing a slot: no lock is needed.
    """

    def __init__(self, interval: float) -> None:
        self._interval = interval
        self._next: dict[str, float] = {}
        self._blocked: dict[str, float] = {}

    async def wait(self, channel: str) -> None:
        loop = asyncio.get_running_loop()
        while True:
            now = loop.time()
            slot = max(now, self._next.get(channel, now), self._blocked.get(channel, now))
            self._next[channel] = slot + self._interval
            await asyncio.sleep(slot - now)
            if self._blocked.get(channel, 0.0) <= loop.time():  # no 429 arrived while we slept
                break
        if len(self._next) > 10_000:
            self._forget(loop.time())

    def block(self, channel: str, seconds: float) -> None:
        until = asyncio.get_running_loop().time() + seconds
        self._blocked[channel] = max(until, self._blocked.get(channel, 0.0))

    def _forget(self, now: float) -> None:
        self._next = {k: v for k, v in self._next.items() if v > now}
        self._blocked = {k: v for k, v in self._blocked.items() if v > now}


class SlackAdapter:
    """The Slack side of Resync: inbound events to ``handle``, replies and alerts out (a Notifier)."""

    def __init__(self, settings: SlackSettings, *, handle: Handle, store: Store) -> None:
        self._settings = settings
        self._handle = handle
        self._store = store
        self._client = AsyncWebClient(token=settings.bot_token, base_url=settings.api_url or AsyncWebClient.BASE_URL,
                                      timeout=TIMEOUT, retry_handlers=[])  # retries are ours: see _retrying
        self._secret = settings.signing_secret.encode()
        self._pacer = _Pacer(PACE)
        self._tasks: set[asyncio.Task[None]] = set()
        self._socket: AsyncSocketModeHandler | None = None
        # The guard below verifies every HTTP request, and it must be the only check: bolt would
        # refuse the re-encoded slash-command bodies _bolt_request builds.
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
        if not self._secret:
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
        if self._tasks:
            _, pending = await asyncio.wait(set(self._tasks), timeout=DRAIN_TIMEOUT)
            if pending:
                log.warning("slack_replies_abandoned", count=len(pending), waited=DRAIN_TIMEOUT)
            for task in pending:
                task.cancel()
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
            _failed(channel, exc)
            raise
        return Posted(target=target, message_ref=str(data.get("ts", "")), thread=thread)

    async def update(self, target: str, message_ref: str, reply: Reply) -> None:
        channel = target.removeprefix("slack:")
        try:
            await self._call("chat.update", channel=channel, ts=message_ref, **render(reply))
        except DeliveryError as exc:
            _failed(channel, exc)
            raise

    # --- inbound ---------------------------------------------------------------------------
    async def _on_http(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        if not self._signed(request.headers, body):
            log.warning("slack_request_rejected", status=401, retry=request.headers.get("X-Slack-Retry-Num"))
            return web.json_response({"error": "invalid signature"}, status=401)
        parsed = _parse(request.content_type, body)
        if isinstance(parsed, str):
            log.warning("slack_request_rejected", status=400, reason=parsed)
            return web.json_response({"error": parsed}, status=400)
        self._session()
        response = await self._bolt.async_dispatch(_bolt_request(request, body, parsed))
        return await to_aiohttp_response(response)

    def _signed(self, headers: Mapping[str, str], body: bytes) -> bool:
        """Slack's v0 signature over the raw bytes (even bytes that are not UTF-8), at most 5 min old."""
        timestamp, signature = headers.get("X-Slack-Request-Timestamp", ""), headers.get("X-Slack-Signature", "")
        if not self._secret or not timestamp.isdigit() or abs(time.time() - int(timestamp)) > SIGNATURE_AGE:
            return False
        digest = hmac.new(self._secret, b"v0:" + timestamp.encode() + b":" + body, hashlib.sha256).hexdigest()
        return hmac.compare_digest(f"v0={digest}", signature)

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
        await ack(text=f":hourglass_flowing_sand: Working on `{_escape(text)}`…" if text else
                  ":hourglass_flowing_sand: Working on it…", response_type="ephemeral")
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
        task = asyncio.ensure_future(self._process(event, route))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _process(self, event: Event, route: _Route) -> None:
        """One delivery from Slack, in the background: the entry point that never crashes."""
        bind_correlation(platform="slack", slack_event=event.event_id, channel=event.channel, kind=event.kind)
        try:
            if event.event_id and not await self._store.claim(f"dedup:slack:{event.event_id}", DEDUP_TTL):
                log.info("slack_duplicate_dropped", event_id=event.event_id)
                return
            replies = await self._handle(event)
        except Exception:  # noqa: BLE001 - the catch-all of this entry point: log, answer politely
            ref = uuid.uuid4().hex[:8]
            log.exception("slack_handler_failed", ref=ref)
            replies = [Reply(text=say(event.lang or "en", "internal_error", ref=ref), ephemeral=True, level="error")]
        for reply in replies:
            try:
                await self._send(route, reply)
            except DeliveryError as exc:
                _failed(route.channel, exc)  # nobody is left to tell but the log
            except Exception:  # noqa: BLE001 - same entry point: a bug in one reply spares the others
                log.exception("slack_post_failed", channel=route.channel, reason="bug")

    # --- outbound --------------------------------------------------------------------------
    async def _send(self, route: _Route, reply: Reply) -> None:
        """Deliver one reply to an inbound event, by the rules in the module docstring."""
        payload = render(reply)
        if route.by_response_url or (reply.update and route.ephemeral_source and reply.update == route.source_ts):
            await self._respond(route, _webhook_body(payload, reply))
            return
        try:
            await self._post(route, reply, payload)
        except SlackRefused as exc:
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
                raise _refusal(method, exc.response.status_code, data.get("error"), exc.response.headers) from exc
            except (aiohttp.ClientError, TimeoutError) as exc:
                raise SlackRefused(method, type(exc).__name__) from exc
            return response.data if isinstance(response.data, dict) else {}

        return await self._retrying(method, params["channel"], attempt)

    async def _respond(self, route: _Route, body: dict[str, Any]) -> None:
        """Answer through the event's response_url (valid 30 minutes, 5 uses)."""
        if not route.response_url:
            raise SlackRefused("response_url", "missing", permanent=True)
        webhook = AsyncWebhookClient(route.response_url, timeout=TIMEOUT, session=self._session(), retry_handlers=[])

        async def attempt() -> dict[str, Any]:
            try:
                response = await webhook.send_dict(body)
            except (aiohttp.ClientError, TimeoutError) as exc:
                raise SlackRefused("response_url", type(exc).__name__) from exc
            if response.status_code != 200:
                raise _refusal("response_url", response.status_code, (response.body or "")[:80], response.headers)
            return {}

        await self._retrying("response_url", route.channel, attempt)

    async def _retrying(self, what: str, channel: str,
                        attempt: Callable[[], Awaitable[dict[str, Any]]]) -> dict[str, Any]:
        for number in range(1, ATTEMPTS + 1):
            await self._pacer.wait(channel)
            try:
                return await attempt()
            except DeliveryError as exc:
                if exc.permanent or number == ATTEMPTS:
                    raise
                if exc.retry_after is not None:
                    self._pacer.block(channel, exc.retry_after)  # the next wait() honours it
                    delay = exc.retry_after
                else:
                    delay = random.uniform(0, BACKOFF * 2 ** (number - 1))
                log.warning("slack_call_retry", call=what, channel=channel, reason=str(exc), attempt=number,
                            delay=round(delay, 3))
                if exc.retry_after is None:
                    await asyncio.sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover


# --- translation: Slack payloads -> Event ------------------------------------------------

_MENTION = re.compile(r"<@([A-Z0-9]+)(?:\|[^>]*)?>")


def _from_a_person(event: dict[str, Any]) -> bool:
    """Not a bot (ourselves included), not an edit, join or other message subtype."""
    return bool(event.get("user")) and not event.get("bot_id") and not event.get("subtype") and bool(
        event.get("channel"))


def _translate_message(body: dict[str, Any], event: dict[str, Any], bot_user_id: str | None, *, kind: EventKind,
                       thread: str | None) -> tuple[Event, _Route]:
    channel, user = event["channel"], event["user"]
    text = _MENTION.sub(lambda m: "" if m[1] == bot_user_id else m[0], event.get("text", ""))
    translated = Event(platform="slack", workspace=body.get("team_id", ""), channel=channel, user_id=user,
                       text=_unescape(text).strip(), kind=kind,
                       thread=thread, event_id=body.get("event_id"))
    return translated, _Route(channel=channel, user=user, thread=thread)


def _translate_action(body: dict[str, Any]) -> tuple[Event, _Route]:
    action = body["actions"][0]
    container = body.get("container") or {}
    message = body.get("message") or {}
    user = body.get("user") or {}
    channel = (body.get("channel") or {}).get("id") or container.get("channel_id", "")
    ts = message.get("ts") or container.get("message_ts")
    thread = message.get("thread_ts") or container.get("thread_ts") or ts
    value = action.get("value") or (action.get("selected_option") or {}).get("value")
    event = Event(platform="slack", workspace=(body.get("team") or {}).get("id") or user.get("team_id", ""),
                  channel=channel, user_id=user.get("id", ""), user_name=user.get("username") or user.get("name", ""),
                  kind="action", action_id=base_action_id(action.get("action_id", "")), action_value=value,
                  message_ref=ts, thread=thread, event_id=body.get("trigger_id"))
    return event, _Route(channel=channel, user=event.user_id, thread=thread, response_url=body.get("response_url"),
                         source_ts=ts, ephemeral_source=bool(container.get("is_ephemeral")))


def _unescape(text: str) -> str:
    """Slack sends ``&``, ``<`` and ``>`` typed by people as entities; the core wants plain text."""
    return html.unescape(text) if "&" in text else text


def _escape(text: str) -> str:
    return escape(text).replace("`", "'")


def _failed(channel: str, exc: DeliveryError) -> None:
    """Log a message Slack finally did not take, after our retries: never dropped silently."""
    log.error("slack_post_failed", channel=channel, reason=str(exc), permanent=exc.permanent,
              retry_after=exc.retry_after)


def _refusal(what: str, status: int, error: str | None, headers: Mapping[str, Any]) -> SlackRefused:
    """Slack's answer as a DeliveryError: rate limit (retry_after), transient, or permanent."""
    if status == 429 or error == "ratelimited":
        return SlackRefused(what, "ratelimited", retry_after=_retry_after(headers))
    reason = error or f"HTTP {status}"
    return SlackRefused(what, reason, permanent=status < 500 and reason not in _TRANSIENT)


def _webhook_body(payload: dict[str, Any], reply: Reply) -> dict[str, Any]:
    """A response_url message: an update replaces the original (keeping who can see it), anything
    else is a new message, visible to the channel unless ephemeral."""
    if reply.update:
        return {**payload, "replace_original": True}
    return {**payload, "response_type": "ephemeral" if reply.ephemeral else "in_channel", "replace_original": False}


def _retry_after(headers: Mapping[str, Any]) -> float:
    value = next((v for k, v in headers.items() if k.lower() == "retry-after"), "1")
    value = value[0] if isinstance(value, list) else value
    try:
        return max(0.0, float(value))
    except ValueError:
        return 1.0


# --- the guard in front of bolt ------------------------------------------------------------

_FORM = "application/x-www-form-urlencoded"
_COMMAND_FIELDS = ("command", "team_id", "channel_id", "user_id")


def _parse(content_type: str, body: bytes) -> dict[str, Any] | str:
    """The payload Slack sent, or why it is malformed (then the answer is 400)."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return "body is not UTF-8"
    if content_type == "application/json":
        return _json_object(text, "body") if text else "empty body"
    if content_type != _FORM:
        return f"unexpected content type {content_type or 'none'}"
    form = dict(parse_qsl(text, keep_blank_values=True))
    if "payload" in form:
        return _json_object(form["payload"], "payload")
    if "command" in form:
        missing = [f for f in _COMMAND_FIELDS if not form.get(f)]
        return f"slash command without {', '.join(missing)}" if missing else form
    return form if "ssl_check" in form else "form without payload or command"


def _json_object(text: str, what: str) -> dict[str, Any] | str:
    try:
        payload = json.loads(text)
    except ValueError:
        return f"{what} is not JSON"
    if not isinstance(payload, dict) or not isinstance(payload.get("type"), str):
        return f"{what} has no type"
    kind = payload["type"]
    if kind == "url_verification" and not isinstance(payload.get("challenge"), str):
        return "url_verification without challenge"
    if kind == "event_callback":
        event = payload.get("event")
        if not isinstance(event, dict) or not isinstance(event.get("type"), str):
            return "event_callback without event"
    if kind == "block_actions":
        actions = payload.get("actions")
        if not isinstance(actions, list) or not actions or not isinstance(payload.get("user"), dict):
            return "block_actions without actions or user"
    return payload


def _bolt_request(request: web.Request, body: bytes, parsed: dict[str, Any]) -> AsyncBoltRequest:
    """Bolt's request for an already verified body.

    bolt parses any form body containing the word "payload" as an interactivity payload, so
    ``/tws log payload_load`` would reach it empty and be dropped; such a command is re-encoded
    with that word percent-escaped, which decodes to the same text.
    """
    text = body.decode("utf-8")
    if "command" in parsed and "payload" in text:
        text = urlencode(parsed).replace("payload", "p%61yload")
    return AsyncBoltRequest(body=text, query=request.query_string, headers=dict(request.headers))


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
