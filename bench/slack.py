"""Resync's Slack event path side by side with a bare slack-bolt app, interleaved, in one run.

    python bench/slack.py                    # 3 repetitions of each, fresh processes, A/B interleaved
    python bench/slack.py --reps 5 --events 2000
    python bench/slack.py --root /path/to/other/checkout   # measure another Resync (before/after)

Four processes, as in production: the TWS simulator (``python -m bot simulator``), the fake Slack
Web API and response URLs (``bench/slack_fake.py``, the loopback fake of the tests), the bot under
test, and this script, which plays Slack (it signs and sends requests). The bot is either
``python -m bot serve --no-poll`` (web app, agent core, Slack adapter, SQLite store, default
policy plus one operator) or ``bench/bare_bolt.py``: an ``AsyncApp`` doing the same job the
idiomatic way (same web path, ack then answer, the same single TWS query, one reply posted), with
nothing else (no dedup, policy, pacing or catch-all). Each repetition starts a fresh process of
each, in alternating order, and runs the same phases against it:

* slash-command ack: ``--commands`` signed ``/tws status <job>`` at ``--in-flight`` outstanding,
  latency until the HTTP 200 carrying the "working on it" ack (p50, p99); every full answer must
  reach its response URL before the next phase;
* answered events per second: ``--events`` signed ``app_mention`` events (``status <job>``, then
  ``help``) at ``--in-flight``, from the first send until the last answer reached
  ``chat.postMessage``; the bot's CPU time (user + system, /proc) over the phase per answered event;
* RSS: after start (and warm-up), and after a burst of ``--burst`` mentions at 100 in flight,
  once every one of them is answered.

Every event comes from its own channel, so per-channel pacing (one message a second) stays out of
the figures. The machine is shared and noisy: each figure is printed for both with the ratio of
each A/B pair (median and min-max over the repetitions), which is what the goals apply to.

Where the time goes, per answered event, and how to profile again: run the bot under cProfile
through this benchmark and sum the stages with ``bench/slack_stages.py``::

    python bench/slack.py --reps 1 --only resync --profile /tmp/after.prof
    python bench/slack.py --reps 1 --only resync --profile /tmp/before.prof --root /path/to/old/checkout
    python bench/slack_stages.py /tmp/before.prof /tmp/after.prof

(``--keep`` pauses before the burst, e.g. to attach py-spy to the printed pid instead.) The
before/after budget and the side-by-side figures measured on the development machine are in
docs/slack-performance.md.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.processes import PASSWORD, USER, free_port, profiled, resync_process  # noqa: E402
from bench.sidebyside import Goal, Run, cpu_seconds, rss_mb, table  # noqa: E402
from tests.fakes.slack_api import BOT_USER_ID, event_callback, mention, sign, slash_command  # noqa: E402

SECRET = "bench-signing-secret-0123456789"
TOKEN = "xoxb-bench-0000-token"
POLICY = '[roles.operator]\nactions = ["rerun"]\n[bindings]\n"slack:U0ANA" = ["operator"]\n'
FORM, JSON_TYPE = "application/x-www-form-urlencoded", "application/json"




LABELS = {"resync": "Resync", "bare": "bare bolt"}
GOALS = (
    Goal(name="slash-command ack p50", unit="ms", better="lower"),
    Goal(name="slash-command ack p99", unit="ms", better="lower", ratio_goal=1.3),
    Goal(name="answered status/s", unit="/s", better="higher", ratio_goal=0.8),
    Goal(name="answered help/s", unit="/s", better="higher", ratio_goal=0.8),
    Goal(name="CPU per status", unit="ms", better="lower", ratio_goal=1.3),
    Goal(name="CPU per help", unit="ms", better="lower", ratio_goal=1.3),
    Goal(name="RSS after start", unit="MB", better="lower"),
    Goal(name="RSS after burst", unit="MB", better="lower", absolute_goal=100.0),
)




# --- the processes --------------------------------------------------------------------------

@asynccontextmanager
async def fake_slack() -> AsyncIterator[tuple[str, str, str]]:
    """bench/slack_fake.py; yields (Web API URL, a response URL, stats base URL)."""
    stats_port = free_port()
    process = subprocess.Popen([sys.executable, str(ROOT / "bench" / "slack_fake.py"), "--stats-port",
                                str(stats_port)], stdout=subprocess.PIPE, text=True)
    try:
        lines = dict(process.stdout.readline().split(" ", 1) for _ in range(2))  # type: ignore[union-attr]
        yield lines["api"].strip(), lines["responses"].strip(), f"http://127.0.0.1:{stats_port}"
    finally:
        process.terminate()
        process.wait(timeout=10)


@asynccontextmanager
async def bot(kind: str, root: Path, tws: str, api: str, data: str,
              profile: Path | None = None, redis: str | None = None) -> AsyncIterator[tuple[str, int]]:
    """The bot under test; yields (its /slack/events URL, its pid). ``profile``: run Resync under
    cProfile and write its statistics there when it stops."""
    port = free_port()
    env = {"TWS_URL": tws, "TWS_USER": USER, "TWS_PASSWORD": PASSWORD, "SLACK_BOT_TOKEN": TOKEN,
           "SLACK_SIGNING_SECRET": SECRET, "SLACK_API_URL": api}
    if kind == "resync":
        state = tempfile.mkdtemp(dir=data)
        env |= {"RESYNC_DATA_DIR": state, "RESYNC_POLICY": str(Path(data, "policy.toml")), "RESYNC_ALERTS": "false"}
        if redis:
            env["REDIS_URL"] = redis
        serve = ["serve", "--port", str(port), "--host", "127.0.0.1", "--no-poll"]
        command = [*profiled(profile), "bot", *serve] if profile else None
        launch = resync_process(serve, env, f"http://127.0.0.1:{port}/healthz", root=root, command=command)
    else:
        launch = resync_process(["bare"], env, f"http://127.0.0.1:{port}/healthz", command=[
            sys.executable, str(ROOT / "bench" / "bare_bolt.py"), "--port", str(port), "--tws", tws,
            "--slack-api", api])
    async with launch as process:
        yield f"http://127.0.0.1:{port}/slack/events", process.pid




# --- playing Slack ----------------------------------------------------------------------------


class Slack:
    """Signs and sends Slack's requests; reads the fake's counts."""

    def __init__(self, session: aiohttp.ClientSession, url: str, stats: str, response_url: str) -> None:
        self.session, self.url, self.stats, self.response_url = session, url, stats, response_url

    async def post(self, body: bytes, content_type: str) -> float:
        headers = {**sign(body, SECRET), "Content-Type": content_type}
        started = time.perf_counter()
        async with self.session.post(self.url, data=body, headers=headers) as response:
            await response.read()
            if response.status != 200:
                raise SystemExit(f"the bot answered {response.status}: {await response.text()}")
        return time.perf_counter() - started

    async def count(self, method: str) -> tuple[int, float]:
        async with self.session.get(f"{self.stats}/stats", params={"method": method}) as response:
            body = await response.json()
        return body["ok"], body["last_at"]

    async def reset(self) -> None:
        async with self.session.post(f"{self.stats}/reset") as response:
            await response.read()

    async def answered(self, method: str, count: int, timeout: float = 300) -> float:
        """Until ``count`` successful calls of ``method`` arrived; the arrival time of the last."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ok, last = await self.count(method)
            if ok >= count:
                return last
            await asyncio.sleep(0.02)
        raise SystemExit(f"only {ok} of {count} answers reached {method}")


async def in_flight(bodies: list[tuple[bytes, str]], slack: Slack, limit: int) -> list[float]:
    gate = asyncio.Semaphore(limit)

    async def one(body: bytes, content_type: str) -> float:
        async with gate:
            return await slack.post(body, content_type)

    return list(await asyncio.gather(*(one(b, t) for b, t in bodies)))


def mentions(texts: list[str]) -> list[tuple[bytes, str]]:
    return [(json.dumps(event_callback(mention(f"<@{BOT_USER_ID}> {text}",
                                               channel=f"CM{uuid.uuid4().hex[:10].upper()}"))).encode(), JSON_TYPE)
            for text in texts]


async def measure(slack: Slack, pid: int, names: list[str], args: argparse.Namespace) -> Run:
    run = Run()
    await in_flight(mentions([f"status {n}" for n in names[:5]] + ["help"] * 5), slack, 5)  # warm-up
    await slack.answered("chat.postMessage", 10)
    await asyncio.sleep(0.3)
    run.figures["RSS after start"] = rss_mb(pid)

    await slack.reset()
    commands = [(slash_command(f"status {names[i % len(names)]}", channel=f"CC{i:05d}",
                               response_url=slack.response_url), FORM) for i in range(args.commands)]
    latencies = await in_flight(commands, slack, args.in_flight)
    await slack.answered("response_url", args.commands)
    cuts = statistics.quantiles(latencies, n=100, method="inclusive")
    run.figures["slash-command ack p50"] = statistics.median(latencies) * 1000
    run.figures["slash-command ack p99"] = cuts[98] * 1000

    for label, texts in (("status", [f"status {names[i % len(names)]}" for i in range(args.events)]),
                         ("help", ["help"] * args.events)):
        await slack.reset()
        bodies = mentions(texts)
        cpu, started = cpu_seconds(pid), time.monotonic()
        await in_flight(bodies, slack, args.in_flight)
        last = await slack.answered("chat.postMessage", len(bodies))
        run.figures[f"answered {label}/s"] = len(bodies) / (last - started)
        run.figures[f"CPU per {label}"] = (cpu_seconds(pid) - cpu) * 1000 / len(bodies)

    if args.keep:
        input(f"bot pid {pid}: attach a profiler, then press Enter for the burst ")
    await slack.reset()
    await in_flight(mentions([f"status {names[i % len(names)]}" for i in range(args.burst)]), slack, 100)
    await slack.answered("chat.postMessage", args.burst)
    await asyncio.sleep(0.5)
    run.figures["RSS after burst"] = rss_mb(pid)
    return run


async def job_names(base: str, count: int) -> list[str]:
    """Names of jobs that occur once in the whole plan (so ``status`` needs one query, as the
    bare app's does), paging through it."""
    basic = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    names: list[str] = []
    async with aiohttp.ClientSession(headers={"Authorization": f"Basic {basic}"}) as session:
        while True:
            async with session.get(f"{base}/api/v2/plan/job",
                                   params={"limit": "500", "offset": str(len(names))}) as response:
                results = (await response.json())["results"]
            names += [job["name"] for job in results]
            if len(results) < 500:
                break
    unique = sorted(n for n in set(names) if names.count(n) == 1)
    if len(unique) < count // 4:
        raise SystemExit(f"only {len(unique)} job names are unique in the plan")
    return unique[:count]


# --- the table --------------------------------------------------------------------------------




async def main(args: argparse.Namespace) -> int:
    sim_port = free_port()
    tws = f"http://127.0.0.1:{sim_port}/twsd"
    kinds = [k for k in ("resync", "bare") if args.only in (None, k)]
    runs: dict[str, list[Run]] = {k: [] for k in kinds}
    with tempfile.TemporaryDirectory() as data:
        Path(data, "policy.toml").write_text(POLICY)
        async with fake_slack() as (api, response_url, stats), resync_process(
                ["simulator", "--port", str(sim_port), "--jobs", str(args.jobs), "--seed", "11", "--speed", "0"],
                {"TWS_USER": USER, "TWS_PASSWORD": PASSWORD}, f"{tws}/sim/stats"):
            names = await job_names(tws, 200)
            print(f"simulator: {args.jobs} jobs; {args.reps} repetitions, fresh processes, interleaved; "
                  f"{args.commands} commands and {args.events} mentions of each kind at {args.in_flight} in flight, "
                  f"burst {args.burst}; Resync from {args.root}")
            connector = aiohttp.TCPConnector(limit=args.in_flight + 110)
            async with aiohttp.ClientSession(connector=connector) as session:
                for rep in range(args.reps):
                    for kind in kinds if rep % 2 == 0 else kinds[::-1]:
                        async with bot(kind, args.root, tws, api, data, args.profile, args.redis) as (url, pid):
                            run = await measure(Slack(session, url, stats, response_url), pid, names, args)
                        runs[kind].append(run)
                        print(f"  rep {rep + 1} {kind:6} " + "  ".join(f"{k} {v:.1f}" for k, v in run.figures.items()),
                              flush=True)
    return 0 if table(GOALS, runs, LABELS) else 1


def _interrupted(*_: object) -> None:
    raise KeyboardInterrupt  # so that the child processes are stopped on the way out


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, _interrupted)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--commands", type=int, default=500)
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--burst", type=int, default=3000)
    parser.add_argument("--in-flight", type=int, default=50)
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--root", type=Path, default=ROOT, help="the Resync checkout to run (default: this one)")
    parser.add_argument("--only", choices=("resync", "bare"), help="run one side only (profiling)")
    parser.add_argument("--keep", action="store_true", help="pause before the burst, to attach a profiler")
    parser.add_argument("--redis", help="REDIS_URL for Resync's store (default: SQLite in a temporary directory)")
    parser.add_argument("--profile", type=Path, help="run Resync under cProfile, statistics written to this file")
    sys.exit(asyncio.run(main(parser.parse_args())))
