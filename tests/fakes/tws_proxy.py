"""A loopback reverse proxy in front of the TWS simulator: the gateway a real TWS often sits behind.

    async with run_simulator(...) as (sim, upstream), TwsProxy(upstream) as proxy:
        client = TwsClient(TwsSettings(urls=(proxy.url,), ...))   # proxy.url ends with /twsd
        proxy.answer(429, headers={"Retry-After": "30"})          # every request, until forward()
        proxy.answer(502, text="<html>Bad gateway</html>")        # a gateway's bare 5xx
        proxy.answer(503, json={"messages": ["AWSJCO005E ..."]})  # an error body of any shape
        proxy.forward()                                           # pass everything through again

tws-api.md documents neither HTTP 429 nor a 5xx without a TWS message, so the simulator (which
serves only documented shapes) has no fault for them; whatever sits between Resync and TWS can
still send them. The proxy forwards every request unchanged (method, path, query, headers, body)
and relays the simulator's answer, or answers itself while told to; ``answered`` counts those.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web

_HOP_BY_HOP = frozenset({"host", "content-length", "content-encoding", "transfer-encoding", "connection"})


@dataclass(frozen=True, slots=True, kw_only=True)
class Canned:
    """What the proxy answers instead of forwarding."""

    status: int
    text: str = ""
    json: Any = None
    headers: Mapping[str, str] = field(default_factory=dict)


class TwsProxy:
    def __init__(self, upstream: str) -> None:
        self._upstream = upstream.removesuffix("/twsd").rstrip("/")
        self._canned: Canned | None = None
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self.url = ""
        self.answered = 0

    def answer(self, status: int, *, text: str = "", json: Any = None,
               headers: Mapping[str, str] | None = None) -> None:
        self._canned = Canned(status=status, text=text, json=json, headers=dict(headers or {}))

    def forward(self) -> None:
        self._canned = None

    async def __aenter__(self) -> TwsProxy:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._session = aiohttp.ClientSession()
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}/twsd"
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        if self._session is not None:
            await self._session.close()

    async def _handle(self, request: web.Request) -> web.Response:
        canned = self._canned
        if canned is not None:
            self.answered += 1
            if canned.json is not None:
                return web.json_response(canned.json, status=canned.status, headers=canned.headers)
            return web.Response(status=canned.status, text=canned.text, content_type="text/html",
                                headers=canned.headers)
        assert self._session is not None
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP}
        async with self._session.request(request.method, self._upstream + request.rel_url.path_qs,
                                         headers=headers, data=await request.read()) as upstream:
            body = await upstream.read()
            kept = {k: v for k, v in upstream.headers.items() if k.lower() not in _HOP_BY_HOP}
            return web.Response(status=upstream.status, body=body, headers=kept)
