"""Benchmark of the Teams adapter inside the real bot: activity -> reply latency and token validation.

    python bench/teams.py                            # 500 activities at 50 in flight
    python bench/teams.py --activities 1000 --in-flight 100 --no-bare

Processes, as in production: the TWS simulator (``resync simulator``), the bot (``resync serve
--no-poll``: web app, agent core, Teams adapter, SQLite store) and this script, which plays Teams:
it hosts the loopback identity provider (OpenID metadata, JWKS, the bot's token endpoint) and the
loopback Bot Connector the bot answers to, and sends Activities with real RS256 bearer tokens, so
every request is validated by botbuilder (keys cached after the first). It prints:

* the cost of token validation per request: botbuilder's ``authenticate_request`` on one valid
  token, in this process, keys cached (what each inbound request pays before anything runs);
* activity -> reply: for ``--activities`` personal-chat messages ``status <job>`` (each in its own
  conversation, so Teams' per-conversation pacing does not enter the figures) with ``--in-flight``
  outstanding, the time from sending the Activity until the answer card reaches the connector,
  and the HTTP answer time the channel sees;
* side by side, unless ``--no-bare``: a bare botbuilder bot (``CloudAdapter.process`` and an
  ``ActivityHandler`` that echoes in the turn, no core, no TWS) under the same load and validation.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.processes import PASSWORD, USER, free_port, resync_process  # noqa: E402
from tests.fakes.bot_connector import FakeBotConnector, Member  # noqa: E402
from tests.fakes.teams_idp import FakeIdentityProvider  # noqa: E402

APP_ID = "6d1f3a52-8b7c-4e9d-a0b1-c2d3e4f5a6b7"
APP_PASSWORD = "bench-teams-app-password-0123"
POLICY = '[roles.viewer]\nactions = []\n[bindings]\n"teams:aad-bench" = ["viewer"]\n'
USER_ACCOUNT = Member(id="29:bench", name="Bench User", aad="aad-bench", email="bench@contoso.com")


def percentiles(values: list[float]) -> str:
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return (f"p50 {statistics.median(values) * 1000:7.1f} ms   p99 {cuts[98] * 1000:7.1f} ms   "
            f"max {max(values) * 1000:7.1f} ms")


async def job_names(base: str, count: int) -> list[str]:
    basic = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    async with aiohttp.ClientSession(headers={"Authorization": f"Basic {basic}"}) as session:
        async with session.get(f"{base}/api/v2/plan/job", params={"limit": "200"}) as response:
            names = sorted({job["name"] for job in (await response.json())["results"]})
    return [names[i % len(names)] for i in range(count)]


# --- token validation, in process ----------------------------------------------------------

async def validation_cost(idp: FakeIdentityProvider, connector: FakeBotConnector, count: int) -> None:
    from types import SimpleNamespace

    from botbuilder.integration.aiohttp import ConfigurationBotFrameworkAuthentication
    from botbuilder.schema import Activity

    env = idp.settings(APP_ID, APP_PASSWORD)
    auth = ConfigurationBotFrameworkAuthentication(SimpleNamespace(
        APP_ID=APP_ID, APP_PASSWORD=APP_PASSWORD, TO_BOT_FROM_CHANNEL_OPENID_METADATA_URL=env["ToBotFromChannelOpenIdMetadataUrl"],
        TO_BOT_FROM_CHANNEL_TOKEN_ISSUER=env["ToBotFromChannelTokenIssuer"],
        TO_CHANNEL_FROM_BOT_LOGIN_URL=env["ToChannelFromBotLoginUrl"],
        TO_CHANNEL_FROM_BOT_OAUTH_SCOPE=env["ToChannelFromBotOAuthScope"], VALIDATE_AUTHORITY=False))
    activity = Activity.deserialize(connector.activity(text="status X"))
    header = f"Bearer {idp.channel_token(APP_ID, connector.url)}"
    await auth.authenticate_request(activity, header)  # fetches the keys once (blocking, like the SDK does)
    times = []
    for _ in range(count):
        started = time.perf_counter()
        await auth.authenticate_request(activity, header)
        times.append(time.perf_counter() - started)
    cuts = statistics.quantiles(times, n=100, method="inclusive")
    print(f"token validation (botbuilder authenticate_request, keys cached), {count} requests:")
    print(f"  p50 {statistics.median(times) * 1e6:6.0f} µs   p99 {cuts[98] * 1e6:6.0f} µs   "
          f"= {1 / statistics.mean(times):,.0f} validations/s on one core")


# --- activity -> reply, over the wire ------------------------------------------------------

async def load(url: str, idp: FakeIdentityProvider, connector: FakeBotConnector, texts: list[str],
               in_flight: int, label: str) -> None:
    gate = asyncio.Semaphore(in_flight)
    token = idp.channel_token(APP_ID, connector.url)  # one token, as the channel reuses its own
    answered: list[float] = []

    async def one(session: aiohttp.ClientSession, i: int) -> float:
        conversation = f"a:bench-{label}-{i:05d}"
        body = json.dumps(connector.activity(text=texts[i], conversation=conversation, user=USER_ACCOUNT))
        async with gate:
            started = time.monotonic()
            async with session.post(url, data=body, headers={"Content-Type": "application/json",
                                                             "Authorization": f"Bearer {token}"}) as response:
                await response.read()
                if response.status not in (200, 201):
                    raise SystemExit(f"{label}: the bot answered {response.status}: {await response.text()}")
            answered.append(time.monotonic() - started)
            reply = await connector.first_message(conversation, timeout=60)
            return reply.at - started

    connection = aiohttp.TCPConnector(limit=in_flight)
    tokens = idp.tokens_issued
    async with aiohttp.ClientSession(connector=connection) as session:
        started = time.monotonic()
        latencies = await asyncio.gather(*(one(session, i) for i in range(len(texts))))
        took = time.monotonic() - started
    print(f"{label}: {len(texts)} activities, {in_flight} in flight, token validation on; "
          f"outbound tokens fetched from the identity provider: {idp.tokens_issued - tokens}")
    print(f"  HTTP answer          {percentiles(answered)}")
    print(f"  activity -> reply    {percentiles(latencies)}   ({len(texts) / took:.0f} replies/s)")


def bare_bot(port: int, env: dict[str, str]) -> None:
    """A bare botbuilder bot: CloudAdapter.process and an echo in the turn; nothing else."""
    from types import SimpleNamespace

    from aiohttp import web
    from botbuilder.core import ActivityHandler, MessageFactory, TurnContext
    from botbuilder.integration.aiohttp import CloudAdapter, ConfigurationBotFrameworkAuthentication

    config = SimpleNamespace(APP_ID=APP_ID, APP_PASSWORD=APP_PASSWORD, VALIDATE_AUTHORITY=False,
                             TO_BOT_FROM_CHANNEL_OPENID_METADATA_URL=env["ToBotFromChannelOpenIdMetadataUrl"],
                             TO_BOT_FROM_CHANNEL_TOKEN_ISSUER=env["ToBotFromChannelTokenIssuer"],
                             TO_CHANNEL_FROM_BOT_LOGIN_URL=env["ToChannelFromBotLoginUrl"],
                             TO_CHANNEL_FROM_BOT_OAUTH_SCOPE=env["ToChannelFromBotOAuthScope"])
    adapter = CloudAdapter(ConfigurationBotFrameworkAuthentication(config))

    class Echo(ActivityHandler):
        async def on_message_activity(self, turn_context: TurnContext) -> None:
            await turn_context.send_activity(MessageFactory.text(f"echo: {turn_context.activity.text}"))

    bot = Echo()

    async def messages(request: web.Request) -> web.Response:
        return await adapter.process(request, bot) or web.Response(status=200)

    async def healthz(_: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/api/messages", messages)
    app.router.add_get("/healthz", healthz)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


async def bare(idp: FakeIdentityProvider, connector: FakeBotConnector, texts: list[str], in_flight: int,
               env: dict[str, str]) -> None:
    port = free_port()
    process = subprocess.Popen([sys.executable, __file__, "--serve-bare", str(port)], cwd=ROOT,
                               env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        async with aiohttp.ClientSession() as session:
            for _ in range(300):
                try:
                    async with session.get(f"http://127.0.0.1:{port}/healthz") as response:
                        if response.status == 200:
                            break
                except aiohttp.ClientError:
                    await asyncio.sleep(0.1)
        url = f"http://127.0.0.1:{port}/api/messages"
        await load(url, idp, connector, texts[:5], 5, "bare-warmup")
        await load(url, idp, connector, texts, in_flight, "bare botbuilder echo bot")
    finally:
        process.terminate()
        process.wait(timeout=15)


async def main(args: argparse.Namespace) -> None:
    sim_port, bot_port = free_port(), free_port()
    base = f"http://127.0.0.1:{sim_port}/twsd"
    with tempfile.TemporaryDirectory() as data, FakeIdentityProvider(tls=True, clients={APP_ID: APP_PASSWORD}) as idp:
        Path(data, "policy.toml").write_text(POLICY)
        os.environ["REQUESTS_CA_BUNDLE"] = str(idp.cert_path)  # this process and its children trust the fake IdP
        async with FakeBotConnector(idp) as connector, resync_process(
                ["simulator", "--port", str(sim_port), "--jobs", str(args.jobs), "--seed", "11", "--speed", "1"],
                {"TWS_USER": USER, "TWS_PASSWORD": PASSWORD}, f"{base}/sim/stats"):
            connector.add_member(USER_ACCOUNT)
            await validation_cost(idp, connector, args.validations)
            teams = idp.settings(APP_ID, APP_PASSWORD)
            env = {"TWS_URL": base, "TWS_USER": USER, "TWS_PASSWORD": PASSWORD, "RESYNC_DATA_DIR": data,
                   "RESYNC_POLICY": str(Path(data, "policy.toml")), "RESYNC_ALERTS": "false", **teams}
            names = await job_names(base, args.activities)
            texts = [f"status {name}" for name in names]
            async with resync_process(["serve", "--port", str(bot_port), "--host", "127.0.0.1", "--no-poll"], env,
                                      f"http://127.0.0.1:{bot_port}/healthz"):
                url = f"http://127.0.0.1:{bot_port}/api/messages"
                await load(url, idp, connector, texts[:5], 5, "warm-up")
                print(f"(simulator: {args.jobs} jobs; bot: resync serve, SQLite store; warm-up done)")
                await load(url, idp, connector, texts, args.in_flight, "resync serve (Teams adapter + core + TWS)")
            if args.bare:
                await bare(idp, connector, texts, args.in_flight, teams)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--activities", type=int, default=500)
    parser.add_argument("--in-flight", type=int, default=50)
    parser.add_argument("--validations", type=int, default=2000)
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--no-bare", dest="bare", action="store_false", help="skip the bare botbuilder bot")
    parser.add_argument("--serve-bare", type=int, help=argparse.SUPPRESS)
    parsed = parser.parse_args()
    if parsed.serve_bare:
        bare_bot(parsed.serve_bare, dict(os.environ))
    else:
        asyncio.run(main(parsed))
