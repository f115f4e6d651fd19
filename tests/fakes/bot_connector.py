"""A loopback Bot Connector (the ``serviceUrl`` of Teams activities), recording what the bot sends.

    async with FakeBotConnector(idp) as connector:
        activity = connector.message("status EXTRACT01", ...)     # inbound Activity JSON for the bot
        await connector.wait_for("reply")                          # the bot's calls, once there are enough
        connector.calls("update")[0].body                          # what was sent

Routes (Bot Framework REST API v3, which botframework-connector calls):

    POST /v3/conversations/{id}/activities                 "send"    send_to_conversation
    POST /v3/conversations/{id}/activities/{activity}      "reply"   reply_to_activity
    PUT  /v3/conversations/{id}/activities/{activity}      "update"  update_activity
    GET  /v3/conversations/{id}/members/{member}           "member"  TeamsInfo.get_member

Every call must carry a bearer token issued by the fake identity provider for the connector's
audience (else 401, as the real service answers). Threads follow Teams: in a channel the
conversation id ``19:…@thread.tacv2`` starts a new post and ``19:…@thread.tacv2;messageid=<root>``
answers in that post's reply chain; ``messages`` keeps the latest version of every activity and
``thread_of`` tells which chain it is in.

Failures, for the next ``times`` calls of a kind: ``fail("send", status=429, retry_after=1)``,
``fail("update", status=502)``; ``remove(conversation)`` makes every later call there answer 403
``BotNotInConversationRoster``, as Teams does after the bot is removed.
"""

from __future__ import annotations

import asyncio
import itertools
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.fakes.teams_idp import FakeIdentityProvider

JSON = dict[str, Any]

TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
BOT_ID = "28:resync-bot"
TEAM = "19:team-general@thread.tacv2"


@dataclass(frozen=True, slots=True, kw_only=True)
class Call:
    kind: str  # send, reply, update, member
    conversation: str
    activity_id: str | None
    body: JSON
    status: int
    token_ok: bool
    at: float = field(default_factory=time.monotonic)


@dataclass(frozen=True, slots=True, kw_only=True)
class _Failure:
    status: int
    retry_after: float | None


@dataclass(frozen=True, slots=True, kw_only=True)
class Member:
    id: str
    name: str
    aad: str
    email: str | None = None


class FakeBotConnector:
    """See the module docstring."""

    def __init__(self, idp: FakeIdentityProvider) -> None:
        self.idp = idp
        self.messages: dict[str, JSON] = {}  # activity id -> latest activity sent or updated
        self.thread_of: dict[str, str] = {}  # activity id -> root activity id of its chain
        self.members: dict[str, Member] = {}
        self._calls: list[Call] = []
        self._failures: dict[str, deque[_Failure]] = {}
        self._removed: set[str] = set()
        self._ids = itertools.count(1_700_000_000_001)
        self._changed = asyncio.Condition()
        self._first: dict[str, asyncio.Future[Call]] = {}  # conversation -> its first message
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def __aenter__(self) -> FakeBotConnector:
        app = web.Application()
        app.router.add_post("/v3/conversations/{conversation}/activities", self._send)
        app.router.add_post("/v3/conversations/{conversation}/activities/{activity}", self._reply)
        app.router.add_put("/v3/conversations/{conversation}/activities/{activity}", self._update)
        app.router.add_get("/v3/conversations/{conversation}/members/{member}", self._member)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}/"
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    # --- controls -------------------------------------------------------------------------
    def fail(self, kind: str, *, status: int, retry_after: float | None = None, times: int = 1) -> None:
        self._failures.setdefault(kind, deque()).extend([_Failure(status=status, retry_after=retry_after)] * times)

    def remove(self, conversation: str) -> None:
        self._removed.add(conversation.split(";")[0])

    def add_member(self, member: Member) -> None:
        self.members[member.id] = member

    def calls(self, kind: str | None = None) -> list[Call]:
        return [c for c in self._calls if kind is None or c.kind == kind]

    async def wait_for(self, kind: str, count: int = 1, timeout: float = 10.0, *, ok: bool = True) -> list[Call]:
        """The first ``count`` calls of ``kind`` (only answered 2xx unless ``ok=False``)."""
        def found() -> list[Call]:
            return [c for c in self.calls(kind) if not ok or c.status < 300]

        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(lambda: len(found()) >= count), timeout)
        return found()[:count]

    async def first_message(self, conversation: str, timeout: float = 30.0) -> Call:
        """The first message the bot delivered to ``conversation`` (waits for it)."""
        first = self._first.setdefault(conversation, asyncio.get_running_loop().create_future())
        return await asyncio.wait_for(asyncio.shield(first), timeout)

    # --- handlers ---------------------------------------------------------------------------
    async def _send(self, request: web.Request) -> web.Response:
        conversation = request.match_info["conversation"]
        base, _, root = conversation.partition(";messageid=")
        return await self._post(request, "send", conversation, None, thread=root or None, base=base)

    async def _reply(self, request: web.Request) -> web.Response:
        conversation, activity = request.match_info["conversation"], request.match_info["activity"]
        base, _, root = conversation.partition(";messageid=")
        thread = root or self.thread_of.get(activity, activity)
        return await self._post(request, "reply", conversation, activity, thread=thread, base=base)

    async def _post(self, request: web.Request, kind: str, conversation: str, activity: str | None, *,
                    thread: str | None, base: str) -> web.Response:
        body = await request.json()
        refused = self._refusal(request, kind, conversation)
        if refused is not None:
            return await self._record(kind, conversation, activity, body, refused)
        new_id = str(next(self._ids)) if body.get("type") == "message" else uuid.uuid4().hex
        if body.get("type") == "message":
            self.messages[new_id] = {**body, "id": new_id, "conversation": {"id": base}}
            self.thread_of[new_id] = thread or new_id
        return await self._record(kind, conversation, activity, body, web.json_response({"id": new_id}, status=201))

    async def _update(self, request: web.Request) -> web.Response:
        conversation, activity = request.match_info["conversation"], request.match_info["activity"]
        body = await request.json()
        refused = self._refusal(request, "update", conversation)
        if refused is None and activity not in self.messages:
            refused = _error(404, "ActivityNotFoundInConversation", "The activity does not exist")
        if refused is not None:
            return await self._record("update", conversation, activity, body, refused)
        self.messages[activity] = {**body, "id": activity, "conversation": self.messages[activity]["conversation"]}
        return await self._record("update", conversation, activity, body, web.json_response({"id": activity}))

    async def _member(self, request: web.Request) -> web.Response:
        conversation, member_id = request.match_info["conversation"], request.match_info["member"]
        refused = self._refusal(request, "member", conversation)
        member = self.members.get(member_id) or next((m for m in self.members.values() if m.aad == member_id), None)
        if refused is None and member is None:
            refused = _error(404, "MemberNotFoundInConversation", "The member is not in the conversation")
        if refused is not None:
            return await self._record("member", conversation, member_id, {}, refused)
        assert member is not None
        body = {"id": member.id, "name": member.name, "aadObjectId": member.aad, "email": member.email,
                "userPrincipalName": member.email, "tenantId": TENANT, "userRole": "user"}
        return await self._record("member", conversation, member_id, {}, web.json_response(body))

    def _refusal(self, request: web.Request, kind: str, conversation: str) -> web.Response | None:
        if not self._token_ok(request):
            return _error(401, "Unauthorized", "Authorization has been denied for this request.")
        if conversation.split(";")[0] in self._removed:
            return _error(403, "BotNotInConversationRoster", "The bot is not part of the conversation roster.")
        queue = self._failures.get(kind)
        if queue:
            failure = queue.popleft()
            response = _error(failure.status, "Throttled" if failure.status == 429 else "ServiceError", "try later")
            if failure.retry_after is not None:
                response.headers["Retry-After"] = f"{failure.retry_after:g}"
            return response
        return None

    def _token_ok(self, request: web.Request) -> bool:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme != "Bearer" or not token:
            return False
        try:
            self.idp.verify_access_token(token)
        except Exception:  # noqa: BLE001 - any jwt error: refused, as the real service does
            return False
        return True

    async def _record(self, kind: str, conversation: str, activity: str | None, body: JSON,
                      response: web.Response) -> web.Response:
        call = Call(kind=kind, conversation=conversation, activity_id=activity, body=body, status=response.status,
                    token_ok=response.status != 401)
        async with self._changed:
            self._calls.append(call)
            self._changed.notify_all()
        if kind in ("send", "reply") and body.get("type") == "message" and response.status < 300:
            first = self._first.setdefault(conversation, asyncio.get_running_loop().create_future())
            if not first.done():
                first.set_result(call)
        return response

    # --- inbound activities, as Teams sends them --------------------------------------------
    def activity(self, kind: str = "message", *, text: str | None = None, conversation: str = "a:1personal-chat",
                 conversation_type: str = "personal", user: Member | None = None, value: Any = None,
                 reply_to: str | None = None, locale: str | None = "en-US", tenant: str = TENANT,
                 activity_id: str | None = None, team: str | None = None, channel_name: str | None = None,
                 name: str | None = None, entities: list[JSON] | None = None, **extra: Any) -> JSON:
        user = user or Member(id="29:ana", name="Ana Souza", aad="aad-ana")
        channel_data: JSON = {"tenant": {"id": tenant}}
        if team:
            channel_data["team"] = {"id": team, "name": "Operations"}
            channel_data["channel"] = {"id": conversation.split(";")[0]}
            if channel_name:  # Teams names the channel in some events only
                channel_data["channel"]["name"] = channel_name
        body: JSON = {
            "type": kind, "id": activity_id or f"f:{uuid.uuid4().hex}", "timestamp": "2026-12-01T21:00:00.000Z",
            "serviceUrl": self.url, "channelId": "msteams",
            "from": {"id": user.id, "name": user.name, "aadObjectId": user.aad},
            "conversation": {"id": conversation, "conversationType": conversation_type, "tenantId": tenant,
                             "isGroup": conversation_type != "personal"},
            "recipient": {"id": BOT_ID, "name": "Resync"}, "channelData": channel_data,
        }
        for key, item in (("text", text), ("value", value), ("replyToId", reply_to), ("locale", locale),
                          ("name", name), ("entities", entities)):
            if item is not None:
                body[key] = item
        if kind == "message" and text is not None and "textFormat" not in extra:
            body["textFormat"] = "plain"
        return {**body, **extra}

    def mention(self, text: str, *, conversation: str = f"{TEAM};messageid=1700000000000", **kwargs: Any) -> JSON:
        """A channel message that @mentions the bot: ``<at>Resync</at> ...`` plus its mention entity."""
        entity = {"type": "mention", "text": "<at>Resync</at>", "mentioned": {"id": BOT_ID, "name": "Resync"}}
        return self.activity(text=f"<at>Resync</at> {text}", conversation=conversation, conversation_type="channel",
                             team=TEAM, entities=[entity], **kwargs)


def _error(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"error": {"code": code, "message": message}}, status=status)
