"""The aiohttp web application: health, readiness, metrics, the JSON chat API, and the mount
point of the chat adapters (``Components.adapters``: ``/slack/events``, ...).

``create_app`` builds every component through ``bot.wiring.assemble`` inside one
``AsyncExitStack`` that the app closes on shutdown (aiohttp's ``run_app`` turns SIGTERM into a
graceful shutdown: in-flight requests finish, the scheduler stops, clients close).
"""

from __future__ import annotations

import hmac
import time
from contextlib import AsyncExitStack
from dataclasses import asdict

import structlog
from aiohttp import web

from bot import json_input
from bot.config import Settings
from bot.errors import ResyncError
from bot.events import Event
from bot.logs import bind_correlation
from bot.wiring import Components, assemble

log = structlog.get_logger(__name__)

COMPONENTS = web.AppKey("components", Components)
_MAX_TEXT = 4000
_MAX_ACTION_VALUE = 500  # button values are tokens or small JSON choices
_MAX_CHAT_BODY = 64 * 1024


async def create_app(settings: Settings, *, poll: bool = True) -> web.Application:
    stack = AsyncExitStack()
    try:
        components = await assemble(settings, stack, poll=poll)
    except BaseException:
        await stack.aclose()
        raise
    app = web.Application(middlewares=[_observed], client_max_size=1024 * 1024)
    app[COMPONENTS] = components
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
    app.router.add_post("/api/chat", chat)
    app.router.add_post("/api/tws/events", tws_events)
    for adapter in components.adapters:
        adapter.mount(app)

    async def on_startup(_app: web.Application) -> None:
        for adapter in components.adapters:
            await adapter.start()

    async def on_cleanup(_app: web.Application) -> None:
        log.info("shutting_down")
        await stack.aclose()

    app.on_startup.append(on_startup)
    app.on_cleanup.append(on_cleanup)
    return app


@web.middleware
async def _observed(request: web.Request, handler):  # type: ignore[no-untyped-def]
    """Correlation id and Prometheus figures per request; one catch-all per HTTP entry point."""
    bind_correlation(correlation_id=request.headers.get("X-Request-Id"), path=request.path)
    started = time.perf_counter()
    route = request.match_info.route.resource.canonical if request.match_info.route.resource else "unmatched"
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    except Exception:  # the catch-all of this entry point: log, answer politely
        log.exception("http_request_failed")
        return web.json_response({"error": "internal error"}, status=500)
    finally:
        metrics_ = request.app[COMPONENTS].metrics
        metrics_.http_requests.labels(request.method, route, str(status)).inc()
        metrics_.http_latency.labels(route).observe(time.perf_counter() - started)


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "alive"})


async def readyz(request: web.Request) -> web.Response:
    """Ready while the bot itself can serve; 503 only when it cannot (store unreachable, Slack link down).

    TWS being down does not make the bot unready: it must still tell people "TWS is down". The
    TWS state and the breaker (read once, so the body never shows two states) are in the body.
    """
    components = request.app[COMPONENTS]
    problems: dict[str, str] = {}
    breaker = components.tws.breaker_state
    checks: dict[str, str] = {"breaker": breaker, "store": components.store.kind}
    if breaker == "open":
        checks["tws"] = "down: the breaker is open, TWS calls fail fast until it recovers"
    else:
        try:
            info = await components.tws.engine_info()
            checks["tws"] = f"up: {info.version} at {components.tws.active_url}"
        except ResyncError as exc:
            checks["tws"] = f"down: {type(exc).__name__}: {str(exc)[:200]}"
    try:
        await components.store.ping()
    except ResyncError as exc:
        problems["store"] = str(exc)
    for adapter in components.adapters:
        healthy = await adapter.healthy()
        checks[adapter.name] = "connected" if healthy else "disconnected"
        if not healthy:
            problems[adapter.name] = "no live connection to the platform (reconnecting)"
    if components.watch is not None:
        checks["alerts"] = components.watch.health()
    body = {"status": "ready" if not problems else "not ready", "checks": checks, "problems": problems}
    return web.json_response(body, status=200 if not problems else 503)


async def tws_events(request: web.Request) -> web.Response:
    """TWS pushes a job's state change (bot/alerts/push.py): bearer ``RESYNC_EVENTS_TOKEN``."""
    from bot.alerts import push

    components = request.app[COMPONENTS]
    raw = await request.content.read(push.MAX_BODY + 1)
    answer = await push.handle(raw, authorization=request.headers.get("Authorization", ""),
                               token=components.settings.web.events_token, tws=components.tws, watch=components.watch)
    return web.json_response(answer.body, status=answer.status)


async def metrics(request: web.Request) -> web.Response:
    payload, content_type = request.app[COMPONENTS].metrics.render()
    return web.Response(body=payload, headers={"Content-Type": content_type})


async def chat(request: web.Request) -> web.Response:
    """JSON chat API for integrations, authenticated by ``RESYNC_API_TOKEN`` as a bearer token.

    Request: ``{"user": "ana", "text": "status EXTRACT01", "conversation": "ticket-42", "lang": "pt"}``
    or, to press a button (e.g. confirm with the token from a reply's Confirm button):
    ``{"user": "ana", "action_id": "resync_confirm", "action_value": "<token>", "conversation": ...}``.
    Response: ``{"replies": [<Reply as JSON>...]}``.
    """
    components = request.app[COMPONENTS]
    token = components.settings.web.api_token
    if not token:
        return web.json_response({"error": "the chat API is disabled: set RESYNC_API_TOKEN"}, status=404)
    given = request.headers.get("Authorization", "")
    # Header bytes that are not UTF-8 arrive as surrogate escapes: compare them as the bytes they were.
    if not hmac.compare_digest(given.encode("utf-8", "surrogateescape"), f"Bearer {token}".encode()):
        return web.json_response({"error": "missing or invalid bearer token"}, status=401)
    if (request.content_length or 0) > _MAX_CHAT_BODY:
        return web.json_response({"error": f"the body is larger than {_MAX_CHAT_BODY} bytes"}, status=413)
    try:
        body = json_input.parse(await request.read(), max_bytes=_MAX_CHAT_BODY)
    except json_input.BadInput as exc:
        return web.json_response({"error": str(exc)}, status=400)
    event, error = _chat_event(body)
    if event is None:
        return web.json_response({"error": error}, status=400)
    replies = await components.agent.handle(event)
    return web.json_response({"replies": [asdict(reply) for reply in replies]})


def _chat_event(body: object) -> tuple[Event | None, str]:
    """The request's fields, each checked for its type and size (issue 10: no 500 for any input)."""
    if not isinstance(body, dict):
        return None, "the body must be a JSON object"
    user, text = body.get("user"), body.get("text", "")
    conversation = body.get("conversation", f"dm-{user}")
    action_id, action_value, lang = body.get("action_id"), body.get("action_value"), body.get("lang")
    for name, value in (("user", user), ("conversation", conversation)):
        if not isinstance(value, str) or not value.strip() or len(value) > 200 or not value.isprintable():
            return None, f"'{name}' must be a non-empty string of printable characters (at most 200)"
    if not isinstance(text, str) or len(text) > _MAX_TEXT:
        return None, f"'text' must be a string of at most {_MAX_TEXT} characters"
    if action_id is None and not text.strip():
        return None, "send 'text', or 'action_id' with 'action_value'"
    if action_id is not None and (not isinstance(action_id, str) or not isinstance(action_value, str)
                                  or len(action_id) > 100 or len(action_value) > _MAX_ACTION_VALUE):
        return None, f"'action_id' and 'action_value' must be strings (at most 100 and {_MAX_ACTION_VALUE} characters)"
    if lang is not None and lang not in ("en", "pt"):
        return None, "'lang' must be \"en\" or \"pt\""
    return Event(platform="http", workspace="api", channel=conversation, user_id=user, user_name=user,
                 text=text, kind="action" if action_id else "dm", action_id=action_id, action_value=action_value,
                 lang=lang), ""
