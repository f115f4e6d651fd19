"""Benchmark of the failure alerts: what one poll costs, and how fast a failure reaches the chat.

    python bench/alerts.py                 # 10,000 and 100,000 jobs
    python bench/alerts.py --jobs 10000    # one size only

The TWS simulator runs in its own process (``resync simulator``), so the CPU time measured here
(``time.process_time``) is Resync's alone; requests and bytes come from the simulator's
``/sim/stats``. For each plan size it prints:

* the first poll over a plan that already has failures (every one is new: queries, logs,
  successors, burst grouping);
* a steady poll (nothing changed: the cost paid every ``RESYNC_POLL_INTERVAL``);
* a poll after 5 new failures in 5 streams.

At scale (``--only scale``), the figures of issue 13:

* first start on 100,000 jobs with 2,000 existing failures: the first poll's time and the messages
  posted in the first 10 s, with ``RESYNC_ALERT_BASELINE=summary`` (the default) and ``alert`` (before);
* detection latency of a new failure while 500 alerts are queued for one channel (detected: its
  record is written; posted: its own channel got it);
* push-to-alert latency: ``resync serve`` in its own process, ``POST /api/tws/events`` to the
  message in the fake Slack API.

Then the detection latency: a job is failed in the simulator (``POST /sim/jobs/{id}/fail``) while
the watch runs on a real APScheduler with a 1 s poll interval, delivering through the real Slack
adapter to the loopback fake Slack API; the clock stops when ``chat.postMessage`` for that job
arrives.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from adapters.slack import SlackAdapter  # noqa: E402
from apscheduler.schedulers.asyncio import AsyncIOScheduler  # noqa: E402
from bot.alerts import FailureWatch, PollReport  # noqa: E402
from bot.config import AlertRoute, AlertSettings, SlackSettings, StoreSettings, TwsSettings  # noqa: E402
from bot.events import Event, Posted, Reply  # noqa: E402
from bot.store import open_store  # noqa: E402
from bot.tws.client import TwsClient  # noqa: E402
from bench.processes import PASSWORD, USER, simulator  # noqa: E402
from tests.fakes.slack_api import FakeSlackApi  # noqa: E402



class Counting:
    """A Notifier that only counts: the poll-cost runs measure TWS, not Slack's pacing."""

    def __init__(self) -> None:
        self.posts = 0

    def handles(self, target: str) -> bool:
        return True

    async def post(self, target: str, reply: Reply, *, thread: str | None = None) -> Posted:
        self.posts += 1
        return Posted(target=target, message_ref=str(self.posts), thread=thread)

    async def update(self, target: str, message_ref: str, reply: Reply) -> None:
        return None


async def sim_call(base: str, method: str, path: str, body: Any = None) -> Any:
    async with aiohttp.ClientSession() as session:
        async with session.request(method, f"{base}{path}", json=body) as response:
            response.raise_for_status()
            return await response.json()


def counters(stats: dict[str, Any]) -> tuple[int, int]:
    """(requests, bytes) from /sim/stats, whatever the exact key names."""
    requests = stats.get("requests", stats.get("requests_total", 0))
    sent = stats.get("bytes", stats.get("bytes_sent", stats.get("bytes_out", 0)))
    requests = sum(requests.values()) if isinstance(requests, dict) else requests
    sent = sum(sent.values()) if isinstance(sent, dict) else sent
    return int(requests), int(sent)


def kinds(stats: dict[str, Any]) -> dict[str, int]:
    """Requests by route (job_query, job_log, ...), where the simulator reports them."""
    return {kind: int(v.get("requests", 0)) for kind, v in (stats.get("kinds") or {}).items()}


async def measured(base: str, step: Any) -> tuple[PollReport, dict[str, Any]]:
    stats = await sim_call(base, "GET", "/sim/stats")
    before, kinds_before = counters(stats), kinds(stats)
    cpu, wall = time.process_time(), time.perf_counter()
    report = await step()
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    stats = await sim_call(base, "GET", "/sim/stats")
    after = counters(stats)
    by_kind = {k: n - kinds_before.get(k, 0) for k, n in kinds(stats).items() if n - kinds_before.get(k, 0)}
    return report, {"requests": after[0] - before[0], "bytes": after[1] - before[1], "cpu_ms": cpu * 1000,
                    "wall_ms": wall * 1000, "kinds": by_kind}


def row(label: str, report: PollReport, cost: dict[str, Any]) -> str:
    split = " ".join(f"{k}={n}" for k, n in sorted(cost["kinds"].items()))
    return (f"  {label:<28} {int(cost['requests']):>6} req {cost['bytes'] / 1024:>9.1f} KiB "
            f"{cost['cpu_ms']:>8.1f} ms CPU {cost['wall_ms']:>8.1f} ms wall | failed={report.failed} "
            f"new={report.new} grouped={report.grouped} followed={report.followed} queued={report.queued} ({split})")


async def new_failures(tws: TwsClient, base: str, count: int) -> list[str]:
    """Fail ``count`` finished jobs, one per stream, through the simulator's control API."""
    chosen: dict[str, str] = {}
    async for job in tws.iter_jobs(status="SUCC"):
        chosen.setdefault(job.stream_id, job.id)
        if len(chosen) == count:
            break
    for job_id in chosen.values():
        await sim_call(base, "POST", f"/sim/jobs/{job_id}/fail", {"returnCode": 8})
    return list(chosen.values())


async def poll_cost(jobs: int, failure_rate: float) -> None:
    print(f"\nPoll cost, {jobs:,} jobs, failure rate {failure_rate:g} (simulator in its own process)")
    started = time.perf_counter()
    async with simulator(jobs, seed=11, failure_rate=failure_rate, speed=1) as base, TwsClient(
            TwsSettings(urls=(base,), user=USER, password=PASSWORD, timeout=30.0)) as tws:
        print(f"  simulator ready in {time.perf_counter() - started:.1f} s")
        with tempfile.TemporaryDirectory() as data:
            async with open_store(StoreSettings(data_dir=Path(data)), namespace="") as store:
                chat = Counting()
                watch = FailureWatch(AlertSettings(default_targets=("slack:C_BENCH",), baseline="alert"), tws=tws, store=store,
                                     notifiers=[chat], owner="bench", single_instance=True)
                report, cost = await measured(base, watch.poll_once)
                print(row("first poll (all new)", report, cost))
                await watch.deliver_due()
                for attempt in range(2):
                    report, cost = await measured(base, watch.poll_once)
                    print(row(f"steady poll #{attempt + 1}", report, cost))
                await new_failures(tws, base, 5)
                report, cost = await measured(base, watch.poll_once)
                print(row("poll after 5 new failures", report, cost))
                delivered = 0
                while await store.outbox_pending():
                    delivered += await watch.deliver_due()
                print(f"  messages delivered in all: {chat.posts} roots/replies/notices")


async def latency(jobs: int, samples: int) -> None:
    print(f"\nDetection latency, {jobs:,} jobs, poll interval 1 s, real scheduler, Slack adapter -> fake Slack API")
    async with simulator(jobs, seed=11, failure_rate=0.0, speed=1) as base, TwsClient(
            TwsSettings(urls=(base,), user=USER, password=PASSWORD, timeout=10.0)) as tws, FakeSlackApi() as api:
        with tempfile.TemporaryDirectory() as data:
            async with open_store(StoreSettings(data_dir=Path(data)), namespace="") as store:
                async def handle(event: Event) -> list[Reply]:
                    return []

                slack = SlackAdapter(SlackSettings(bot_token="xoxb-bench", signing_secret="bench-secret",
                                                   api_url=api.url), handle=handle, store=store)
                # PEND jobs of the generated plan stay out: their alerts would queue ahead in the channel
                watch = FailureWatch(AlertSettings(default_targets=("slack:C_LATENCY",), poll_interval=1.0,
                                                   notify_pend=False, baseline="alert"),
                                     tws=tws, store=store, notifiers=[slack], owner="bench", single_instance=True)
                scheduler = AsyncIOScheduler(timezone="UTC")
                watch.schedule(scheduler)
                scheduler.start()
                try:
                    await asyncio.sleep(1.5)  # the first poll has run
                    while await store.outbox_pending():  # and what it found is out
                        await asyncio.sleep(0.5)
                    seconds = []
                    for job_id in await new_failures_lazily(tws, samples):
                        before = len(api.calls("chat.postMessage"))
                        await asyncio.sleep(random.uniform(0.0, 1.0))  # land anywhere in the poll cycle
                        started = time.perf_counter()
                        await sim_call(base, "POST", f"/sim/jobs/{job_id}/fail", {"returnCode": 8})
                        await api.wait_for("chat.postMessage", before + 1, timeout=30.0, ok=True)
                        seconds.append(time.perf_counter() - started)
                    print(f"  {samples} failures: median {statistics.median(seconds) * 1000:.0f} ms, "
                          f"min {min(seconds) * 1000:.0f} ms, max {max(seconds) * 1000:.0f} ms")
                finally:
                    scheduler.pause()
                    await asyncio.sleep(1.0)  # let a poll or delivery in flight finish
                    scheduler.shutdown(wait=False)
                    await watch.stop()
                    await watch.resign()
                    await slack.close()


async def new_failures_lazily(tws: TwsClient, count: int) -> list[str]:
    chosen: dict[str, str] = {}
    async for job in tws.iter_jobs(status="SUCC"):
        chosen.setdefault(job.stream_id, job.id)
        if len(chosen) == count:
            break
    return list(chosen.values())


async def force_failures(base: str, tws: TwsClient, count: int, *, skip: Any = lambda job: False) -> list[Any]:
    """Fail ``count`` jobs of as many streams as possible (jobs not yet run included)."""
    picked, streams = [], set()
    async for job in tws.iter_jobs(page_size=1000):
        if job.stream_id not in streams and not skip(job):
            streams.add(job.stream_id)
            picked.append(job)
            if len(picked) == count:
                break
    async with aiohttp.ClientSession() as session:
        limit = asyncio.Semaphore(20)

        async def fail(job_id: str) -> None:
            async with limit, session.post(f"{base}/sim/jobs/{job_id}/fail", json={"returnCode": 8}) as response:
                response.raise_for_status()

        await asyncio.gather(*(fail(job.id) for job in picked))
    return picked


def slack_for(api: FakeSlackApi, store: Any) -> SlackAdapter:
    async def handle(event: Event) -> list[Reply]:
        return []

    return SlackAdapter(SlackSettings(bot_token="xoxb-bench", signing_secret="bench-secret", api_url=api.url),
                        handle=handle, store=store)


async def first_start(jobs: int, existing: int) -> None:
    """A first start on a busy plan: what reaches the channel, and how soon the first poll is done."""
    print(f"\nFirst start, {jobs:,} jobs with {existing:,} existing failures (real Slack adapter -> fake Slack API)")
    async with simulator(jobs, seed=11, failure_rate=0.0, speed=0) as base, TwsClient(
            TwsSettings(urls=(base,), user=USER, password=PASSWORD, timeout=60.0)) as tws:
        await force_failures(base, tws, existing)
        for mode in ("summary", "alert"):
            with tempfile.TemporaryDirectory() as data:
                async with open_store(StoreSettings(data_dir=Path(data)), namespace="") as store, \
                        FakeSlackApi() as api:
                    slack = slack_for(api, store)
                    before = {"channel_burst": 1_000_000} if mode == "alert" else {}  # as before: no flood guard
                    watch = FailureWatch(AlertSettings(default_targets=("slack:C_FIRST",), poll_interval=30.0,
                                                       notify_pend=False, baseline=mode, **before), tws=tws, store=store,
                                         notifiers=[slack], owner="bench", single_instance=True)
                    started = time.perf_counter()
                    report = await watch.poll_once()
                    first_poll = time.perf_counter() - started
                    scheduler = AsyncIOScheduler(timezone="UTC")
                    watch.schedule(scheduler)
                    scheduler.start()
                    await asyncio.sleep(10.0)
                    scheduler.shutdown(wait=False)
                    await watch.stop()
                    await slack.close()
                    posted = len([c for c in api.calls("chat.postMessage") if c.status == 200])
                    pending = await store.outbox_pending()
                    label = {"summary": "RESYNC_ALERT_BASELINE=summary", "alert": "RESYNC_ALERT_BASELINE=alert (before)"}
                    print(f"  {label[mode]:<38} first poll done in {first_poll:5.1f} s; baselined={report.baselined} "
                          f"new={report.new} grouped={report.grouped} flooded={report.flooded}; "
                          f"posted in the first 10 s: {posted}; still queued: {pending}")


async def detection_under_backlog(jobs: int, backlog: int, samples: int) -> None:
    """A new failure is detected on the poll interval while ``backlog`` alerts wait in the outbox."""
    print(f"\nDetection while {backlog} alerts are queued, {jobs:,} jobs, poll interval 1 s "
          f"(Slack adapter -> fake Slack API, about one message a second per channel)")
    async with simulator(jobs, seed=11, failure_rate=0.0, speed=0) as base, TwsClient(
            TwsSettings(urls=(base,), user=USER, password=PASSWORD, timeout=30.0)) as tws, FakeSlackApi() as api:
        with tempfile.TemporaryDirectory() as data:
            async with open_store(StoreSettings(data_dir=Path(data)), namespace="") as store:
                fresh = [job async for job in tws.iter_jobs(page_size=1000)]
                target_stream = "PIX_CONCILIA*"  # the new failures' channel; the backlog goes elsewhere
                routes = (AlertRoute(stream=target_stream, targets=("slack:C_NEW",)),)
                slack = slack_for(api, store)
                watch = FailureWatch(AlertSettings(default_targets=("slack:C_BACKLOG",), routes=routes,
                                                   poll_interval=1.0, notify_pend=False, baseline="alert",
                                                   burst_threshold=100_000, channel_burst=100_000),
                                     tws=tws, store=store, notifiers=[slack], owner="bench", single_instance=True)
                await watch.poll_once()  # the plan is known
                await force_failures(base, tws, backlog, skip=lambda job: job.stream.startswith("PIX_CONCILIA"))
                report = await watch.poll_once()
                print(f"  queued by one poll: {report.queued} alerts for one channel")
                scheduler = AsyncIOScheduler(timezone="UTC")
                watch.schedule(scheduler)
                scheduler.start()
                candidates = list({job.stream_id: job for job in fresh if job.stream.startswith("PIX_CONCILIA")}
                                  .values())[:samples]
                detected, alerted = [], []
                try:
                    for job in candidates:
                        await asyncio.sleep(random.uniform(0.0, 1.0))
                        before = len([c for c in api.calls("chat.postMessage") if c.params.get("channel") == "C_NEW"])
                        started = time.perf_counter()
                        await sim_call(base, "POST", f"/sim/jobs/{job.id}/fail", {"returnCode": 8})
                        while await store.get(f"alert:{job.id}") is None:
                            await asyncio.sleep(0.02)
                        detected.append(time.perf_counter() - started)
                        while len([c for c in api.calls("chat.postMessage")
                                   if c.params.get("channel") == "C_NEW" and c.status == 200]) <= before:
                            await asyncio.sleep(0.02)
                        alerted.append(time.perf_counter() - started)
                    pending = await store.outbox_pending()
                finally:
                    scheduler.shutdown(wait=False)
                    await watch.stop()
                    await slack.close()
                print(f"  {len(detected)} new failures: detected median {statistics.median(detected) * 1000:.0f} ms "
                      f"(max {max(detected) * 1000:.0f} ms), posted to their channel median "
                      f"{statistics.median(alerted) * 1000:.0f} ms (max {max(alerted) * 1000:.0f} ms); "
                      f"backlog still queued: {pending}")


async def push_latency(jobs: int, samples: int) -> None:
    """``resync serve`` in its own process; a pushed event to the message in the fake Slack API."""
    from bench.processes import free_port, resync_process

    print(f"\nPush-to-alert latency, {jobs:,} jobs: POST /api/tws/events to resync serve -> fake Slack API")
    token = "bench-events-token-0123456789"
    async with simulator(jobs, seed=11, failure_rate=0.0, speed=0) as base, FakeSlackApi() as api, TwsClient(
            TwsSettings(urls=(base,), user=USER, password=PASSWORD, timeout=30.0)) as tws:
        port = free_port()
        with tempfile.TemporaryDirectory() as data:
            env = {"TWS_URL": base, "TWS_USER": USER, "TWS_PASSWORD": PASSWORD, "RESYNC_DATA_DIR": data,
                   "RESYNC_ALERT_CHANNELS": "slack:C_PUSH", "RESYNC_POLL_INTERVAL": "300", "RESYNC_ALERT_PEND": "false",
                   "RESYNC_EVENTS_TOKEN": token, "SLACK_BOT_TOKEN": "xoxb-bench", "SLACK_SIGNING_SECRET": "b" * 32,
                   "SLACK_API_URL": api.url, "PORT": str(port), "RESYNC_HOST": "127.0.0.1"}
            async with resync_process(["serve"], env, f"http://127.0.0.1:{port}/readyz"), \
                    aiohttp.ClientSession() as session:
                await asyncio.sleep(2.0)  # the first poll (at start) has seen the plan
                picked = []
                async for job in tws.iter_jobs(status="SCHED"):
                    if job.stream_id not in {p.stream_id for p in picked}:
                        picked.append(job)
                    if len(picked) == samples:
                        break
                seconds = []
                for job in picked:
                    await sim_call(base, "POST", f"/sim/jobs/{job.id}/fail", {"returnCode": 8})
                    before = len(api.calls("chat.postMessage"))
                    started = time.perf_counter()
                    async with session.post(f"http://127.0.0.1:{port}/api/tws/events",
                                            json={"job": job.full_name, "status": "ABEND"},
                                            headers={"Authorization": f"Bearer {token}"}) as response:
                        assert response.status == 202, await response.text()
                    await api.wait_for("chat.postMessage", before + 1, timeout=10.0, ok=True)
                    seconds.append(time.perf_counter() - started)
                    await asyncio.sleep(1.1)  # Slack's pace per channel: measure the push, not the queue
                print(f"  {samples} pushed failures: median {statistics.median(seconds) * 1000:.0f} ms, "
                      f"min {min(seconds) * 1000:.0f} ms, max {max(seconds) * 1000:.0f} ms")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, action="append", help="plan size (repeatable; default 10000 and 100000)")
    parser.add_argument("--failure-rate", type=float, default=0.01)
    parser.add_argument("--samples", type=int, default=5)
    parser.add_argument("--only", choices=["poll", "scale"], help="only the poll costs, or only the scale figures")
    args = parser.parse_args()
    import structlog

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(40))  # errors only
    parser_scale = args.only
    if parser_scale in (None, "poll"):
        for jobs in args.jobs or [10_000, 100_000]:
            await poll_cost(jobs, args.failure_rate)
        await latency(10_000, args.samples)
    if parser_scale in (None, "scale"):
        await first_start(100_000, 2_000)
        await detection_under_backlog(100_000, 500, args.samples)
        await push_latency(100_000, args.samples)


if __name__ == "__main__":
    asyncio.run(main())
