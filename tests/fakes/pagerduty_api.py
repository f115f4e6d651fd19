"""A loopback PagerDuty Events API v2 (``POST /v2/enqueue``), as PagerDuty documents it.

    async with FakePagerDuty(routing_keys={"R0UTINGKEY0000000000000000000001"}) as pd:
        url = pd.url                      # .../v2/enqueue: PAGERDUTY_EVENTS_URL
        pd.events                         # every accepted event, in order
        pd.incidents["<dedup_key>"]       # "triggered", "acknowledged" or "resolved"

Documented behaviour kept here: 202 ``{"status": "success", "message": "Event processed",
"dedup_key"}`` for a valid event; 400 ``{"status": "invalid event", "errors": [...]}`` when
``routing_key`` (32 characters), ``event_action`` or, for a trigger, ``payload.summary`` /
``payload.source`` / ``payload.severity`` are missing or wrong; a trigger with the ``dedup_key``
of an open incident updates it; acknowledge/resolve of a resolved or unknown incident are
accepted and dropped. ``fail(status, times)`` answers the next requests with 429 or 5xx.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from aiohttp import web

JSON = dict[str, Any]
SEVERITIES = {"critical", "error", "warning", "info"}


class FakePagerDuty:
    def __init__(self, *, routing_keys: set[str]) -> None:
        self.routing_keys = routing_keys
        self.events: list[JSON] = []  # accepted (202) events
        self.requests: list[tuple[int, JSON | None]] = []  # every request: (status answered, body)
        self.incidents: dict[str, str] = {}
        self.dropped: list[JSON] = []  # accepted but ignored (ack/resolve of no open incident)
        self._failures: list[int] = []
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def __aenter__(self) -> FakePagerDuty:
        app = web.Application()
        app.router.add_post("/v2/enqueue", self._enqueue)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}/v2/enqueue"
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def fail(self, status: int, times: int = 1) -> None:
        self._failures += [status] * times

    def actions(self, dedup_key: str) -> list[str]:
        return [e["event_action"] for e in self.events if e.get("dedup_key") == dedup_key]

    async def wait_for(self, count: int, *, timeout: float = 5.0) -> list[JSON]:
        async with asyncio.timeout(timeout):
            while len(self.events) < count:
                await asyncio.sleep(0.02)
        return self.events

    async def _enqueue(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except ValueError:
            self.requests.append((400, None))
            return web.json_response({"status": "invalid event", "message": "Event object is invalid",
                                      "errors": ["Malformed JSON"]}, status=400)
        if self._failures:
            status = self._failures.pop(0)
            self.requests.append((status, body))
            headers = {"Retry-After": "1"} if status == 429 else {}
            return web.json_response({"status": "throttled" if status == 429 else "error"}, status=status,
                                     headers=headers)
        errors = _problems(body, self.routing_keys)
        if errors:
            self.requests.append((400, body))
            return web.json_response({"status": "invalid event", "message": "Event object is invalid",
                                      "errors": errors}, status=400)
        self.requests.append((202, body))
        key = body.get("dedup_key") or uuid.uuid4().hex
        action = body["event_action"]
        if action == "trigger":
            self.incidents[key] = "triggered" if self.incidents.get(key) != "acknowledged" else "acknowledged"
            self.events.append(body)
        elif self.incidents.get(key) in {"triggered", "acknowledged"}:
            self.incidents[key] = "acknowledged" if action == "acknowledge" else "resolved"
            self.events.append(body)
        else:
            self.dropped.append(body)
        return web.json_response({"status": "success", "message": "Event processed", "dedup_key": key}, status=202)


def _problems(body: Any, keys: set[str]) -> list[str]:
    if not isinstance(body, dict):
        return ["Event object is not an object"]
    errors = []
    key = body.get("routing_key")
    if not isinstance(key, str) or len(key) != 32 or key not in keys:
        errors.append("'routing_key' is invalid")
    action = body.get("event_action")
    if action not in {"trigger", "acknowledge", "resolve"}:
        errors.append("'event_action' is invalid")
    dedup = body.get("dedup_key")
    if action in {"acknowledge", "resolve"} and not dedup:
        errors.append("'dedup_key' is required for acknowledge and resolve")
    if dedup is not None and (not isinstance(dedup, str) or len(dedup) > 255):
        errors.append("'dedup_key' must be a string of at most 255 characters")
    if action == "trigger":
        payload = body.get("payload")
        if not isinstance(payload, dict):
            errors.append("'payload' is missing")
        else:
            if not isinstance(payload.get("summary"), str) or not payload["summary"] or len(payload["summary"]) > 1024:
                errors.append("'payload.summary' is invalid")
            if not isinstance(payload.get("source"), str) or not payload["source"]:
                errors.append("'payload.source' is missing")
            if payload.get("severity") not in SEVERITIES:
                errors.append("'payload.severity' is invalid")
    return errors
