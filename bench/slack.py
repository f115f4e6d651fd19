"""Benchmark of the Slack adapter inside the real bot: acknowledgement latency and answer time.

    python bench/slack.py                        # 500 commands at 50 in flight, 50 mentions
    python bench/slack.py --commands 1000 --in-flight 100 --mentions 100

Three processes, as in production: the TWS simulator (``resync simulator``), the bot
(``resync serve --no-poll``: web app, agent core, Slack adapter, SQLite store) and this script,
which plays Slack: it signs and sends requests, and hosts the loopback fake Slack Web API (and the
response URLs) the bot answers to. It prints:

* slash commands: the latency of Slack's HTTP request until the bot's acknowledgement (the
  ``ack`` with its short "working on it" answer), p50 / p99 / max over ``--commands`` signed
  ``/tws status <job>`` requests with ``--in-flight`` outstanding at a time; then how long until
  every full answer reached its response URL (each command runs a real TWS query);
* mentions: for ``--mentions`` signed ``app_mention`` events asking ``status <job>``, one at a
  time, the time from sending the event until the answer reaches the fake ``chat.postMessage``.

Every command and mention comes from its own channel, so the per-channel pacing (one message a
second) does not enter the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.processes import PASSWORD, USER, free_port, resync_process  # noqa: E402
from tests.fakes.slack_api import (  # noqa: E402
    BOT_USER_ID, FakeSlackApi, event_callback, mention, sign, slash_command,
)

SECRET = "bench-signing-secret-0123456789"
TOKEN = "xoxb-bench-0000-token"
POLICY = '[roles.operator]\nactions = ["rerun"]\n[bindings]\n"slack:U0ANA" = ["operator"]\n'


async def job_names(base: str, count: int) -> list[str]:
    """Names of real jobs in the simulator's plan, to ask about."""
    basic = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    async with aiohttp.ClientSession(headers={"Authorization": f"Basic {basic}"}) as session:
        async with session.get(f"{base}/api/v2/plan/job", params={"oql": "internalStatus = 'ABEND'",
                                                                  "limit": "200"}) as response:
            results = (await response.json())["results"]
    names = sorted({job["name"] for job in results})
    return [names[i % len(names)] for i in range(count)]


def percentiles(values: list[float]) -> str:
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return (f"p50 {statistics.median(values) * 1000:7.1f} ms   p99 {cuts[98] * 1000:7.1f} ms   "
            f"max {max(values) * 1000:7.1f} ms")


async def signed_post(session: aiohttp.ClientSession, url: str, body: bytes, content_type: str) -> float:
    """Send one request as Slack does; the seconds until the bot's 200."""
    headers = {**sign(body, SECRET), "Content-Type": content_type}
    started = time.perf_counter()
    async with session.post(url, data=body, headers=headers) as response:
        await response.read()
        if response.status != 200:
            raise SystemExit(f"the bot answered {response.status}: {await response.text()}")
    return time.perf_counter() - started


async def commands(session: aiohttp.ClientSession, url: str, slack: FakeSlackApi, names: list[str],
                   in_flight: int) -> None:
    gate = asyncio.Semaphore(in_flight)

    async def one(i: int) -> float:
        body = slash_command(f"status {names[i]}", channel=f"CC{i:05d}", response_url=slack.response_url(f"c{i}"))
        async with gate:
            return await signed_post(session, url, body, "application/x-www-form-urlencoded")

    started = time.perf_counter()
    latencies = await asyncio.gather(*(one(i) for i in range(len(names))))
    acked = time.perf_counter() - started
    await slack.wait_for("response_url", len(names), timeout=300)
    answered = time.perf_counter() - started
    failed = sum(1 for c in slack.calls("response_url") if c.status != 200)
    print(f"slash commands: {len(names)} signed /tws status, {in_flight} in flight")
    print(f"  acknowledgement   {percentiles(latencies)}")
    print(f"  all acked in {acked:.2f} s ({len(names) / acked:.0f}/s); every full answer delivered after "
          f"{answered:.2f} s ({failed} failed)")


async def mentions(session: aiohttp.ClientSession, url: str, slack: FakeSlackApi, names: list[str]) -> None:
    times = []
    for name in names:
        channel = f"CM{uuid.uuid4().hex[:10].upper()}"
        body = json.dumps(event_callback(mention(f"<@{BOT_USER_ID}> status {name}", channel=channel))).encode()
        before = len(slack.calls("chat.postMessage"))
        started = time.monotonic()
        await signed_post(session, url, body, "application/json")
        calls = await slack.wait_for("chat.postMessage", before + 1, timeout=30)
        answer = next(c for c in calls if c.params.get("channel") == channel)
        times.append(answer.at - started)
    print(f"mentions: {len(names)} signed app_mention 'status <job>', one at a time")
    print(f"  event -> chat.postMessage   {percentiles(times)}")


async def main(args: argparse.Namespace) -> None:
    sim_port, bot_port = free_port(), free_port()
    base = f"http://127.0.0.1:{sim_port}/twsd"
    with tempfile.TemporaryDirectory() as data:
        Path(data, "policy.toml").write_text(POLICY)
        async with FakeSlackApi() as slack, resync_process(
                ["simulator", "--port", str(sim_port), "--jobs", str(args.jobs), "--seed", "11", "--speed", "1"],
                {"TWS_USER": USER, "TWS_PASSWORD": PASSWORD}, f"{base}/sim/stats"):
            env = {"TWS_URL": base, "TWS_USER": USER, "TWS_PASSWORD": PASSWORD, "RESYNC_DATA_DIR": data,
                   "RESYNC_POLICY": str(Path(data, "policy.toml")), "RESYNC_ALERTS": "false",
                   "SLACK_BOT_TOKEN": TOKEN, "SLACK_SIGNING_SECRET": SECRET, "SLACK_API_URL": slack.url}
            async with resync_process(["serve", "--port", str(bot_port), "--host", "127.0.0.1", "--no-poll"], env,
                             f"http://127.0.0.1:{bot_port}/healthz"):
                url = f"http://127.0.0.1:{bot_port}/slack/events"
                names = await job_names(base, max(args.commands, args.mentions))
                connector = aiohttp.TCPConnector(limit=args.in_flight)
                async with aiohttp.ClientSession(connector=connector) as session:
                    await mentions(session, url, slack, names[:3])  # warm-up: auth.test, first TWS session
                    print(f"(simulator: {args.jobs} jobs; bot: resync serve, SQLite store; warm-up done)")
                    await commands(session, url, slack, names[: args.commands], args.in_flight)
                    await mentions(session, url, slack, names[: args.mentions])


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--commands", type=int, default=500)
    parser.add_argument("--in-flight", type=int, default=50)
    parser.add_argument("--mentions", type=int, default=50)
    parser.add_argument("--jobs", type=int, default=2000)
    asyncio.run(main(parser.parse_args()))
