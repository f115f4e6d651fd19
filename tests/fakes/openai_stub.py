"""A loopback OpenAI-compatible chat-completions server, for driving real litellm in tests.

    async with OpenAIStub([tool_call("job_status", {"job": "CPU1#S.J"}), text("hello")]) as stub:
        settings = LlmSettings(model="openai/stub", api_base=stub.api_base, api_key="sk-test")
        ...
        stub.requests[0].json["tools"]   # what litellm sent

Routes: ``POST /v1/chat/completions`` and ``POST /chat/completions`` answer from the script;
``GET /v1/models`` (and ``/models``) lists one model. Every request to any route is recorded in
``stub.requests`` (method, path, headers, parsed JSON body, raw body), in arrival order.

The script is either a callable ``(request_json) -> Canned | dict`` (a dict is sent as a 200 JSON
body) or a queue of ``Canned`` answers consumed one per completion request (``stub.push`` adds
more). When the queue is empty the stub answers ``default`` if given, else HTTP 500 with the
message "openai stub: script exhausted", so a test that forgot a step fails loudly.

Builders: ``tool_call`` / ``text`` (200 answers in the exact OpenAI shape), ``error`` (an HTTP
status with an OpenAI error body), ``malformed`` (200 with a body that is not JSON), and
``Canned(delay=...)`` or ``delayed`` to hold any answer back (to trigger client timeouts; a
delayed answer is abandoned at once when the stub closes). ``tool_call_response`` and
``text_response`` return the bare response dicts, for callables.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from aiohttp import web

JSON = dict[str, Any]

_ids = itertools.count(1)


@dataclass(frozen=True, slots=True, kw_only=True)
class Canned:
    """One scripted answer: a JSON body (or raw text), a status, optional headers and a delay."""

    status: int = 200
    body: JSON | None = None
    raw: str | None = None  # sent verbatim instead of ``body`` (malformed JSON)
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds to wait before answering


@dataclass(frozen=True, slots=True, kw_only=True)
class Recorded:
    """One request the stub received."""

    method: str
    path: str
    headers: dict[str, str]
    json: JSON | None  # None when the body was empty or not JSON
    body: str


Script = Callable[[JSON], "Canned | JSON"]


def tool_call_response(name: str, arguments: str | JSON, *, model: str = "stub-model",
                       call_id: str | None = None) -> JSON:
    """A chat completion whose first choice calls ``name``; dict arguments are JSON-encoded."""
    args = arguments if isinstance(arguments, str) else json.dumps(arguments)
    message = {"role": "assistant", "content": None, "tool_calls": [
        {"id": call_id or f"call_{next(_ids)}", "type": "function", "function": {"name": name, "arguments": args}}]}
    return _completion(message, "tool_calls", model)


def text_response(content: str, *, model: str = "stub-model") -> JSON:
    """A chat completion whose first choice answers ``content`` as plain text."""
    return _completion({"role": "assistant", "content": content}, "stop", model)


def _completion(message: JSON, finish_reason: str, model: str) -> JSON:
    return {
        "id": f"chatcmpl-stub{next(_ids)}", "object": "chat.completion", "created": int(time.time()),
        "model": model, "system_fingerprint": "fp_stub",
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish_reason}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
    }


def tool_call(name: str, arguments: str | JSON, *, model: str = "stub-model") -> Canned:
    return Canned(body=tool_call_response(name, arguments, model=model))


def text(content: str, *, model: str = "stub-model") -> Canned:
    return Canned(body=text_response(content, model=model))


def error(status: int, message: str = "stub error", *, retry_after: float | None = None) -> Canned:
    """An HTTP error with OpenAI's error body (``retry_after`` sets the Retry-After header)."""
    kind = {400: "invalid_request_error", 401: "authentication_error", 429: "rate_limit_exceeded"}.get(status, "server_error")
    headers = {"Retry-After": f"{retry_after:g}"} if retry_after is not None else {}
    return Canned(status=status, headers=headers,
                  body={"error": {"message": message, "type": kind, "param": None, "code": None}})


def malformed(raw: str = '{"id": "chatcmpl-broken", "choices": [') -> Canned:
    """A 200 whose body claims to be JSON and is not."""
    return Canned(raw=raw)


def delayed(seconds: float, then: Canned | None = None) -> Canned:
    """``then`` (default: a text answer) held back ``seconds``: long enough to time a client out."""
    return replace(then or text("late answer"), delay=seconds)


class OpenAIStub:
    """The server; ``url`` is its root (``http://127.0.0.1:<port>``), ``api_base`` adds ``/v1``."""

    def __init__(self, script: Script | Iterable[Canned] = (), *, default: Canned | None = None) -> None:
        self._script = script if callable(script) else None
        self._queue: deque[Canned] = deque() if callable(script) else deque(script)
        self._default = default
        self._closing = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self.requests: list[Recorded] = []
        self.url = ""

    @property
    def api_base(self) -> str:
        return f"{self.url}/v1"

    @property
    def completions(self) -> list[Recorded]:
        """Only the chat-completion requests."""
        return [r for r in self.requests if r.path.endswith("/chat/completions")]

    def push(self, *answers: Canned) -> None:
        self._queue.extend(answers)

    async def __aenter__(self) -> OpenAIStub:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_post("/chat/completions", self._chat)
        app.router.add_get("/v1/models", self._models)
        app.router.add_get("/models", self._models)
        self._runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self.url = f"http://{host}:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._closing.set()
        if self._runner is not None:
            await self._runner.cleanup()

    async def _record(self, request: web.Request) -> JSON | None:
        body = await request.text()
        try:
            parsed = json.loads(body) if body else None
        except json.JSONDecodeError:
            parsed = None
        self.requests.append(Recorded(method=request.method, path=request.path, headers=dict(request.headers),
                                      json=parsed if isinstance(parsed, dict) else None, body=body))
        return parsed if isinstance(parsed, dict) else None

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        payload = await self._record(request)
        answer = self._next(payload or {})
        if answer.delay:
            try:
                await asyncio.wait_for(self._closing.wait(), answer.delay)
            except TimeoutError:
                pass
        if answer.raw is not None:
            return web.Response(status=answer.status, text=answer.raw, content_type="application/json",
                                headers=answer.headers)
        return web.json_response(answer.body or {}, status=answer.status, headers=answer.headers)

    def _next(self, payload: JSON) -> Canned:
        if self._script is not None:
            answer = self._script(payload)
            return answer if isinstance(answer, Canned) else Canned(body=answer)
        if self._queue:
            return self._queue.popleft()
        return self._default or error(500, "openai stub: script exhausted")

    async def _models(self, request: web.Request) -> web.Response:
        await self._record(request)
        return web.json_response({"object": "list", "data": [
            {"id": "stub-model", "object": "model", "created": 0, "owned_by": "resync-tests"}]})
