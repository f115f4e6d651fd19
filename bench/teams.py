"""Resync's Teams path side by side with bare botbuilder apps, interleaved, in one run.

    python bench/teams.py                     # 3 repetitions, fresh processes, rotating order
    python bench/teams.py --reps 5 --activities 2000
    python bench/teams.py --bare bare,bare-credentials,bare-clients   # all three bare apps
    python bench/teams.py --root /path/to/other/checkout   # measure another Resync (before/after)

Four processes, as in production: the TWS simulator (``python -m bot simulator``), the loopback
Teams (``python bench/teams.py --serve-fakes``: the fake identity provider of the tests, with
OpenID metadata, JWKS and a token endpoint over TLS, and the fake Bot Connector), the bot under
test, and this script, which plays the channel: it sends Activity JSON with a real RS256 bearer
token, which each bot validates. The bot is ``python -m bot serve --no-poll`` (web app, agent
core, Teams adapter, SQLite store, a policy with one viewer) or ``bench/bare_botbuilder.py``:
botbuilder's template (``CloudAdapter``, ``ConfigurationBotFrameworkAuthentication``, an
``ActivityHandler``) doing the same job (ack then answer, the same single TWS query, one Adaptive
Card posted through ``continue_conversation``) and nothing else, as (``--bare``):

* ``bare``: exactly as the SDK's documentation and template configure it. botbuilder then makes,
  for every turn and every reply, new msrest clients (a connector and a user-token client each)
  and new credentials, so a new MSAL client with an empty token cache: one token fetch per
  answer, blocking the event loop. That is botbuilder's own default, read in its code, not a
  mistake of this bench (bench/bare_botbuilder.py says where);
* ``bare-credentials``: the same with one credentials object reused through the SDK's
  ``credentials_factory`` parameter (one token an hour); clients still made per turn;
* ``bare-clients``: credentials, connector and user-token client made once, as Resync's Teams
  adapter does with the SDK: the leanest botbuilder app, the floor of what Resync adds.

The default runs ``bare`` (what a team would write from the docs) and ``bare-clients`` (the floor).
Each repetition starts a fresh process of each kind, in rotating order, and runs the same phases:

* HTTP answer: ``--acks`` personal-chat ``status <job>`` messages at ``--in-flight`` outstanding,
  the time until the HTTP 200 the channel waits for (p50, p99); every answer must reach the
  connector before the next phase;
* answered activities per second: ``--activities`` ``status <job>``, then as many ``help``, at
  ``--in-flight``, from the first send until the last answer reached the connector; the bot's CPU
  time (user + system, /proc, all its threads) over the phase per answered activity;
* RSS: after start (and a warm-up), and after a burst of ``--burst`` ``status`` at 100 in flight,
  once every one of them is answered.

Every activity comes from its own conversation, so Teams' per-conversation pacing (7 a second)
stays out of the figures; one user, so Resync asks the connector for the member's e-mail once.
An answer is a message posted (``send`` or ``reply``) or an update of a "working on it" message;
Resync's typing indicators and the tokens the identity provider issued are counted apart. Each
figure is printed for every kind with Resync's ratio to each bare kind over the pairs of a
repetition (median and min-max); the goals apply to the median pair, against each bare kind.
First, the cost of one token validation (``authenticate_request``, keys cached), which every bot
pays per request, is timed in this process.

Where the time goes: ``--only KIND --profile FILE`` runs that bot under cProfile (main thread's
CPU clock) and writes its statistics when it stops; docs/teams-performance.md has the figures
measured on the development machine and the breakdown.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.processes import PASSWORD, USER, free_port, profiled, resync_process  # noqa: E402
from bench.sidebyside import Goal, Run, cpu_seconds, rss_mb, table  # noqa: E402
from bench.slack import job_names  # noqa: E402
from tests.fakes.bot_connector import FakeBotConnector, Member  # noqa: E402
from tests.fakes.teams_idp import FakeIdentityProvider  # noqa: E402

APP_ID = "6d1f3a52-8b7c-4e9d-a0b1-c2d3e4f5a6b7"
APP_PASSWORD = "bench-teams-app-password-0123"
POLICY = '[roles.viewer]\nactions = []\n[bindings]\n"teams:aad-bench" = ["viewer"]\n'
USER_ACCOUNT = Member(id="29:bench", name="Bench User", aad="aad-bench", email="bench@contoso.com")
WORKING = "Working on it"  # Resync's "working on it" message, replaced by the answer when it comes
REUSE = {"bare": "none", "bare-credentials": "credentials", "bare-clients": "clients"}  # bench/bare_botbuilder.py
KINDS = ("resync", *REUSE)
LABELS = {"resync": "Resync", "bare": "bare (SDK default)", "bare-credentials": "bare (token reused)",
          "bare-clients": "bare (clients reused)"}

GOALS = (
    Goal(name="HTTP answer p50", unit="ms", better="lower"),
    Goal(name="HTTP answer p99", unit="ms", better="lower", ratio_goal=1.3),
    Goal(name="answered status/s", unit="/s", better="higher", ratio_goal=0.8),
    Goal(name="answered help/s", unit="/s", better="higher", ratio_goal=0.8),
    Goal(name="CPU per status", unit="ms", better="lower", ratio_goal=1.3),
    Goal(name="CPU per help", unit="ms", better="lower", ratio_goal=1.3),
    Goal(name="RSS after start", unit="MB", better="lower"),
    Goal(name="RSS after burst", unit="MB", better="lower", absolute_goal=100.0),
)




# --- the loopback Teams, in its own process -----------------------------------------------


async def serve_fakes() -> None:
    """The identity provider and the Bot Connector; prints one JSON line with their addresses.
    ``GET /stats`` counts what reached the connector since ``POST /reset``, ``GET /last`` is the
    last message; ``GET /token`` is a channel token for the connector's serviceUrl."""
    with FakeIdentityProvider(tls=True, clients={APP_ID: APP_PASSWORD}) as idp:
        async with FakeBotConnector(idp) as connector:
            connector.add_member(USER_ACCOUNT)
            tokens = [idp.tokens_issued]

            async def stats(_request: web.Request) -> web.Response:
                answers, working, typing, last = 0, 0, 0, 0.0
                for call in connector.calls():
                    if call.status >= 300:
                        continue
                    if call.kind == "update" or (call.kind in ("send", "reply") and call.body.get("type") == "message"):
                        if call.kind != "update" and WORKING in json.dumps(call.body):
                            working += 1
                        else:
                            answers, last = answers + 1, max(last, call.at)
                    elif call.kind in ("send", "reply") and call.body.get("type") == "typing":
                        typing += 1
                return web.json_response({"answers": answers, "last_at": last, "working": working, "typing": typing,
                                          "member": len(connector.calls("member")),
                                          "tokens": idp.tokens_issued - tokens[0]})

            async def reset(_request: web.Request) -> web.Response:
                connector._calls.clear()  # noqa: SLF001 - the fake is ours; the bench must not grow it forever
                connector.messages.clear()
                connector.thread_of.clear()
                connector._first.clear()  # noqa: SLF001
                tokens[0] = idp.tokens_issued
                return web.Response(text="ok")

            async def last(_request: web.Request) -> web.Response:  # to see what the bots answer
                answers = [c.body for c in connector.calls() if c.status < 300 and c.body.get("type") == "message"]
                return web.json_response(answers[-1] if answers else None)

            async def token(_request: web.Request) -> web.Response:
                return web.Response(text=idp.channel_token(APP_ID, connector.url))

            app = web.Application()
            app.router.add_get("/stats", stats)
            app.router.add_post("/reset", reset)
            app.router.add_get("/token", token)
            app.router.add_get("/last", last)
            runner = web.AppRunner(app, handle_signals=False, access_log=None)
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
            print(json.dumps({"connector": connector.url, "stats": f"http://127.0.0.1:{port}",
                              "settings": idp.settings(APP_ID, APP_PASSWORD), "cert": str(idp.cert_path)}), flush=True)
            await asyncio.Event().wait()


@asynccontextmanager
async def fake_teams() -> AsyncIterator[dict[str, Any]]:
    process = subprocess.Popen([sys.executable, __file__, "--serve-fakes"], stdout=subprocess.PIPE, text=True)
    try:
        yield json.loads(process.stdout.readline())  # type: ignore[union-attr]
    finally:
        process.terminate()
        process.wait(timeout=10)


@asynccontextmanager
async def bot(kind: str, root: Path, tws: str, teams: dict[str, Any], data: str,
              profile: Path | None = None) -> AsyncIterator[tuple[str, int]]:
    """The bot under test; yields (its /api/messages URL, its pid). ``profile``: run it under
    cProfile and write its statistics there when it stops."""
    port = free_port()
    prefix = profiled(profile) if profile else None
    env = {"TWS_URL": tws, "TWS_USER": USER, "TWS_PASSWORD": PASSWORD, "REQUESTS_CA_BUNDLE": teams["cert"],
           **teams["settings"]}
    if kind == "resync":
        env |= {"RESYNC_DATA_DIR": tempfile.mkdtemp(dir=data), "RESYNC_POLICY": str(Path(data, "policy.toml")),
                "RESYNC_ALERTS": "false"}
        serve = ["serve", "--port", str(port), "--host", "127.0.0.1", "--no-poll"]
        launch = resync_process(serve, env, f"http://127.0.0.1:{port}/healthz", root=root,
                                command=[*prefix, "bot", *serve] if prefix else None)
    else:
        bare = [str(ROOT / "bench" / "bare_botbuilder.py"), "--port", str(port), "--tws", tws, "--reuse", REUSE[kind]]
        launch = resync_process([kind], env, f"http://127.0.0.1:{port}/healthz",
                                command=[*(prefix or [sys.executable]), *bare])
    async with launch as process:
        yield f"http://127.0.0.1:{port}/api/messages", process.pid


# --- playing the channel ------------------------------------------------------------------


def activity_builder(service_url: str) -> FakeBotConnector:
    """The fake connector's Activity JSON builder for a connector served elsewhere (never entered)."""
    builder = FakeBotConnector(None)  # type: ignore[arg-type]
    builder.url = service_url
    return builder


class Channel:
    """Sends Teams' requests with the channel's token; reads the connector's counts."""

    def __init__(self, session: aiohttp.ClientSession, url: str, teams: dict[str, Any], token: str) -> None:
        self.session, self.url, self.stats_url, self.token = session, url, teams["stats"], token
        self.activities = activity_builder(teams["connector"])

    async def post(self, body: bytes) -> float:
        headers = {"Content-Type": "application/json", "Authorization": f"Bearer {self.token}"}
        started = time.perf_counter()
        async with self.session.post(self.url, data=body, headers=headers) as response:
            await response.read()
            if response.status not in (200, 201, 202):
                raise SystemExit(f"the bot answered {response.status}: {await response.text()}")
        return time.perf_counter() - started

    async def stats(self) -> dict[str, Any]:
        async with self.session.get(f"{self.stats_url}/stats") as response:
            return await response.json()

    async def reset(self) -> None:
        async with self.session.post(f"{self.stats_url}/reset") as response:
            await response.read()

    async def answered(self, count: int, timeout: float = 300) -> dict[str, Any]:
        """Until ``count`` answers reached the connector; its counts (``last_at``: the last one's arrival)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            stats = await self.stats()
            if stats["answers"] >= count:
                return stats
            await asyncio.sleep(0.02)
        raise SystemExit(f"only {stats['answers']} of {count} answers reached the connector")

    def messages(self, texts: list[str], label: str) -> list[bytes]:
        return [json.dumps(self.activities.activity(text=text, conversation=f"a:bench-{label}-{i:05d}-{time.time_ns()}",
                                                    user=USER_ACCOUNT)).encode() for i, text in enumerate(texts)]


async def in_flight(bodies: list[bytes], channel: Channel, limit: int) -> list[float]:
    gate = asyncio.Semaphore(limit)

    async def one(body: bytes) -> float:
        async with gate:
            return await channel.post(body)

    return list(await asyncio.gather(*(one(b) for b in bodies)))


async def measure(channel: Channel, pid: int, names: list[str], args: argparse.Namespace) -> Run:
    run = Run()
    status = lambda count: [f"status {names[i % len(names)]}" for i in range(count)]  # noqa: E731
    await in_flight(channel.messages(status(5) + ["help"] * 5, "warm"), channel, 5)
    await channel.answered(10)
    await asyncio.sleep(0.3)
    run.figures["RSS after start"] = rss_mb(pid)

    await channel.reset()
    latencies = await in_flight(channel.messages(status(args.acks), "ack"), channel, args.in_flight)
    await channel.answered(args.acks)
    cuts = statistics.quantiles(latencies, n=100, method="inclusive")
    run.figures["HTTP answer p50"] = statistics.median(latencies) * 1000
    run.figures["HTTP answer p99"] = cuts[98] * 1000

    for label, texts in (("status", status(args.activities)), ("help", ["help"] * args.activities)):
        await channel.reset()
        bodies = channel.messages(texts, label)
        cpu, started = cpu_seconds(pid), time.monotonic()
        await in_flight(bodies, channel, args.in_flight)
        stats = await channel.answered(len(bodies))
        run.figures[f"answered {label}/s"] = len(bodies) / (stats["last_at"] - started)
        run.figures[f"CPU per {label}"] = (cpu_seconds(pid) - cpu) * 1000 / len(bodies)
        for key, name in (("tokens", "tokens fetched"), ("typing", "typing indicators"),
                          ("working", "'working on it'"), ("member", "member lookups")):
            run.notes[name] = run.notes.get(name, 0) + stats[key]

    await channel.reset()
    await in_flight(channel.messages(status(args.burst), "burst"), channel, 100)
    await channel.answered(args.burst)
    await asyncio.sleep(0.5)
    run.figures["RSS after burst"] = rss_mb(pid)
    return run


# --- token validation, in this process ------------------------------------------------------


async def validation_cost(teams: dict[str, Any], token: str, count: int) -> None:
    from botbuilder.integration.aiohttp import ConfigurationBotFrameworkAuthentication
    from botbuilder.schema import Activity

    from bench.bare_botbuilder import configuration

    auth = ConfigurationBotFrameworkAuthentication(configuration(teams["settings"]))
    activity = Activity.deserialize(activity_builder(teams["connector"]).activity(text="status X"))
    header = f"Bearer {token}"
    await auth.authenticate_request(activity, header)  # fetches the keys once (blocking, like the SDK does)
    times = []
    for _ in range(count):
        started = time.perf_counter()
        await auth.authenticate_request(activity, header)
        times.append(time.perf_counter() - started)
    cuts = statistics.quantiles(times, n=100, method="inclusive")
    print(f"token validation (botbuilder authenticate_request, keys cached), {count} requests: "
          f"p50 {statistics.median(times) * 1e6:.0f} µs, p99 {cuts[98] * 1e6:.0f} µs")


# --- the table --------------------------------------------------------------------------------




async def main(args: argparse.Namespace) -> int:
    sim_port = free_port()
    tws = f"http://127.0.0.1:{sim_port}/twsd"
    kinds = ["resync", *args.bare] if args.only is None else [args.only]
    runs: dict[str, list[Run]] = {k: [] for k in kinds}
    with tempfile.TemporaryDirectory() as data:
        Path(data, "policy.toml").write_text(POLICY)
        async with fake_teams() as teams, resync_process(
                ["simulator", "--port", str(sim_port), "--jobs", str(args.jobs), "--seed", "11", "--speed", "0"],
                {"TWS_USER": USER, "TWS_PASSWORD": PASSWORD}, f"{tws}/sim/stats"):
            os.environ["REQUESTS_CA_BUNDLE"] = teams["cert"]  # this process trusts the fake identity provider
            names = await job_names(tws, 200)
            connector = aiohttp.TCPConnector(limit=args.in_flight + 110)
            async with aiohttp.ClientSession(connector=connector) as session:
                async with session.get(f"{teams['stats']}/token") as response:
                    token = await response.text()  # one token, as the channel reuses its own
                if args.validations:
                    await validation_cost(teams, token, args.validations)
                print(f"simulator: {args.jobs} jobs; {args.reps} repetitions, fresh processes, rotating order; "
                      f"{args.acks} acks and {args.activities} activities of each kind at {args.in_flight} in flight, "
                      f"burst {args.burst}; Resync from {args.root}")
                for rep in range(args.reps):
                    for kind in kinds[rep % len(kinds):] + kinds[:rep % len(kinds)]:
                        async with bot(kind, args.root, tws, teams, data, args.profile) as (url, pid):
                            run = await measure(Channel(session, url, teams, token), pid, names, args)
                        runs[kind].append(run)
                        print(f"  rep {rep + 1} {kind:11} " + "  ".join(f"{k} {v:.1f}" for k, v in run.figures.items()),
                              flush=True)
    return 0 if table(GOALS, runs, LABELS) else 1


def _interrupted(*_: object) -> None:
    raise KeyboardInterrupt  # so that the child processes are stopped on the way out


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, _interrupted)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--acks", type=int, default=500)
    parser.add_argument("--activities", type=int, default=1000)
    parser.add_argument("--burst", type=int, default=3000)
    parser.add_argument("--in-flight", type=int, default=50)
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--validations", type=int, default=2000, help="token validations timed in process (0: skip)")
    parser.add_argument("--bare", type=lambda v: [k for k in v.split(",") if k], default=["bare", "bare-clients"],
                        help="the bare apps to run beside Resync, comma-separated: bare (the SDK's defaults), "
                             "bare-credentials (token reused), bare-clients (token and clients reused); "
                             "default bare,bare-clients")
    parser.add_argument("--root", type=Path, default=ROOT, help="the Resync checkout to run (default: this one)")
    parser.add_argument("--only", choices=KINDS, help="run one kind only (profiling)")
    parser.add_argument("--profile", type=Path, help="run the bot under cProfile, statistics written to this file")
    parser.add_argument("--serve-fakes", action="store_true", help=argparse.SUPPRESS)
    parsed = parser.parse_args()
    if unknown := set(parsed.bare) - set(REUSE):
        parser.error(f"--bare: unknown {', '.join(sorted(unknown))} (choose from {', '.join(REUSE)})")
    if parsed.serve_fakes:
        try:
            asyncio.run(serve_fakes())
        except KeyboardInterrupt:
            pass
    else:
        sys.exit(asyncio.run(main(parsed)))
