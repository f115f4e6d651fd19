"""Teams in and out: botbuilder's ``CloudAdapter`` behind a guard, Activities turned into
``Event``s, ``Reply``s sent as Adaptive Cards at Teams' pace. Every botbuilder import of Resync is
in this file (the SDK is archived upstream; moving to its successor is a change here only).

Inbound, ``POST /api/messages``. Before anything runs: a body that is not JSON gets 415, JSON that
is not an Activity (or asks ``deliveryMode: expectReplies``) 400. Then the SDK validates the bearer
token (``ConfigurationBotFrameworkAuthentication``: signature against the published keys, issuer,
audience = ``MicrosoftAppId``, expiry, the key's endorsement for the activity's channel), and the
token's ``serviceurl`` claim must equal the activity's ``serviceUrl``, so a valid token can never
steer replies, and the bot's outbound token, to another host. Any failure there is 401: the SDK
signals bad tokens with assorted exceptions (``PermissionError``, jwt's ``DecodeError`` and
``ExpiredSignatureError``, ``AttributeError``...), which would otherwise surface as 500. A tenant
outside ``TEAMS_ALLOWED_TENANTS`` gets 403. Nothing runs for any of these.

The turn itself only stores the conversation reference (``adapters.teams_conversations``), answers
an ``invoke`` at once (never the SDK's 501, which Teams shows as "Unable to reach app") and hands
the event to ``Answers``, which claims it once (``dedup:teams:<activity id>``; a card submission
by ``card:<nonce, action, value, user, 10-minute window>``, because Teams redelivers a submit with
a new activity id), then shows the typing indicator, runs the core and sends the replies. When the
core takes more than ``ACK_AFTER`` seconds, a "working on it" goes out first. Teams' 15 s window is
never at stake: the HTTP answer does not wait for the core.

Where answers go: a channel message is answered in its reply chain, personal and group chats in
place; ``Reply.update`` rewrites a card (``update_activity``), which is how a confirmation card
loses its buttons. Outbound calls use one SDK ``ConnectorClient`` per ``serviceUrl``, within Teams'
per-conversation limits (``_Window``: 7 a second, 60 in 30 s), retried on 429 (``Retry-After``),
412, 502 and 504 with full-jitter backoff (``adapters.sending``). A conversation the bot was removed
from (403, or 404 on a post) is marked gone and reported once.
"""

from __future__ import annotations

import asyncio
import hashlib
import html
import json
import re
import time
from collections import deque
from dataclasses import replace
from types import SimpleNamespace
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import structlog
from aiohttp import web
from botbuilder.core import InvokeResponse, TurnContext
from botbuilder.integration.aiohttp import (
    CloudAdapter, ConfigurationBotFrameworkAuthentication, ConfigurationServiceClientCredentialFactory,
)
from botbuilder.schema import Activity, ActivityTypes, DeliveryModes, ErrorResponseException
from botframework.connector.auth import (
    AuthenticateRequestResult, AuthenticationConstants, GovernmentConstants, JwtTokenExtractor,
    ServiceClientCredentialsFactory,
)
from msrest.exceptions import ClientRequestError

from adapters.answers import Answers
from adapters.sending import paced, refusal, unreachable
from adapters.teams_cards import render
from adapters.teams_conversations import Conversation, Conversations, base_id, thread_of
from bot.config import TeamsSettings
from bot.errors import DeliveryError, StoreError
from bot.events import Event, Handle, Posted, Reply
from bot.store import Store
from bot.texts import say

log = structlog.get_logger(__name__)

PATH = "/api/messages"
ACK_AFTER = 3.0  # seconds of core work before "working on it" is sent
KEYS_EVERY = 1200.0  # refresh signing keys and the outbound token off the event loop this often
CARD_WINDOW = 600  # seconds: the same card submission within one window is one delivery
EMAIL_TTL = 3600.0
_TRANSIENT = frozenset({412, 502, 504})  # besides 429 and other 5xx: Teams' documented retryables
_AT = re.compile(r"<at[^>]*>(.*?)</at>", re.IGNORECASE | re.DOTALL)


class _Window:
    """Per-conversation send slots within Teams' limits: at most 7 in any second and 60 in any 30 s.

    A 429 blocks the conversation for its ``Retry-After``. One event loop and no await between
    checking and taking a slot, so no lock.
    """

    LIMITS = ((1.0, 7), (30.0, 60))

    def __init__(self) -> None:
        self._sent: dict[str, deque[float]] = {}
        self._blocked: dict[str, float] = {}

    async def wait(self, key: str) -> None:
        loop = asyncio.get_running_loop()
        while True:
            now = loop.time()
            sent = self._sent.setdefault(key, deque())
            while sent and sent[0] <= now - 30.0:
                sent.popleft()
            delay = self._blocked.get(key, now) - now
            for span, most in self.LIMITS:
                recent = [t for t in sent if t > now - span]
                if len(recent) >= most:
                    delay = max(delay, recent[-most] + span - now)
            if delay <= 0:
                sent.append(now)
                if len(self._sent) > 10_000:
                    self._sent = {k: v for k, v in self._sent.items() if v and v[-1] > now - 30.0}
                return
            await asyncio.sleep(delay)

    def block(self, key: str, seconds: float) -> None:
        until = asyncio.get_running_loop().time() + seconds
        self._blocked[key] = max(until, self._blocked.get(key, 0.0))


class _Gone(DeliveryError):
    """The connector says the bot is no longer in that conversation (403, or 404 on a post)."""


class _ReusedCredentials(ServiceClientCredentialsFactory):
    """botbuilder makes new credentials (a new MSAL client, an empty token cache) for every
    connector; one per app id, scope and endpoint means the token is fetched about once an hour."""

    def __init__(self, inner: ServiceClientCredentialsFactory) -> None:
        self._inner = inner
        self._made: dict[tuple[Any, ...], Any] = {}

    async def is_valid_app_id(self, app_id: str) -> bool:
        return await self._inner.is_valid_app_id(app_id)

    async def is_authentication_disabled(self) -> bool:
        return await self._inner.is_authentication_disabled()

    async def create_credentials(self, app_id: str, oauth_scope: str, login_endpoint: str,
                                 validate_authority: bool) -> Any:
        key = (app_id, oauth_scope, login_endpoint, validate_authority)
        if key not in self._made:
            self._made[key] = await self._inner.create_credentials(*key)
        return self._made[key]


class _Authentication(ConfigurationBotFrameworkAuthentication):
    """The SDK's, except that the user-token client (its own HTTP session, unused by Resync) is
    built once instead of on every turn."""

    _user_tokens: Any = None

    async def create_user_token_client(self, claims_identity: Any) -> Any:
        if self._user_tokens is None:
            self._user_tokens = await super().create_user_token_client(claims_identity)
        return self._user_tokens


class TeamsAdapter:
    """The Teams side of Resync: activities to ``handle``, replies and alerts out (a Notifier)."""

    name = "teams"

    def __init__(self, settings: TeamsSettings, *, handle: Handle, store: Store, ack_after: float = ACK_AFTER) -> None:
        self._settings = settings
        self._ack_after = ack_after
        self._handle = handle
        config = _sdk_configuration(settings)
        self._credentials = _ReusedCredentials(ConfigurationServiceClientCredentialFactory(config))
        self._auth = _Authentication(config, credentials_factory=self._credentials)
        self._cloud = CloudAdapter(self._auth)
        self._cloud.on_turn_error = self._turn_failed
        self._conversations = Conversations(store)
        self._answers = Answers(self._answer, store, platform="teams")
        self._window = _Window()
        self._clients: dict[str, Any] = {}  # serviceUrl -> ConnectorClient
        self._emails: dict[str, tuple[str | None, float]] = {}
        self._warm: asyncio.Task[None] | None = None

    # --- lifecycle -----------------------------------------------------------------------
    def mount(self, app: web.Application) -> None:
        app.router.add_post(PATH, self._on_http)

    async def start(self) -> None:
        """Fetch the signing keys (and the outbound token) now and every ``KEYS_EVERY``, in a
        thread: the SDK fetches them with blocking calls, which must not stall the event loop."""
        await self._refresh()
        self._warm = asyncio.ensure_future(self._keep_warm())

    async def healthy(self) -> bool:
        return True

    async def close(self) -> None:
        if self._warm is not None:
            self._warm.cancel()
        await self._answers.close()
        for client in self._clients.values():
            await client.__aexit__(None, None, None)
        self._clients.clear()

    async def _keep_warm(self) -> None:
        while True:
            await asyncio.sleep(KEYS_EVERY)
            await self._refresh()

    async def _refresh(self) -> None:
        metadata = JwtTokenExtractor.get_open_id_metadata(_metadata_url(self._settings))
        try:
            await asyncio.to_thread(asyncio.run, metadata._refresh())  # noqa: SLF001 - see start()
            credentials = await self._credentials.create_credentials(
                self._settings.app_id, self._settings.oauth_scope or AuthenticationConstants.TO_CHANNEL_FROM_BOT_OAUTH_SCOPE,
                self._settings.login_url or AuthenticationConstants.TO_CHANNEL_FROM_BOT_LOGIN_URL,
                self._settings.validate_authority)
            await asyncio.to_thread(credentials.get_access_token)
        except Exception as exc:  # noqa: BLE001 - requests/MSAL errors: retried at the next refresh
            log.warning("teams_keys_refresh_failed", error=f"{type(exc).__name__}: {exc}"[:300])

    # --- Notifier --------------------------------------------------------------------------
    def handles(self, target: str) -> bool:
        return target.startswith("teams:") and len(target) > len("teams:")

    async def post(self, target: str, reply: Reply, *, thread: str | None = None) -> Posted:
        """Post to ``teams:<conversation id>`` (in the reply chain ``thread`` of a channel)."""
        conversation = await self._known(target.removeprefix("teams:"))
        in_channel = conversation.type == "channel"
        to = f"{conversation.id};messageid={thread}" if in_channel and thread else conversation.id
        activity = Activity.deserialize(render(reply))
        sent = await self._call("send", conversation, lambda c: c.conversations.send_to_conversation(to, activity))
        message_id = getattr(sent, "id", None) or ""
        return Posted(target=target, message_ref=message_id, thread=(thread or message_id) if in_channel else None)

    async def update(self, target: str, message_ref: str, reply: Reply) -> None:
        conversation = await self._known(target.removeprefix("teams:"))
        activity = Activity.deserialize({**render(reply), "id": message_ref})
        await self._call("update", conversation,
                         lambda c: c.conversations.update_activity(conversation.id, message_ref, activity))

    # --- inbound -----------------------------------------------------------------------------
    async def _on_http(self, request: web.Request) -> web.Response:
        try:
            if request.content_type != "application/json":
                raise ValueError
            body = await request.json()
        except ValueError:
            return _refused(415, "the body must be a JSON Activity (application/json)")
        activity, problem = _parse(body)
        if activity is None:
            return _refused(400, problem)
        auth = await self._authenticate(activity, request.headers.get("Authorization", ""))
        if auth is None:
            return _refused(401, "missing or invalid bearer token")
        tenant = _tenant(activity)
        if self._settings.allowed_tenants and tenant not in self._settings.allowed_tenants:
            return _refused(403, "this tenant may not use this bot", tenant=tenant)
        auth.connector_factory = SimpleNamespace(create=lambda url, _audience: self._client(url))
        answer = await self._cloud.process_activity(auth, activity, self._on_turn)
        if answer is not None:
            return web.json_response(answer.body, status=answer.status)
        return web.Response(status=200)

    async def _authenticate(self, activity: Activity, header: str) -> AuthenticateRequestResult | None:
        if not header.startswith("Bearer ") or len(header) < 20:
            log.warning("teams_request_rejected", status=401, reason="no bearer token")
            return None
        try:
            result = await self._auth.authenticate_request(activity, header)
        except Exception as exc:  # noqa: BLE001 - the SDK's many ways of saying "bad token": all 401
            log.warning("teams_request_rejected", status=401, reason=f"{type(exc).__name__}: {exc}"[:200])
            return None
        identity = result.claims_identity
        claimed = identity.claims.get(AuthenticationConstants.SERVICE_URL_CLAIM) if identity else None
        if identity is None or not identity.is_authenticated or claimed != activity.service_url:
            log.warning("teams_request_rejected", status=401, reason="serviceUrl does not match the token")
            return None
        return result

    async def _on_turn(self, turn: TurnContext) -> None:
        activity = turn.activity
        if activity.type == ActivityTypes.invoke:
            await turn.send_activity(_invoke_answer(activity))
        if activity.type in (ActivityTypes.conversation_update, ActivityTypes.installation_update):
            await self._installed(activity)
            return
        event = _translate(activity)
        if event is None:
            return
        await self._seen(activity)
        self._answers.spawn(event, lambda reply: self._send(event, reply))

    async def _turn_failed(self, turn: TurnContext, error: Exception) -> None:
        log.error("teams_turn_failed", error=f"{type(error).__name__}: {error}"[:300], exc_info=error)
        if turn.activity.type == ActivityTypes.invoke and not turn.turn_state.get(self._cloud._INVOKE_RESPONSE_KEY):
            await turn.send_activity(_invoke_answer(turn.activity))

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
        data = activity.channel_data or {}
        reference = TurnContext.get_conversation_reference(activity).serialize()
        reference.pop("activityId", None)
        reference["conversation"]["id"] = base_id(activity.conversation.id)
        conversation = Conversation(
            id=reference["conversation"]["id"], type=activity.conversation.conversation_type or "personal",
            tenant=_tenant(activity), service_url=activity.service_url, reference=reference,
            team=(data.get("team") or {}).get("name"), channel=(data.get("channel") or {}).get("name"))
        try:
            await self._conversations.seen(conversation)
        except StoreError as exc:
            log.warning("teams_reference_not_saved", conversation=conversation.id, error=str(exc))

    # --- answering ---------------------------------------------------------------------------
    async def _answer(self, event: Event) -> list[Reply]:
        """What ``Answers`` runs once per delivery: typing, the core, and an ack if it is slow."""
        await self._quietly(self._typing(event))
        work = asyncio.ensure_future(self._handle(await self._with_email(event)))
        try:
            return await asyncio.wait_for(asyncio.shield(work), self._ack_after)
        except TimeoutError:
            lang = event.lang or "en"
            await self._quietly(self._send(event, Reply(text=say(lang, "working"), lang=lang)))
            return await work

    async def _send(self, event: Event, reply: Reply) -> None:
        target = f"teams:{event.channel}"
        if reply.update:
            await self.update(target, reply.update, reply)
        else:
            await self.post(target, reply, thread=reply.thread or event.thread)

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

    async def _quietly(self, sending: Any) -> None:
        try:
            await sending
        except DeliveryError as exc:
            log.info("teams_courtesy_not_sent", reason=str(exc)[:200])

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
            factory = self._auth.create_connector_factory(self._cloud.create_claims_identity(self._settings.app_id))
            client = self._clients[service_url] = await factory.create(service_url, None)
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


# --- translation: Activity -> Event ------------------------------------------------------------

def _parse(body: Any) -> tuple[Activity | None, str]:
    """The Activity Teams sent, or why it is malformed (the answer is then 400)."""
    if not isinstance(body, dict) or not isinstance(body.get("type"), str) or not body["type"]:
        return None, "not an Activity: 'type' is missing"
    try:
        activity = Activity.deserialize(body)
    except Exception as exc:  # noqa: BLE001 - msrest's deserialization errors vary by field
        return None, f"not an Activity: {type(exc).__name__}"
    url = urlsplit(activity.service_url or "")
    if url.scheme not in ("http", "https") or not url.netloc:
        return None, "the Activity has no valid serviceUrl"
    if not activity.channel_id or not activity.conversation or not activity.conversation.id:
        return None, "the Activity has no channelId or conversation"
    if activity.type in (ActivityTypes.message, ActivityTypes.invoke) and not (
            activity.from_property and activity.from_property.id):
        return None, "the Activity has no sender"
    if activity.delivery_mode == DeliveryModes.expect_replies:
        return None, "deliveryMode expectReplies is not supported"
    return activity, ""


def _translate(activity: Activity) -> Event | None:
    """A message, a card submission (Action.Submit, or Action.Execute's invoke) as an Event."""
    sender = activity.from_property
    conversation = activity.conversation
    submitted = _submission(activity)
    if activity.type == ActivityTypes.invoke and submitted is None:
        return None
    if activity.type not in (ActivityTypes.message, ActivityTypes.invoke) or (
            activity.recipient is not None and sender.id == activity.recipient.id):
        return None
    channel = conversation.conversation_type == "channel"
    event = Event(platform="teams", workspace=_tenant(activity) or "", channel=base_id(conversation.id),
                  user_id=sender.aad_object_id or sender.id, user_name=sender.name or "",
                  kind="dm" if conversation.conversation_type == "personal" else "message",
                  thread=thread_of(conversation.id) if channel else None, event_id=activity.id,
                  lang=_lang(activity.locale))
    if submitted is not None:
        action_id, value, nonce = submitted
        window = int(time.time() // CARD_WINDOW)
        key = hashlib.sha256(f"{nonce}|{action_id}|{value}|{event.user_id}|{window}".encode()).hexdigest()[:32]
        return replace(event, kind="action", action_id=action_id, action_value=value,
                       message_ref=activity.reply_to_id, event_id=f"card:{key}")
    text = _without_mentions(activity)
    return replace(event, text=text) if text else None


def _submission(activity: Activity) -> tuple[str, str, str] | None:
    value = activity.value if isinstance(activity.value, dict) else None
    if value and activity.type == ActivityTypes.invoke and activity.name == "adaptiveCard/action":
        value = (value.get("action") or {}).get("data")
    if not isinstance(value, dict):
        return None
    action_id, action_value, nonce = value.get("action_id"), value.get("value"), value.get("nonce")
    if not (isinstance(action_id, str) and action_id.startswith("resync_") and isinstance(action_value, str)):
        return None
    return action_id, action_value, str(nonce or "")


def _without_mentions(activity: Activity) -> str:
    """The text without the bot's ``<at>…</at>`` mention; other people's mentions keep their name."""
    bot = activity.recipient.id if activity.recipient else None
    names = set()
    for entity in activity.entities or ():
        data = {**(entity.additional_properties or {}), "type": entity.type}
        mentioned = data.get("mentioned") if isinstance(data.get("mentioned"), dict) else {}
        if (entity.type or "").lower() == "mention" and mentioned.get("id") == bot:
            names.add(_AT.sub(r"\1", str(data.get("text") or "")).strip() or mentioned.get("name"))
    text = _AT.sub(lambda m: "" if m[1].strip() in names else m[1], activity.text or "")
    return html.unescape(re.sub(r"[ \t]{2,}", " ", text)).strip()


def _tenant(activity: Activity) -> str | None:
    data = activity.channel_data if isinstance(activity.channel_data, dict) else {}
    return (data.get("tenant") or {}).get("id") or (activity.conversation.tenant_id if activity.conversation else None)


def _lang(locale: str | None) -> str | None:
    prefix = (locale or "").lower()[:2]
    return prefix if prefix in ("en", "pt") else None


def _invoke_answer(activity: Activity) -> Activity:
    """Teams needs an answer to every invoke; an Action.Execute gets a short message card-side."""
    body: dict[str, Any] = {}
    if activity.name == "adaptiveCard/action":
        body = {"statusCode": 200, "type": "application/vnd.microsoft.activity.message",
                "value": say(_lang(activity.locale) or "en", "working")}
    return Activity(type=ActivityTypes.invoke_response, value=InvokeResponse(status=200, body=body))


def _error_code(exc: ErrorResponseException) -> str | None:
    try:
        return exc.error.error.code or None
    except AttributeError:
        return None


def _refused(status: int, reason: str, **context: Any) -> web.Response:
    if status != 401:  # 401s are logged with their reason where they are decided
        log.warning("teams_request_rejected", status=status, reason=reason, **context)
    return web.json_response({"error": reason}, status=status)


def _sdk_configuration(settings: TeamsSettings) -> SimpleNamespace:
    """The SDK's configuration object (its attribute names) from Resync's settings."""
    return SimpleNamespace(
        APP_ID=settings.app_id, APP_PASSWORD=settings.app_password, APP_TYPE=settings.app_type,
        APP_TENANTID=settings.tenant_id, CHANNEL_SERVICE=settings.channel_service,
        VALIDATE_AUTHORITY=settings.validate_authority, TO_CHANNEL_FROM_BOT_LOGIN_URL=settings.login_url,
        TO_CHANNEL_FROM_BOT_OAUTH_SCOPE=settings.oauth_scope, TO_BOT_FROM_CHANNEL_TOKEN_ISSUER=settings.token_issuer,
        TO_BOT_FROM_CHANNEL_OPENID_METADATA_URL=settings.openid_metadata_url, OAUTH_URL=settings.oauth_url)


def _metadata_url(settings: TeamsSettings) -> str:
    if settings.openid_metadata_url:
        return settings.openid_metadata_url
    if settings.channel_service == GovernmentConstants.CHANNEL_SERVICE:
        return GovernmentConstants.TO_BOT_FROM_CHANNEL_OPENID_METADATA_URL
    return AuthenticationConstants.TO_BOT_FROM_CHANNEL_OPENID_METADATA_URL
