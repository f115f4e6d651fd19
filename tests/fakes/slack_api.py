"""A loopback Slack: the Web API methods Resync calls, response URLs and a Socket Mode link.

    async with FakeSlackApi() as slack:
        client = AsyncWebClient(token="xoxb-test", base_url=slack.url)   # slack.url ends with "/"
        ...
        await slack.wait_for("chat.postMessage")        # the calls, once there are enough
        slack.calls("chat.postMessage")[0].params       # what was sent (form or JSON, merged)

Methods: ``auth.test``, ``chat.postMessage``, ``chat.postEphemeral``, ``chat.update``,
``users.info`` (the documented user object; ``slack.emails``, ``slack.missing_users`` and
``slack.email_scope`` shape it), ``apps.connections.open``; any other method answers
``unknown_method``. Answers
have Slack's shape (``ok``, increasing ``ts``, ``channel``), and ``chat.*`` checks Block Kit's
limits the way Slack does (``invalid_blocks``), so a rendering bug fails a test. Every call is
recorded, failed ones too, with its arrival time (``time.monotonic()``).

Failures, for the next ``times`` calls of a method: ``fail("chat.postMessage", status=429,
retry_after=1)``, ``fail(..., status=500)``, ``fail(..., error="channel_not_found")`` (HTTP
200, ``ok: false``, as Slack does).

Response URLs: ``slack.response_url("abc")`` is a URL whose POSTs are recorded as method
``"response_url"``. Socket Mode: ``apps.connections.open`` (with an ``xapp-`` token) hands out
``ws://.../link``; ``await slack.push(payload_type, payload)`` sends an envelope over the open
link and returns its ``envelope_id``; ``slack.acks`` holds the envelopes the app acknowledged;
``await slack.drop_link()`` closes the link the way a Slack server restart does.

Inbound helpers, for driving an app the way Slack does: ``sign(body, secret, timestamp)`` gives
the signature headers, and ``event_callback``, ``slash_command`` and ``block_actions`` build
realistic request bodies.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
import json
import time
import uuid
from collections import defaultdict, deque
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from aiohttp import WSMsgType, web

JSON = dict[str, Any]

TEAM_ID = "T0RESYNC"
BOT_USER_ID = "U0BOT"
BOT_ID = "B0BOT"


@dataclass(frozen=True, slots=True, kw_only=True)
class Call:
    """One request the fake received."""

    method: str
    params: JSON
    at: float  # time.monotonic() on arrival
    status: int  # the HTTP status answered
    token: str | None  # the bearer token or ``token`` param used
    answer: JSON | None = None  # the JSON body answered (``answer["ts"]`` of a posted message)


@dataclass(frozen=True, slots=True, kw_only=True)
class _Failure:
    status: int
    error: str | None
    retry_after: float | None


class FakeSlackApi:
    """The loopback server; see the module docstring."""

    def __init__(self, *, team_id: str = TEAM_ID, bot_user_id: str = BOT_USER_ID, bot_id: str = BOT_ID,
                 locale: str = "pt-BR") -> None:
        self.team_id, self.bot_user_id, self.bot_id, self.locale = team_id, bot_user_id, bot_id, locale
        self.acks: list[JSON] = []
        self.links = 0  # Socket Mode connections accepted so far
        self.emails: dict[str, str | None] = {}  # users.info: a user's e-mail (None: none); default <id>@example.com
        self.missing_users: set[str] = set()  # users.info answers user_not_found for these
        self.email_scope = True  # False: the app lacks users:read.email, profiles carry no e-mail
        self._calls: list[Call] = []
        self._failures: dict[str, deque[_Failure]] = defaultdict(deque)
        self._messages: dict[tuple[str, str], JSON] = {}
        self._ts = itertools.count(1)
        self._epoch = int(time.time())
        self._changed = asyncio.Event()
        self._link: web.WebSocketResponse | None = None
        self._runner: web.AppRunner | None = None
        self.port = 0
        self._pending_files: dict[str, JSON] = {}  # files upload v2: announced, maybe uploaded, not shared yet
        self.uploads: list[JSON] = []  # files shared by files.completeUploadExternal

    # --- files upload v2 (files.getUploadURLExternal, POST upload_url, files.completeUploadExternal) --
    # As Slack documents it: step 1 takes ``filename`` and ``length`` (bytes) and hands out an
    # ``upload_url`` and ``file_id``; step 2 POSTs the bytes (raw or a multipart ``file`` field) to
    # that URL; step 3 takes ``files`` (a JSON array of ``{"id", "title"}``) and ``channel_id`` (with
    # ``initial_comment``, ``thread_ts``) and shares them. A file not uploaded, or of another length
    # than announced, is refused. ``slack.uploads`` holds the shared files: {id, filename, title,
    # data, channel, initial_comment}.

    def _get_upload_url(self, params: JSON) -> JSON:
        filename, length = params.get("filename"), params.get("length")
        try:
            length = int(length)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            return {"ok": False, "error": "invalid_arguments"}
        if not filename or length <= 0:
            return {"ok": False, "error": "invalid_arguments"}
        file_id = "F" + uuid.uuid4().hex[:10].upper()
        self._pending_files[file_id] = {"id": file_id, "filename": str(filename), "length": length, "data": None}
        return {"ok": True, "file_id": file_id, "upload_url": f"http://127.0.0.1:{self.port}/upload/v1/{file_id}"}

    async def _upload(self, request: web.Request) -> web.Response:
        pending = self._pending_files.get(request.match_info["file_id"])
        if pending is None:
            return web.Response(status=404, text="not found")
        if request.content_type.startswith("multipart/"):
            data = b""
            async for part in await request.multipart():
                if part.name in {"file", "filename"} or part.filename:  # type: ignore[union-attr]
                    data = await part.read()  # type: ignore[union-attr]
        else:
            data = await request.read()
        pending["data"] = bytes(data)
        return web.Response(text=f"OK - {len(data)}")

    def _complete_upload(self, params: JSON) -> JSON:
        files = params.get("files")
        if isinstance(files, str):
            try:
                files = json.loads(files)
            except ValueError:
                return {"ok": False, "error": "invalid_arguments"}
        if not isinstance(files, list) or not files:
            return {"ok": False, "error": "invalid_arguments"}
        shared = []
        for item in files:
            pending = self._pending_files.get(item.get("id", "")) if isinstance(item, dict) else None
            if pending is None or pending["data"] is None or len(pending["data"]) != pending["length"]:
                return {"ok": False, "error": "file_not_found" if pending is None else "file_upload_size_mismatch"}
            shared.append({**pending, "title": item.get("title") or pending["filename"],
                           "channel": params.get("channel_id"), "initial_comment": params.get("initial_comment"),
                           "thread_ts": params.get("thread_ts")})
        for item in shared:
            del self._pending_files[item["id"]]
            self.uploads.append(item)
        self._notify()
        return {"ok": True, "files": [{"id": f["id"], "title": f["title"], "name": f["filename"]} for f in shared]}

    # --- lifecycle ------------------------------------------------------------------------
    async def __aenter__(self) -> FakeSlackApi:
        app = web.Application()
        app.router.add_post("/api/{method}", self._api)
        app.router.add_get("/api/{method}", self._api)  # Slack takes arguments as a query string too
        app.router.add_post("/response/{key}", self._response_url)
        app.router.add_get("/link", self._socket)
        app.router.add_post("/upload/v1/{file_id}", self._upload)  # files upload v2, step 2
        self._runner = web.AppRunner(app, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._link is not None:
            await self._link.close()
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def url(self) -> str:
        """The Web API base URL (``SLACK_API_URL``), ending with "/"."""
        return f"http://127.0.0.1:{self.port}/api/"

    def response_url(self, key: str = "") -> str:
        return f"http://127.0.0.1:{self.port}/response/{key or uuid.uuid4().hex}"

    # --- what happened --------------------------------------------------------------------
    def calls(self, method: str | None = None) -> list[Call]:
        return [c for c in self._calls if method is None or c.method == method]

    async def wait_for(self, method: str, count: int = 1, *, timeout: float = 5.0, ok: bool = False) -> list[Call]:
        """The calls of ``method`` once there are ``count`` (only successful ones if ``ok``)."""
        async with asyncio.timeout(timeout):
            while True:
                found = [c for c in self.calls(method) if not ok or c.status == 200]
                if len(found) >= count:
                    return found
                self._changed.clear()
                await self._changed.wait()

    def fail(self, method: str, *, status: int = 200, error: str | None = None, retry_after: float | None = None,
             times: int = 1) -> None:
        """Make the next ``times`` calls of ``method`` fail (HTTP ``status`` or ``ok: false``)."""
        if status == 429 and error is None:
            error = "ratelimited"
        self._failures[method].extend([_Failure(status=status, error=error, retry_after=retry_after)] * times)

    def message(self, channel: str, ts: str) -> JSON | None:
        """The current state of a message posted or updated through the fake."""
        return self._messages.get((channel, ts))

    # --- Web API --------------------------------------------------------------------------
    async def _api(self, request: web.Request) -> web.StreamResponse:
        method = request.match_info["method"]
        params = await _params(request)
        token = _bearer(request) or params.pop("token", None)
        failure = self._failures[method].popleft() if self._failures[method] else None
        status, body, headers = self._answer(method, params, token, failure)
        self._record(Call(method=method, params=params, at=time.monotonic(), status=status, token=token, answer=body))
        if status >= 500:
            return web.Response(status=status, text="upstream trouble", content_type="text/html")
        return web.json_response(body, status=status, headers=headers)

    def _answer(self, method: str, params: JSON, token: str | None,
                failure: _Failure | None) -> tuple[int, JSON, dict[str, str]]:
        if failure is not None:
            headers = {"Retry-After": f"{failure.retry_after:g}"} if failure.retry_after is not None else {}
            return failure.status, {"ok": False, "error": failure.error or "internal_error"}, headers
        want_app = method == "apps.connections.open"
        if not token or token.startswith("xapp-") != want_app:
            return 200, {"ok": False, "error": "not_allowed_token_type" if token else "not_authed"}, {}
        handler = {
            "auth.test": self._auth_test, "chat.postMessage": self._post_message,
            "chat.postEphemeral": self._post_ephemeral, "chat.update": self._update,
            "users.info": self._users_info, "apps.connections.open": self._connections_open,
            "files.getUploadURLExternal": self._get_upload_url, "files.completeUploadExternal": self._complete_upload,
        }.get(method)
        if handler is None:
            return 200, {"ok": False, "error": "unknown_method"}, {}
        return 200, handler(params), {}

    def _auth_test(self, params: JSON) -> JSON:
        return {"ok": True, "url": "https://resync-test.slack.com/", "team": "Resync Test", "user": "resync",
                "team_id": self.team_id, "user_id": self.bot_user_id, "bot_id": self.bot_id,
                "is_enterprise_install": False}

    def _post_message(self, params: JSON) -> JSON:
        problem = _message_problem(params)
        if problem:
            return {"ok": False, "error": problem}
        ts = self._next_ts()
        message = {"type": "message", "user": self.bot_user_id, "bot_id": self.bot_id, "ts": ts,
                   "text": params.get("text", ""), "blocks": params.get("blocks", [])}
        if params.get("thread_ts"):
            message["thread_ts"] = params["thread_ts"]
        self._messages[(params["channel"], ts)] = message
        return {"ok": True, "channel": params["channel"], "ts": ts, "message": message}

    def _post_ephemeral(self, params: JSON) -> JSON:
        problem = _message_problem(params) or (None if params.get("user") else "user_not_found")
        return {"ok": False, "error": problem} if problem else {"ok": True, "message_ts": self._next_ts()}

    def _update(self, params: JSON) -> JSON:
        problem = _message_problem(params) or (None if params.get("ts") else "invalid_arguments")
        if problem:
            return {"ok": False, "error": problem}
        key = (params["channel"], params["ts"])
        if key not in self._messages:
            return {"ok": False, "error": "message_not_found"}
        self._messages[key].update(text=params.get("text", ""), blocks=params.get("blocks", []))
        return {"ok": True, "channel": params["channel"], "ts": params["ts"], "text": params.get("text", "")}

    def _users_info(self, params: JSON) -> JSON:
        """users.info as documented: the user object; ``profile.email`` only with the
        users:read.email scope (``email_scope``), ``locale`` only with ``include_locale=true``."""
        user = str(params.get("user", ""))
        if not user:
            return {"ok": False, "error": "invalid_arguments"}
        if user in self.missing_users:
            return {"ok": False, "error": "user_not_found"}
        name = user.lower()
        profile: JSON = {"real_name": user, "display_name": name, "real_name_normalized": user,
                         "display_name_normalized": name, "status_text": "", "status_emoji": "", "team": self.team_id}
        email = self.emails.get(user, f"{name}@example.com")
        if self.email_scope and email is not None:
            profile["email"] = email
        found: JSON = {"id": user, "team_id": self.team_id, "name": name, "deleted": False, "real_name": user,
                       "tz": "America/Sao_Paulo", "tz_label": "Brasilia Standard Time", "tz_offset": -10800,
                       "profile": profile, "is_admin": False, "is_owner": False, "is_bot": False,
                       "is_app_user": False, "updated": self._epoch}
        if str(params.get("include_locale", "")).lower() in ("true", "1"):
            found["locale"] = self.locale
        return {"ok": True, "user": found}

    def _connections_open(self, params: JSON) -> JSON:
        return {"ok": True, "url": f"ws://127.0.0.1:{self.port}/link"}

    # --- response_url ---------------------------------------------------------------------
    async def _response_url(self, request: web.Request) -> web.Response:
        params = await _params(request)
        params["key"] = request.match_info["key"]
        failure = self._failures["response_url"].popleft() if self._failures["response_url"] else None
        status = failure.status if failure else 200
        self._record(Call(method="response_url", params=params, at=time.monotonic(), status=status, token=None))
        if failure:
            headers = {"Retry-After": f"{failure.retry_after:g}"} if failure.retry_after is not None else {}
            return web.Response(status=status, text=failure.error or "error", headers=headers)
        return web.Response(text="ok")

    # --- Socket Mode ----------------------------------------------------------------------
    async def _socket(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        self._link, self.links = ws, self.links + 1
        self._notify()
        await ws.send_json({"type": "hello", "num_connections": 1, "connection_info": {"app_id": "A0RESYNC"}})
        async for message in ws:
            if message.type == WSMsgType.TEXT:
                self.acks.append(json.loads(message.data))
                self._notify()
        return ws

    async def wait_link(self, count: int = 1, *, timeout: float = 5.0) -> None:
        """Until ``count`` Socket Mode connections have been accepted."""
        async with asyncio.timeout(timeout):
            while self.links < count or self._link is None or self._link.closed:
                self._changed.clear()
                await self._changed.wait()

    async def push(self, payload_type: str, payload: JSON, *, retry_attempt: int = 0) -> str:
        """Send one envelope ("events_api", "slash_commands", "interactive") over the link."""
        if self._link is None or self._link.closed:
            raise RuntimeError("no Socket Mode link is open")
        envelope_id = str(uuid.uuid4())
        await self._link.send_json({"envelope_id": envelope_id, "type": payload_type, "payload": payload,
                                    "accepts_response_payload": payload_type != "events_api",
                                    "retry_attempt": retry_attempt, "retry_reason": "timeout" if retry_attempt else ""})
        return envelope_id

    async def drop_link(self) -> None:
        if self._link is not None:
            await self._link.close()

    # --- internals ------------------------------------------------------------------------
    def _next_ts(self) -> str:
        return f"{self._epoch}.{next(self._ts):06d}"

    def _record(self, call: Call) -> None:
        self._calls.append(call)
        self._notify()

    def _notify(self) -> None:
        self._changed.set()


async def _params(request: web.Request) -> JSON:
    """A Web API call's arguments, whether sent as a query, a form or JSON (blocks decoded)."""
    if request.method == "GET":
        params: JSON = dict(request.query)
    elif request.content_type == "application/json":
        raw = await request.text()
        params = json.loads(raw) if raw else {}
    else:
        params = dict(await request.post())
    if request.method != "GET" and request.query:  # Slack takes arguments as a query string on a POST too
        params = {**dict(request.query), **params}
    for key in ("blocks", "attachments"):
        if isinstance(params.get(key), str):
            params[key] = json.loads(params[key])
    return {k: v for k, v in params.items()}


def _bearer(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    return header[7:] if header.startswith("Bearer ") else None


def _message_problem(params: JSON) -> str | None:
    """What Slack would refuse about a message, or None."""
    if not params.get("channel"):
        return "channel_not_found"
    blocks = params.get("blocks")
    if not params.get("text") and not blocks:
        return "no_text"
    return block_kit_problem(blocks) if blocks else None


def block_kit_problem(blocks: list[JSON]) -> str | None:
    """``invalid_blocks`` when Slack's documented Block Kit limits are broken, else None."""
    if not isinstance(blocks, list) or len(blocks) > 50:
        return "invalid_blocks"
    action_ids: set[str] = set()
    for block in blocks:
        if not _block_ok(block, action_ids):
            return "invalid_blocks"
    return "msg_too_long" if _chars(blocks) > 13_000 else None


def _block_ok(block: JSON, action_ids: set[str]) -> bool:
    kind = block.get("type")
    if kind == "header":
        text = block.get("text", {})
        return text.get("type") == "plain_text" and 0 < len(text.get("text", "")) <= 150
    if kind == "section":
        fields = block.get("fields") or []
        text = block.get("text")
        if not text and not fields:
            return False
        if text and not 0 < len(text.get("text", "")) <= 3000:
            return False
        return len(fields) <= 10 and all(0 < len(f.get("text", "")) <= 2000 for f in fields)
    if kind == "context":
        elements = block.get("elements") or []
        return 0 < len(elements) <= 10 and all(0 < len(e.get("text", "")) <= 3000 for e in elements)
    if kind == "actions":
        elements = block.get("elements") or []
        return 0 < len(elements) <= 25 and all(_button_ok(e, action_ids) for e in elements)
    return kind == "divider"


def _button_ok(element: JSON, action_ids: set[str]) -> bool:
    action_id = element.get("action_id", "")
    if element.get("type") != "button" or action_id in action_ids or len(action_id) > 255:
        return False
    action_ids.add(action_id)
    text = element.get("text", {})
    return (text.get("type") == "plain_text" and 0 < len(text.get("text", "")) <= 75
            and len(element.get("value", "")) <= 2000 and element.get("style") in (None, "primary", "danger"))


def _chars(node: Any) -> int:
    if isinstance(node, list):
        return sum(_chars(n) for n in node)
    if isinstance(node, dict):
        return sum(len(v) if k in ("text", "value") and isinstance(v, str) else _chars(v) for k, v in node.items())
    return 0


# --- inbound: what Slack sends to the app -------------------------------------------------

def sign(body: bytes, secret: str, timestamp: int | None = None) -> dict[str, str]:
    """Slack's signature headers for ``body`` (v0 HMAC-SHA256 of ``v0:<ts>:<body>``)."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    digest = hmac.new(secret.encode(), b"v0:" + ts.encode() + b":" + body, hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": f"v0={digest}"}


def event_callback(event: JSON, *, event_id: str | None = None, team_id: str = TEAM_ID) -> JSON:
    """An Events API envelope around ``event``."""
    return {"token": "legacy-verification-token", "team_id": team_id, "api_app_id": "A0RESYNC",
            "event": {"event_ts": event.get("ts", ""), **event}, "type": "event_callback",
            "event_id": event_id or f"Ev{uuid.uuid4().hex[:10].upper()}", "event_time": int(time.time()),
            "authorizations": [{"team_id": team_id, "user_id": BOT_USER_ID, "is_bot": True,
                                "is_enterprise_install": False}]}


def mention(text: str, *, channel: str = "C0OPS", user: str = "U0ANA", ts: str | None = None,
            thread_ts: str | None = None, **extra: Any) -> JSON:
    """An ``app_mention`` event (``text`` should carry ``<@U0BOT>``)."""
    event = {"type": "app_mention", "user": user, "text": text, "ts": ts or _now_ts(), "channel": channel, **extra}
    if thread_ts:
        event["thread_ts"] = thread_ts
    return event


def direct_message(text: str, *, channel: str = "D0ANA", user: str = "U0ANA", ts: str | None = None,
                   **extra: Any) -> JSON:
    """A ``message.im`` event."""
    return {"type": "message", "channel_type": "im", "user": user, "text": text, "ts": ts or _now_ts(),
            "channel": channel, **extra}


def slash_command(text: str, *, command: str = "/tws", channel: str = "C0OPS", user: str = "U0ANA",
                  response_url: str = "https://hooks.slack.invalid/commands/x", team_id: str = TEAM_ID) -> bytes:
    """A slash command's form body, as Slack posts it."""
    return urlencode({
        "token": "legacy-verification-token", "team_id": team_id, "team_domain": "resync-test",
        "channel_id": channel, "channel_name": "ops", "user_id": user, "user_name": user.lower(),
        "command": command, "text": text, "api_app_id": "A0RESYNC", "is_enterprise_install": "false",
        "response_url": response_url, "trigger_id": f"{uuid.uuid4().int % 10**12}.{uuid.uuid4().hex[:12]}",
    }).encode()


def block_actions(action_id: str, value: str, *, message_ts: str, channel: str = "C0OPS", user: str = "U0ANA",
                  thread_ts: str | None = None, response_url: str = "https://hooks.slack.invalid/actions/x",
                  ephemeral: bool = False, trigger_id: str | None = None, team_id: str = TEAM_ID) -> bytes:
    """An interactivity form body (``payload=<json>``) for a button press."""
    message = {"type": "message", "user": BOT_USER_ID, "bot_id": BOT_ID, "ts": message_ts, "text": "…"}
    if thread_ts:
        message["thread_ts"] = thread_ts
    payload: JSON = {
        "type": "block_actions", "team": {"id": team_id, "domain": "resync-test"},
        "user": {"id": user, "username": user.lower(), "name": user.lower(), "team_id": team_id},
        "api_app_id": "A0RESYNC", "token": "legacy-verification-token",
        "container": {"type": "message", "message_ts": message_ts, "channel_id": channel,
                      "is_ephemeral": ephemeral, **({"thread_ts": thread_ts} if thread_ts else {})},
        "trigger_id": trigger_id or f"{uuid.uuid4().int % 10**12}.{uuid.uuid4().hex[:12]}",
        "channel": {"id": channel, "name": "ops"}, "response_url": response_url,
        "actions": [{"type": "button", "action_id": action_id, "block_id": "b1", "value": value,
                     "text": {"type": "plain_text", "text": "Confirm"}, "action_ts": _now_ts()}],
    }
    if not ephemeral:
        payload["message"] = message
    return urlencode({"payload": json.dumps(payload)}).encode()


def _now_ts() -> str:
    now = time.time()
    return f"{int(now)}.{int(now * 1e6) % 1_000_000:06d}"
