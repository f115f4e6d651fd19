"""Alerts at production scale: the calm first start, the flood guard, detection that never waits
for delivery, exact plan turnover and restarts (of the simulator and of the bot), PagerDuty.

The TWS simulator runs over HTTP (restarted on the same port where a test restarts TWS); the
store is real SQLite; chat delivery goes to a recording notifier (Slack's pacing is covered in
test_alerts.py), PagerDuty to the loopback fake Events API.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from bot.alerts import FailureWatch
from bot.alerts.pagerduty import PagerDutyNotifier
from bot.config import AlertRoute, AlertSettings, TwsSettings
from bot.events import ACTION_ALERT_ACK, Event, Posted, Reply
from bot.simulator import Simulator
from bot.store import Store
from bot.store.sqlite import SqliteStore
from bot.tws.client import TwsClient
from bot.tws.names import workstation_label
from tests.fakes.pagerduty_api import FakePagerDuty

JSON = dict[str, Any]
KEY = "R0UT1NGKEY0000000000000000000001"


class Recorder:
    """A chat notifier that records; ``slow`` seconds per post stands in for a paced platform."""

    def __init__(self, slow: float = 0.0) -> None:
        self.slow = slow
        self.posts: list[tuple[str, Reply, str | None]] = []
        self.updates: list[tuple[str, str, Reply]] = []

    def handles(self, target: str) -> bool:
        return target.startswith("slack:")

    async def post(self, target: str, reply: Reply, *, thread: str | None = None) -> Posted:
        if self.slow:
            await asyncio.sleep(self.slow)
        self.posts.append((target, reply, thread))
        return Posted(target=target, message_ref=f"m{len(self.posts)}", thread=thread)

    async def update(self, target: str, message_ref: str, reply: Reply) -> None:
        self.updates.append((target, message_ref, reply))

    def roots(self) -> list[Reply]:
        return [reply for _, reply, thread in self.posts if thread is None]


@asynccontextmanager
async def serving(port: int = 0, **kwargs: Any) -> AsyncIterator[tuple[Simulator, str, int]]:
    """A simulator on ``port`` (0: any); a restart is a new Simulator on the same port."""
    simulator = await asyncio.to_thread(lambda: Simulator(**{"jobs": 300, "seed": 5, "failure_rate": 0.0,
                                                             "speed": 0.0, **kwargs}))
    runner = web.AppRunner(simulator.app(), access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", port, reuse_address=True)
        await site.start()
        bound = runner.addresses[0][1]
        yield simulator, f"http://127.0.0.1:{bound}/twsd", bound
    finally:
        await runner.cleanup()


def client_for(url: str) -> TwsClient:
    return TwsClient(TwsSettings(urls=(url,), user="resync", password="resync", timeout=2.0, retries=0,
                                 breaker_fail_max=50, breaker_reset=1.0))


def settings(**values: Any) -> AlertSettings:
    return AlertSettings(**{"notify_pend": False, "default_targets": ("slack:C1",), **values})


class Clock:
    """Real time plus what a test skipped (backoff without sleeping)."""

    def __init__(self) -> None:
        self.skipped = 0.0

    def __call__(self) -> float:
        return time.time() + self.skipped


def watch_for(alerts: AlertSettings, tws: TwsClient, store: Store, *notifiers: Any,
              clock: Clock | None = None) -> FailureWatch:
    return FailureWatch(alerts, tws=tws, store=store, notifiers=notifiers, owner="test", single_instance=True,
                        clock=clock or Clock())


def streams_of(simulator: Simulator, count: int, *states: str) -> list[JSON]:
    """``count`` jobs of different job streams (any state unless named): ``force_fail`` ends any run."""
    chosen: dict[str, JSON] = {}
    for job in simulator.jobs_in_state(*states):
        chosen.setdefault(job["jobStreamName"], job)
        if len(chosen) == count:
            return list(chosen.values())
    raise AssertionError(f"fewer than {count} streams with a job in {states}")


def name(job: JSON) -> str:
    return f"{workstation_label(job['workstation'])}#{job['jobStreamName']}.{job['name']}"


async def drain(watch: FailureWatch) -> None:
    while await watch.deliver_due():
        pass


# --- 1. a calm first start -------------------------------------------------------------------

async def test_failures_already_there_become_one_summary_and_keep_their_lifecycle(sqlite_store) -> None:
    async with serving() as (simulator, url, _), client_for(url) as tws:
        failing = streams_of(simulator, 12)
        for job in failing:
            simulator.force_fail(job["id"], 8)
        simulator.force_fail(failing[0]["id"], 255)  # the worst: listed first
        chat = Recorder()
        watch = watch_for(settings(), tws, sqlite_store, chat)
        report = await watch.poll_once()
        assert (report.baselined, report.new, report.grouped) == (12, 0, 0)
        await drain(watch)
        [summary] = chat.posts
        assert summary[1].title == "🗂️ 12 jobs had already failed when Resync started"
        assert summary[1].text.splitlines()[1].startswith(f"🔴 {name(failing[0])} — ABEND rc 255")
        assert "which jobs failed?" in (summary[1].context or "")
        # The next poll: nothing new, nothing posted.
        assert (await watch.poll_once()).queued == 0
        # One fails again after a rerun: it gets its own thread now (root, then the repeat in it).
        await tws.rerun(failing[1]["id"])
        simulator.force_fail(failing[1]["id"], 4)
        assert (await watch.poll_once()).repeats == 1
        await drain(watch)
        roots = chat.roots()
        assert [r.title for r in roots][1:] == [f"🔴 ABEND: {name(failing[1])}"]
        assert any(thread and "failed again" in reply.text for _, reply, thread in chat.posts)
        # One recovers on its own: no message, the summary's line says so.
        await tws.rerun(failing[2]["id"])
        simulator.advance(7200)
        await watch.poll_once()
        await drain(watch)
        assert len(chat.roots()) == 2 and chat.updates
        assert "(11 still failed)" in chat.updates[-1][2].text


async def test_a_baseline_counts_failures_as_failures_and_pend_jobs_as_needing_attention(sqlite_store) -> None:
    from bot.alerts import baseline

    async with serving() as (simulator, url, _), client_for(url) as tws:
        [pend] = simulator.jobs_in_state("PEND")  # the generated plan's one job waiting for confirmation
        failing = [job for job in streams_of(simulator, 13) if job["id"] != pend["id"]][:12]
        for job in failing:
            simulator.force_fail(job["id"], 8)
        chat = Recorder()
        watch = watch_for(settings(notify_pend=True), tws, sqlite_store, chat)
        assert (await watch.poll_once()).baselined == 13
        await drain(watch)
        [(_, summary, _)] = chat.posts
        assert summary.title == "🗂️ 12 jobs had already failed and 1 needed attention when Resync started"
        intro, *lines = summary.text.splitlines()
        assert "(12 still failed, 1 still need attention)" in intro
        assert len(lines) == 11 and lines[-1] == "… and 3 more"  # 10 shown + 3 more = 12 + 1, as the title says
        assert all(" — ABEND rc 8" in line for line in lines[:10])  # the worst first: the PEND one is in "more"
        assert summary.context == "Ask “which jobs failed?” to list all the failures."
        # The PEND job is confirmed: the title keeps saying what there was at the start, the text what is left.
        await tws.confirm_succ(pend["id"])
        await watch.poll_once()
        await drain(watch)
        updated = chat.updates[-1][2]
        assert updated.title == summary.title and "(12 still failed, 0 still need attention)" in updated.text
        [(key, group)] = await sqlite_store.scan("alertgroup:")
        records = [await sqlite_store.get(f"alert:{job_id}") for job_id in group["job_ids"]]
        pt = baseline.summary(group, records, lang="pt")
        assert pt.title == "🗂️ 12 jobs já tinham falhado e 1 precisavam de atenção quando o Resync iniciou"
        assert pt.text.splitlines()[-1] == "… e mais 3"


def test_a_baseline_of_jobs_that_only_need_attention_says_none_failed() -> None:
    from bot.alerts import baseline

    records = [{"job_id": f"j{n}", "kind": "pend", "state": "open",
                "failure": {"full_name": f"WS#S.J{n}", "status": "PEND", "rc": 0, "run": "run0", "reruns": 0},
                "job": {"status": "PEND", "run": "run0", "reruns": 0}} for n in range(2)]
    group = {"key": "base:k", "kind": "baseline", "job_ids": ["j0", "j1"], "kinds": {"pend": 2}, "first_start": False}
    shown = baseline.summary(group, records)
    assert shown.title == "🗂️ 2 jobs needed attention when Resync first saw this plan"
    assert "(0 still failed, 2 still need attention)" in shown.text and "more" not in shown.text


async def test_baseline_alert_and_ignore(sqlite_store, tmp_path: Path) -> None:
    async with serving() as (simulator, url, _), client_for(url) as tws:
        for job in streams_of(simulator, 3):
            simulator.force_fail(job["id"], 8)
        loud, silent = Recorder(), Recorder()
        assert (await watch_for(settings(baseline="alert"), tws, sqlite_store, loud).poll_once()).new == 3
        other = await SqliteStore.open(tmp_path / "other.db")
        try:
            quiet = watch_for(settings(baseline="ignore"), tws, other, silent)
            assert (await quiet.poll_once()).baselined == 3
            await drain(quiet)
            assert silent.posts == []
        finally:
            await other.close()


# --- 2. detection never waits for delivery; the flood guard ------------------------------------

async def test_polls_run_on_their_interval_while_the_outbox_drains_and_floods_group(sqlite_store) -> None:
    from apscheduler.schedulers.asyncio import AsyncIOScheduler

    async with serving() as (simulator, url, _), client_for(url) as tws:
        chat = Recorder(slow=0.3)  # a paced channel: the backlog takes many seconds to drain
        watch = watch_for(settings(poll_interval=1.0, channel_burst=4, burst_threshold=1000), tws, sqlite_store, chat)
        await watch.poll_once()  # the plan is known
        many = streams_of(simulator, 20)
        for job in many:
            simulator.force_fail(job["id"], 8)
        report = await watch.poll_once()
        assert (report.new, report.flooded) == (4, 16)  # across 20 streams: 4 alone, the rest in one message
        scheduler = AsyncIOScheduler(timezone="UTC")
        watch.schedule(scheduler)
        scheduler.start()
        try:
            await asyncio.sleep(0.2)
            late = next(j for j in simulator.jobs_in_state() if j["jobStreamName"] not in
                        {m["jobStreamName"] for m in many})
            simulator.force_fail(late["id"], 9)
            failed_at = time.monotonic()
            async with asyncio.timeout(3):  # detected within about one poll interval, not after the backlog
                while await sqlite_store.get(f"alert:{late['id']}") is None:
                    await asyncio.sleep(0.05)
            assert time.monotonic() - failed_at < 2.5
            def flood_now() -> str:  # the flood message as the channel shows it now: its last update, else its root
                shown = [r.text for r in chat.roots() if "more failures" in (r.title or "")]
                return chat.updates[-1][2].text if chat.updates else (shown[-1] if shown else "")

            async with asyncio.timeout(8):
                while len(chat.roots()) < 5 or name(late) not in flood_now():
                    await asyncio.sleep(0.05)
        finally:
            scheduler.shutdown(wait=False)
            await watch.stop()
        titles = [r.title or "" for r in chat.roots()]
        assert sum(t.startswith("🔴 ABEND") for t in titles) == 4
        assert len([t for t in titles if "more failures" in t]) == 1  # the flood message grew, no new message
        assert not [reply for _, reply, thread in chat.posts if thread]  # and no reply per failure in its thread


async def test_stop_returns_quickly_whatever_the_backlog_and_nothing_is_sent_twice(sqlite_store) -> None:
    from apscheduler.schedulers.asyncio import AsyncIOScheduler

    async with serving() as (simulator, url, _), client_for(url) as tws:
        chat = Recorder(slow=0.5)
        alerts = settings(poll_interval=30.0, channel_burst=1000, burst_threshold=1000)
        watch = watch_for(alerts, tws, sqlite_store, chat)
        await watch.poll_once()
        for job in streams_of(simulator, 15):
            simulator.force_fail(job["id"], 8)
        await watch.poll_once()
        scheduler = AsyncIOScheduler(timezone="UTC")
        watch.schedule(scheduler)
        scheduler.start()
        await asyncio.sleep(1.2)
        started = time.monotonic()
        scheduler.shutdown(wait=False)
        await watch.stop()
        assert time.monotonic() - started < 2.0
        sent_before = [r.title for r in chat.roots()]
        assert 0 < len(sent_before) < 15
        again = watch_for(alerts, tws, sqlite_store, chat)  # the restarted bot
        await again.poll_once()
        await drain(again)
        titles = [r.title for r in chat.roots()]
        assert len(titles) == 15 and len(set(titles)) == 15


# --- 3. plan turnover and restarts are exact ---------------------------------------------------

async def test_a_restarted_simulator_closes_nothing_and_realerts_nothing(sqlite_store) -> None:
    chat = Recorder()
    async with serving() as (simulator, url, port):
        failing = streams_of(simulator, 3, "SCHED", "HOLD")  # a restart rewinds them to before their failure
        async with client_for(url) as tws:
            watch = watch_for(settings(), tws, sqlite_store, chat)
            await watch.poll_once()
            for job in failing:
                simulator.force_fail(job["id"], 8)
            assert (await watch.poll_once()).new == 3
            await drain(watch)
    # TWS restarts with the same plan: the forced failures are back to their scheduled state.
    async with serving(port) as (simulator, url, _), client_for(url) as tws:
        watch = watch_for(settings(), tws, sqlite_store, chat)
        for _ in range(2):
            report = await watch.poll_once()
            assert (report.new, report.transitions, report.baselined, report.queued) == (0, 0, 0, 0)
        simulator.force_fail(failing[0]["id"], 8)  # the same run failing again is the same failure
        assert (await watch.poll_once()).queued == 0
        await drain(watch)
    assert len(chat.posts) == 3


async def test_a_new_plan_closes_the_old_alerts_once_with_a_clear_note(sqlite_store) -> None:
    chat = Recorder()
    async with serving() as (simulator, url, port):
        async with client_for(url) as tws:
            watch = watch_for(settings(), tws, sqlite_store, chat)
            await watch.poll_once()
            for job in streams_of(simulator, 2):
                simulator.force_fail(job["id"], 8)
            await watch.poll_once()
            await drain(watch)
    async with serving(port, seed=6) as (simulator, url, _), client_for(url) as tws:  # the daily turnover
        watch = watch_for(settings(), tws, sqlite_store, chat)
        report = await watch.poll_once()
        assert report.transitions == 2 and report.plan != (await sqlite_store.scan("alertplan:"))[0][0]
        assert (await watch.poll_once()).queued == 0
        await drain(watch)
    notes = [reply.text for _, reply, thread in chat.posts if thread]
    assert len(notes) == 2 and all("the plan changed" in note for note in notes)


async def test_a_restarted_bot_alerts_once_what_failed_while_it_was_down(sqlite_store) -> None:
    async with serving() as (simulator, url, _), client_for(url) as tws:
        chat = Recorder()
        first, down = streams_of(simulator, 2)
        watch = watch_for(settings(), tws, sqlite_store, chat)
        await watch.poll_once()
        simulator.force_fail(first["id"], 8)
        await watch.poll_once()
        await drain(watch)
        await watch.resign()
        simulator.force_fail(down["id"], 8)  # while the bot is down
        for _ in range(2):  # two restarts in a row
            restarted = watch_for(settings(), tws, sqlite_store, chat)
            await restarted.poll_once()
            await drain(restarted)
            await restarted.resign()
        assert [r.title for r in chat.roots()] == [f"🔴 ABEND: {name(first)}", f"🔴 ABEND: {name(down)}"]


# --- 7. PagerDuty hand-off ---------------------------------------------------------------------

async def test_pagerduty_triggers_acknowledges_and_resolves_once_each(sqlite_store) -> None:
    routes = (AlertRoute(targets=("slack:C1", "pagerduty:ops")),)
    async with serving() as (simulator, url, _), client_for(url) as tws, FakePagerDuty(routing_keys={KEY}) as pd:
        pager = PagerDutyNotifier(url=pd.url, routing_keys={"ops": KEY})
        chat, clock = Recorder(), Clock()
        watch = watch_for(settings(routes=routes), tws, sqlite_store, chat, pager, clock=clock)
        try:
            await watch.poll_once()
            [job] = streams_of(simulator, 1)
            simulator.force_fail(job["id"], 8)
            pd.fail(500)  # PagerDuty hiccups once: retried through the outbox
            await watch.poll_once()
            await watch.deliver_due()
            assert pd.events == [] and pd.requests[0][0] == 500
            clock.skipped += 5  # past the backoff
            await drain(watch)
            ack = Event(platform="slack", workspace="T", channel="C1", user_id="U0ANA", user_name="ana",
                        kind="action", action_id=ACTION_ALERT_ACK, action_value=job["id"])
            await watch.on_action(ack)
            await watch.on_action(ack)  # pressed twice: acknowledged once
            await drain(watch)
            await tws.rerun(job["id"])
            simulator.advance(7200)
            await watch.poll_once()
            await drain(watch)
            await watch.poll_once()
            await drain(watch)
        finally:
            await pager.close()
        assert pd.actions(job["id"]) == ["trigger", "acknowledge", "resolve"]
        trigger = pd.events[0]
        assert trigger["payload"]["summary"] == f"🔴 ABEND: {name(job)}" and trigger["payload"]["severity"] == "error"
        assert pd.incidents[job["id"]] == "resolved"
        assert len(chat.roots()) == 1  # the chat thread is unaffected
