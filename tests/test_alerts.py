"""Failure alerts end to end: the TWS simulator over HTTP, real stores, the real Slack adapter
talking to the loopback Slack API.

Every test makes its own simulator (300 jobs, no random failures) and breaks jobs on purpose with
``sim.force_fail``. Delivery time is driven by an injected clock, so retries and backoff need no
sleeping; the Slack adapter's own pacing (about one message a second per channel) is real, so
each test uses few messages per channel.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from adapters.slack import SlackAdapter
from bot.alerts import FailureWatch
from bot.config import AlertRoute, AlertSettings, SlackSettings, StoreSettings, TwsSettings
from bot.errors import TwsUnavailable
from bot.events import ACTION_ALERT_ACK, ACTION_ALERT_SNOOZE_1H, Event, Notifier, Posted, Reply
from bot.simulator import run_simulator
from bot.store import Store, open_store
from bot.tws.client import TwsClient
from bot.tws.names import workstation_label
from tests.fakes.slack_api import FakeSlackApi
from tests.fakes.tws_proxy import TwsProxy

JSON = dict[str, Any]


class Clock:
    """The watch's clock: real time plus whatever the test skipped."""

    def __init__(self) -> None:
        import time

        self._time = time.time
        self.skipped = 0.0

    def __call__(self) -> float:
        return self._time() + self.skipped

    def skip(self, seconds: float) -> None:
        self.skipped += seconds


class Recorder:
    """A Notifier for noise-control tests where Slack's one-message-a-second pacing adds nothing."""

    def __init__(self, platform: str = "slack") -> None:
        self.platform = platform
        self.posts: list[tuple[str, Reply, str | None]] = []
        self.updates: list[tuple[str, str, Reply]] = []

    def handles(self, target: str) -> bool:
        return target.startswith(self.platform + ":")

    async def post(self, target: str, reply: Reply, *, thread: str | None = None) -> Posted:
        self.posts.append((target, reply, thread))
        return Posted(target=target, message_ref=f"m{len(self.posts)}", thread=thread)

    async def update(self, target: str, message_ref: str, reply: Reply) -> None:
        self.updates.append((target, message_ref, reply))


# --- fixtures -----------------------------------------------------------------------------

@pytest.fixture
async def sim() -> AsyncIterator[tuple[Any, str]]:
    async with run_simulator(jobs=300, seed=5, failure_rate=0.0, speed=1.0) as running:
        yield running


@pytest.fixture
async def tws(sim: tuple[Any, str]) -> AsyncIterator[TwsClient]:
    client = TwsClient(TwsSettings(urls=(sim[1],), user="resync", password="resync", timeout=2.0, retries=0,
                                   breaker_fail_max=50, breaker_reset=1.0))
    yield client
    await client.close()


@pytest.fixture
async def slack_api() -> AsyncIterator[FakeSlackApi]:
    async with FakeSlackApi() as api:
        yield api


@pytest.fixture
async def slack(slack_api: FakeSlackApi, sqlite_store: Store) -> AsyncIterator[SlackAdapter]:
    async def handle(event: Event) -> list[Reply]:
        return []

    adapter = SlackAdapter(SlackSettings(bot_token="xoxb-test", signing_secret="shh-test", api_url=slack_api.url),
                           handle=handle, store=sqlite_store)
    yield adapter
    await adapter.close()


def alerting(**values: Any) -> AlertSettings:
    """Alert settings for a test: PEND jobs of the generated plan stay out of the way."""
    return AlertSettings(**{"notify_pend": False, "baseline": "alert", "channel_burst": 1000, **values})


def watch_for(settings: AlertSettings, *, tws: TwsClient, store: Store, notifiers: Sequence[Notifier],
              clock: Clock | None = None, owner: str = "test") -> FailureWatch:
    return FailureWatch(settings, tws=tws, store=store, notifiers=notifiers, owner=owner,
                        single_instance=store.kind == "sqlite", clock=clock or Clock())


def pick(sim: Any, count: int, *states: str) -> list[JSON]:
    """``count`` jobs in the given states, each from a different job stream."""
    chosen: dict[str, JSON] = {}
    for job in sim.jobs_in_state(*states):
        chosen.setdefault(job["jobStreamName"], job)
        if len(chosen) == count:
            return list(chosen.values())
    raise AssertionError(f"the simulated plan has fewer than {count} streams with jobs in {states}")


def posted(api: FakeSlackApi, channel: str | None = None) -> list[JSON]:
    """Successful chat.postMessage calls (to ``channel``), as their parameters."""
    return [c.params for c in api.calls("chat.postMessage")
            if c.status == 200 and (channel is None or c.params.get("channel") == channel)]


def text_of(params: JSON) -> str:
    return params.get("text", "") + json.dumps(params.get("blocks", []), ensure_ascii=False)


def full_name(job: JSON) -> str:
    """As operators type it: the root folder's workstations bare, the others with their folder path."""
    return f"{workstation_label(job['workstation'])}#{job['jobStreamName']}.{job['name']}"


# --- one alert, in the right place, once ---------------------------------------------------

async def test_a_failure_gives_exactly_one_alert_in_the_routed_channel(sim, tws, sqlite_store, slack, slack_api):
    simulator, _ = sim
    job, other = pick(simulator, 2, "SUCC")
    settings = alerting(routes=(AlertRoute(stream=job["jobStreamName"], targets=("slack:C_ROUTED",)),),
                             default_targets=("slack:C_DEFAULT",))
    watch = watch_for(settings, tws=tws, store=sqlite_store, notifiers=[slack])
    assert (await watch.poll_once()).new == 0
    simulator.force_fail(job["id"], 12)
    report = await watch.poll_once()
    assert (report.leader, report.failed, report.new, report.queued) == (True, 1, 1, 1)
    assert await watch.deliver_due() == 1
    [alert] = posted(slack_api)
    assert alert["channel"] == "C_ROUTED" and "thread_ts" not in alert
    body = text_of(alert)
    assert f"ABEND: {full_name(job)}" in body and "Return code" in body and "12" in body
    assert "Exit Status" in body  # the error lines from the log tail
    assert {"resync_alert_rerun", "resync_alert_log", "resync_alert_ack"} <= {
        e["action_id"].split("#")[0] for b in alert["blocks"] if b["type"] == "actions" for e in b["elements"]}
    # Nothing new: the next polls queue nothing and post nothing.
    for _ in range(2):
        assert (await watch.poll_once()).queued == 0
        assert await watch.deliver_due() == 0
    simulator.force_fail(other["id"], 4)  # an unrouted stream goes to the default channel
    await watch.poll_once()
    assert await watch.deliver_due() == 1
    assert [p["channel"] for p in posted(slack_api)] == ["C_ROUTED", "C_DEFAULT"]


@pytest.mark.parametrize("backend", ["sqlite", "redis"])
async def test_a_restart_neither_loses_nor_repeats_an_alert(backend, sim, tws, tmp_path: Path, redis_url,
                                                             redis_namespace):
    simulator, _ = sim
    first, second = pick(simulator, 2, "SUCC")
    settings = alerting(default_targets=("slack:C1",))
    store_settings = StoreSettings(data_dir=tmp_path) if backend == "sqlite" else StoreSettings(redis_url=redis_url)
    namespace = "" if backend == "sqlite" else redis_namespace
    chat = Recorder()
    simulator.force_fail(first["id"], 8)
    async with open_store(store_settings, namespace=namespace) as store:
        watch = watch_for(settings, tws=tws, store=store, notifiers=[chat])
        assert (await watch.poll_once()).new == 1
        assert await watch.deliver_due() == 1
        simulator.force_fail(second["id"], 8)
        assert (await watch.poll_once()).new == 1  # queued, then the process dies before sending
    async with open_store(store_settings, namespace=namespace) as store:
        watch = watch_for(settings, tws=tws, store=store, notifiers=[chat], owner="test")
        report = await watch.poll_once()
        assert (report.new, report.queued) == (0, 0)
        assert await watch.deliver_due() == 1
        assert (await watch.poll_once()).queued == 0
        assert await watch.deliver_due() == 0
    assert sorted(r.title for _, r, _ in chat.posts) == sorted(
        f"🔴 ABEND: {full_name(j)}" for j in (first, second))


async def test_a_slack_outage_delays_the_alert_but_delivers_it_exactly_once(sim, tws, sqlite_store, slack,
                                                                           slack_api):
    simulator, _ = sim
    [job] = pick(simulator, 1, "SUCC")
    clock = Clock()
    watch = watch_for(alerting(default_targets=("slack:C_OUT",)), tws=tws, store=sqlite_store,
                      notifiers=[slack], clock=clock)
    slack_api.fail("chat.postMessage", status=500, times=4)  # the adapter's own retries give up
    simulator.force_fail(job["id"], 8)
    await watch.poll_once()
    with capture_logs() as logs:
        assert await watch.deliver_due() == 0
    [failure] = [e for e in logs if e["event"] == "alert_delivery_failed"]
    assert await watch.deliver_due() == 0  # backing off: not retried at once
    slack_api.fail("chat.postMessage", status=429, retry_after=0.2, times=4)
    clock.skip(failure["retry_in"] + 0.1)
    with capture_logs() as logs:
        assert await watch.deliver_due() == 0
    [limited] = [e for e in logs if e["event"] == "alert_delivery_failed"]
    assert limited["retry_in"] == pytest.approx(0.2)  # Slack's Retry-After, not our backoff
    clock.skip(0.3)
    assert await watch.deliver_due() == 1
    assert len(posted(slack_api, "C_OUT")) == 1 and len(slack_api.calls("chat.postMessage")) == 9
    assert await sqlite_store.outbox_pending() == 0
    await watch.poll_once()
    assert await watch.deliver_due() == 0 and len(posted(slack_api)) == 1


async def test_a_target_without_its_adapter_keeps_its_alerts_until_a_restart_delivers_them_once(
        sim, tws, sqlite_store):
    simulator, _ = sim
    first, second = pick(simulator, 2, "SUCC")
    clock = Clock()
    settings = alerting(routes=(AlertRoute(stream=first["jobStreamName"], targets=("teams:19:ops",)),),
                        default_targets=("slack:C1",))
    slack_only = Recorder()
    watch = watch_for(settings, tws=tws, store=sqlite_store, notifiers=[slack_only], clock=clock)
    simulator.force_fail(first["id"], 8)
    simulator.force_fail(second["id"], 8)
    assert (await watch.poll_once()).new == 2
    with capture_logs() as logs:
        for _ in range(4):
            await watch.deliver_due()
            clock.skip(61)
        await tws.rerun(first["id"])  # the thread gets a step while its root still waits
        assert (await watch.poll_once()).transitions == 1
        for _ in range(3):
            assert await watch.deliver_due() == 0
            clock.skip(61)
    assert [r.title for _, r, _ in slack_only.posts] == [f"🔴 ABEND: {full_name(second)}"]
    assert [e["log_level"] for e in logs if e["event"] == "alert_target_unhandled"] == ["error"]  # once
    assert await sqlite_store.outbox_pending() >= 2  # nothing for Teams was dropped
    # Restarted with a Teams adapter: the root, then its thread, each once.
    teams = Recorder("teams")
    restarted = watch_for(settings, tws=tws, store=sqlite_store, notifiers=[slack_only, teams], clock=clock)
    clock.skip(61)
    assert await restarted.deliver_due() == 2  # the root first, then its reply (the root shows the rerun already)
    assert (await restarted.poll_once()).queued == 0
    clock.skip(600)
    assert await restarted.deliver_due() == 0 and await sqlite_store.outbox_pending() == 0
    root, step = teams.posts
    assert root[0] == "teams:19:ops" and root[2] is None and "RERUNNING" in (root[1].title or "")
    assert step[2] == "m1" and "rerun 1 started" in step[1].text
    assert teams.updates == [] and len(slack_only.posts) == 1  # the root was rendered as it is now


# --- a status that goes back is not a rerun -----------------------------------------------

async def test_a_failed_run_seen_waiting_again_is_no_rerun_and_only_its_end_is_announced(tmp_path: Path):
    """A restarted TWS (here: a restarted simulator, same plan) shows failed jobs back in SCHED or
    HOLD with the same run id and rerun count. That is no rerun: nothing is posted, the root keeps
    the failure; failing again in that run is the same failure; confirm-succ and cancel still close."""
    chat, clock = Recorder(), Clock()
    settings = alerting(default_targets=("slack:C1",))
    async with open_store(StoreSettings(data_dir=tmp_path), namespace="") as store:
        async with run_simulator(jobs=300, seed=5, failure_rate=0.0, speed=0.0) as (before, url):
            confirmed, cancelled = pick(before, 2, "SCHED", "HOLD", "READY")
            async with TwsClient(TwsSettings(urls=(url,), user="resync", password="resync", retries=0)) as tws:
                watch = watch_for(settings, tws=tws, store=store, notifiers=[chat], clock=clock)
                for job in (confirmed, cancelled):
                    before.force_fail(job["id"], 8)
                assert (await watch.poll_once()).new == 2
                assert await watch.deliver_due() == 2
        async with run_simulator(jobs=300, seed=5, failure_rate=0.0, speed=0.0) as (after, url):
            again = {j["id"]: j for j in after.jobs_in_state()}
            for job in (confirmed, cancelled):
                assert (again[job["id"]]["id"], again[job["id"]]["rerunCount"]) == (job["id"], 0)
                assert again[job["id"]]["internalStatus"] in {"SCHED", "HOLD", "READY"}
            async with TwsClient(TwsSettings(urls=(url,), user="resync", password="resync", retries=0)) as tws:
                watch = watch_for(settings, tws=tws, store=store, notifiers=[chat], clock=clock)
                with capture_logs() as logs:
                    for _ in range(2):
                        report = await watch.poll_once()
                        assert (report.followed, report.transitions, report.queued) == (2, 0, 0)
                assert sorted(e["job"] for e in logs if e["event"] == "alert_state_regressed") == sorted(
                    full_name(j) for j in (confirmed, cancelled))  # info, once each
                root = await watch.render_root(confirmed["id"])
                assert root is not None and root.title == f"🔴 ABEND: {full_name(confirmed)}"
                after.force_fail(confirmed["id"], 8)  # the same run fails again: the same failure
                report = await watch.poll_once()
                assert (report.new, report.repeats, report.transitions, report.queued) == (0, 0, 0, 0)
                assert await watch.deliver_due() == 0 and len(chat.posts) == 2 and chat.updates == []
                await tws.confirm_succ(confirmed["id"])
                await tws.cancel(cancelled["id"])
                report = await watch.poll_once()
                assert (report.transitions, report.queued) == (2, 4)
                assert await watch.deliver_due() == 4  # a step in each thread, each root updated once
    steps = sorted(r.text for _, r, thread in chat.posts if thread is not None)
    assert [s.split(" ")[0] for s in steps] == ["⚪", "✅"]
    assert steps[1].startswith(f"✅ {full_name(confirmed)} recovered")
    assert sorted(r.title or "" for _, _, r in chat.updates) == sorted(
        [f"⚪ CANCELLED: {full_name(cancelled)}", f"✅ RECOVERED: {full_name(confirmed)}"])


# --- TWS outage -----------------------------------------------------------------------------

async def test_a_tws_outage_gives_one_notice_each_way_and_is_caught_up(sim, tws, sqlite_store):
    simulator, _ = sim
    [job] = pick(simulator, 1, "SUCC")
    chat = Recorder()
    settings = alerting(routes=(AlertRoute(stream="NOPE@", targets=("slack:C_ROUTE",)),),
                        default_targets=("slack:C_ALL",))
    watch = watch_for(settings, tws=tws, store=sqlite_store, notifiers=[chat])
    await watch.poll_once()
    simulator.set_faults(drop_rate=1.0)  # every connection closed with no answer: TWS really is unreachable
    with capture_logs() as logs:
        for _ in range(3):
            assert not (await watch.poll_once()).tws_ok
    assert [e["event"] for e in logs if e["event"].startswith("alerts_tws")] == ["alerts_tws_unreachable"]
    simulator.force_fail(job["id"], 8)  # fails while nobody can see it
    assert await watch.deliver_due() == 2
    assert [(t, r.title) for t, r, _ in chat.posts] == [("slack:C_ALL", "⚠️ TWS unreachable"),
                                                       ("slack:C_ROUTE", "⚠️ TWS unreachable")]
    simulator.clear_faults()
    report = await watch.poll_once()
    assert report.tws_ok and report.new == 1
    assert (await watch.poll_once()).queued == 0
    assert await watch.deliver_due() == 3
    assert sorted((t, r.title) for t, r, _ in chat.posts[2:]) == [
        ("slack:C_ALL", "✅ TWS reachable again"), ("slack:C_ALL", f"🔴 ABEND: {full_name(job)}"),
        ("slack:C_ROUTE", "✅ TWS reachable again")]
    simulator.set_faults(drop_rate=1.0)  # a second outage is a new pair of notices
    await watch.poll_once()
    assert await watch.deliver_due() == 2


@pytest.mark.parametrize("lang", ["en", "pt"])
async def test_tws_answering_with_an_error_is_quoted_never_called_unreachable(sim, tws, sqlite_store, lang):
    """A 503 carrying TWS's own message: TWS answered, so the notice says so and quotes it."""
    simulator, _ = sim
    [job] = pick(simulator, 1, "SUCC")
    chat = Recorder()
    settings = alerting(routes=(AlertRoute(stream="NOPE@", targets=("slack:C_ROUTE",)),),
                        default_targets=("slack:C_ALL",), lang=lang)
    watch = watch_for(settings, tws=tws, store=sqlite_store, notifiers=[chat])
    await watch.poll_once()
    simulator.set_faults(outage=True)  # every request: 503 {"messages": ["AWSJCO005E ..."]}
    with capture_logs() as logs:
        for _ in range(3):
            assert not (await watch.poll_once()).tws_ok
    said = "AWSJCO005E The engine is not available (simulated outage)."
    events = [e for e in logs if e["event"].startswith("alerts_tws")]
    assert [(e["event"], e["log_level"], e["answer"]) for e in events] == [("alerts_tws_error", "warning", said)]
    simulator.force_fail(job["id"], 8)  # fails while TWS cannot be polled
    assert await watch.deliver_due() == 2  # one notice per target, however many polls failed
    title, text = {"en": ("⚠️ TWS is answering with errors", f"TWS answers Resync's polls with an error: “{said}”"),
                   "pt": ("⚠️ O TWS está respondendo com erros",
                          f"o TWS responde às consultas do Resync com um erro: “{said}”")}[lang]
    assert [(t, r.title) for t, r, _ in chat.posts] == [("slack:C_ALL", title), ("slack:C_ROUTE", title)]
    for _, reply, _ in chat.posts:
        assert text in reply.text
        assert not any(word in reply.text.lower() for word in ("unreachable", "cannot reach", "inacess", "acessar"))
    simulator.clear_faults()
    report = await watch.poll_once()
    assert report.tws_ok and report.new == 1
    assert (await watch.poll_once()).queued == 0
    assert await watch.deliver_due() == 3
    back = {"en": "✅ TWS answering normally again", "pt": "✅ O TWS voltou a responder normalmente"}[lang]
    assert sorted((t, r.title) for t, r, _ in chat.posts[2:]) == [
        ("slack:C_ALL", back), ("slack:C_ALL", f"🔴 ABEND: {full_name(job)}"), ("slack:C_ROUTE", back)]
    assert await sqlite_store.get("alertstate:tws") is None


async def test_a_breaker_opened_by_tws_errors_before_the_first_poll_still_quotes_tws(sim, sqlite_store):
    """Chat requests opened the breaker on 503s carrying TWS's message: the poll fails fast, and its
    notice still says what TWS said. Opened by silence, the same poll says unreachable."""
    simulator, url = sim
    chat = Recorder()
    settings = TwsSettings(urls=(url,), user="resync", password="resync", timeout=2.0, retries=0,
                           breaker_fail_max=2, breaker_reset=30.0)
    async with TwsClient(settings) as tws:
        watch = watch_for(alerting(default_targets=("slack:C_ALL",)), tws=tws.uncached(), store=sqlite_store,
                          notifiers=[chat])
        await watch.poll_once()
        simulator.set_faults(outage=True)
        for _ in range(2):  # what the agent's requests would meet
            with pytest.raises(TwsUnavailable):
                await tws.engine_info()
        assert tws.breaker_state == "open"
        sent = simulator.stats["requests"]
        with capture_logs() as logs:
            assert not (await watch.poll_once()).tws_ok
        assert simulator.stats["requests"] == sent  # the poll failed fast
        said = "AWSJCO005E The engine is not available (simulated outage)."
        assert [(e["event"], e.get("answer")) for e in logs if e["event"].startswith("alerts_tws")] == [
            ("alerts_tws_error", said)]
        assert await watch.deliver_due() == 1
        [(_, notice, _)] = chat.posts
        assert notice.title == "⚠️ TWS is answering with errors" and f"with an error: “{said}”" in notice.text
    simulator.clear_faults()
    await sqlite_store.delete("alertstate:tws")
    async with TwsClient(settings) as tws:
        watch = watch_for(alerting(default_targets=("slack:C_ALL",)), tws=tws.uncached(), store=sqlite_store,
                          notifiers=[chat])
        simulator.set_faults(drop_rate=1.0)  # nothing answers: the breaker opens on silence
        for _ in range(2):
            with pytest.raises(TwsUnavailable):
                await tws.engine_info()
        assert tws.breaker_state == "open"
        await watch.poll_once()
        assert await watch.deliver_due() == 1
        assert chat.posts[-1][1].title == "⚠️ TWS unreachable"


@pytest.mark.parametrize(("status", "headers", "said"), [
    (502, {}, "HTTP 502 Bad Gateway, with no TWS message"),
    (429, {"Retry-After": "30"}, "HTTP 429 Too Many Requests (retry after 30 s)"),
])
async def test_a_gateway_answering_for_tws_is_quoted_never_called_unreachable(sim, sqlite_store, status, headers,
                                                                              said):
    simulator, url = sim
    chat = Recorder()
    async with TwsProxy(url) as proxy, TwsClient(TwsSettings(urls=(proxy.url,), user="resync", password="resync",
                                                             timeout=2.0, retries=0, breaker_fail_max=2,
                                                             breaker_reset=30.0)) as tws:
        watch = watch_for(alerting(default_targets=("slack:C_ALL",)), tws=tws.uncached(), store=sqlite_store,
                          notifiers=[chat])
        await watch.poll_once()
        proxy.answer(status, text="<html>Bad gateway</html>" if status >= 500 else "", headers=headers)
        for _ in range(3):  # the third poll meets the open breaker: the same answer stands
            assert not (await watch.poll_once()).tws_ok
        assert tws.breaker_state == "open" and proxy.answered == 2
        assert await watch.deliver_due() == 1
        [(_, notice, _)] = chat.posts
        assert notice.title == "⚠️ TWS is answering with errors" and f"“{said}”" in notice.text
        proxy.forward()
    assert (await sqlite_store.get("alertstate:tws"))["answer"] == said


# --- several replicas ---------------------------------------------------------------------------

async def test_two_watches_on_one_redis_store_make_one_poller_and_the_other_takes_over(sim, tws, redis_url,
                                                                                     redis_namespace):
    simulator, _ = sim
    [job] = pick(simulator, 1, "SUCC")
    settings = alerting(default_targets=("slack:C1",), lock_ttl=3.0)
    chat = Recorder()
    async with open_store(StoreSettings(redis_url=redis_url), namespace=redis_namespace) as store:
        a = watch_for(settings, tws=tws, store=store, notifiers=[chat], owner="replica-a")
        b = watch_for(settings, tws=tws, store=store, notifiers=[chat], owner="replica-b")
        simulator.force_fail(job["id"], 8)
        reports = await asyncio.gather(a.poll_once(), b.poll_once())
        assert sorted(r.leader for r in reports) == [False, True]
        leader, follower = (a, b) if reports[0].leader else (b, a)
        assert await follower.deliver_due() == 0 and chat.posts == []
        assert await leader.deliver_due() == 1
        assert not (await follower.poll_once()).leader  # the leader renewed: still no
        started = asyncio.get_running_loop().time()
        while not (await follower.poll_once()).leader:  # the leader died: it renews no more
            await asyncio.sleep(0.1)
        assert asyncio.get_running_loop().time() - started < 2 * settings.lock_ttl
        assert not (await leader.poll_once()).leader
        assert await follower.deliver_due() == 0 and len(chat.posts) == 1  # no duplicate after takeover


# --- the thread: actions, rerun, recovery, repeat failure ------------------------------------

async def root_ts(store: Store, thread: str, target: str) -> str:
    ref = await store.get(f"alertref:{thread}:{target}")
    assert ref is not None, "the root was not delivered"
    return ref["ref"]


def thread_texts(api: FakeSlackApi, channel: str, ts: str) -> list[str]:
    return [p["text"] for p in posted(api, channel) if p.get("thread_ts") == ts]


async def test_rerun_and_recovery_go_in_the_thread_and_update_the_root(sim, tws, sqlite_store, slack, slack_api):
    simulator, _ = sim
    [job] = pick(simulator, 1, "SUCC")
    watch = watch_for(alerting(default_targets=("slack:C_LIFE",)), tws=tws, store=sqlite_store,
                      notifiers=[slack])
    simulator.force_fail(job["id"], 8)
    await watch.poll_once()
    assert await watch.deliver_due() == 1
    ts = await root_ts(sqlite_store, job["id"], "slack:C_LIFE")
    await tws.rerun(job["id"])
    await watch.note_action(job_id=job["id"], tool="rerun_job", actor="ana", outcome="submitted")
    assert await watch.deliver_due() == 2  # the note in the thread, the root updated
    assert thread_texts(slack_api, "C_LIFE", ts) == ["🛠️ ana ran rerun: submitted"]
    [update] = [c.params for c in slack_api.calls("chat.update") if c.status == 200]
    assert update["ts"] == ts and "Last action: rerun_job by ana" in text_of(update)
    simulator.advance(6 * 3600)  # the rerun runs and ends SUCC
    report = await watch.poll_once()
    assert (report.transitions, report.followed) == (1, 1)
    assert await watch.deliver_due() == 2
    assert thread_texts(slack_api, "C_LIFE", ts)[-1].startswith(f"✅ {full_name(job)} recovered")
    root = slack_api.message("C_LIFE", ts)
    assert root is not None and "RECOVERED" in text_of(root) and "resync_alert_rerun" not in text_of(root)
    assert len([p for p in posted(slack_api, "C_LIFE") if "thread_ts" not in p]) == 1  # still one root
    assert (await watch.poll_once()).followed == 0  # closed: no longer followed


async def test_a_rerun_that_fails_again_is_a_repeat_failure_in_the_same_thread(sim, tws, sqlite_store):
    simulator, _ = sim
    [job] = pick(simulator, 1, "SUCC")
    chat = Recorder()
    watch = watch_for(alerting(default_targets=("slack:C1",)), tws=tws, store=sqlite_store, notifiers=[chat])
    simulator.force_fail(job["id"], 8)
    await watch.poll_once()
    await watch.deliver_due()
    await tws.rerun(job["id"])  # outside the bot: the poll announces the rerun itself
    report = await watch.poll_once()
    assert report.transitions == 1
    simulator.force_fail(job["id"], 12)
    report = await watch.poll_once()
    assert (report.new, report.repeats) == (0, 1)
    assert await watch.deliver_due() == 3  # rerun started, failed again, one coalesced root update
    root, rerun, again = chat.posts
    assert root[2] is None and rerun[2] == again[2] == "m1"
    assert "rerun 1 started" in rerun[1].text
    assert again[1].text.startswith(f"🔴 {full_name(job)} failed again: run 1 ended ABEND with return code 12")
    [(_, ref, updated)] = chat.updates
    assert ref == "m1" and "Return code" in {f.label for f in updated.fields}
    assert {f.label: f.value for f in updated.fields}["Return code"] == "12"
    assert "failed 2 times" in updated.text


async def test_a_stream_failing_again_fetches_successors_in_one_query_and_posts_each_repeat_once(
        sim, tws, sqlite_store):
    simulator, _ = sim
    by_stream: dict[str, list[JSON]] = {}
    for job in simulator.jobs_in_state("SUCC"):
        by_stream.setdefault(job["jobStreamName"], []).append(job)
    _, jobs = max(by_stream.items(), key=lambda item: len(item[1]))
    jobs = jobs[:4]
    assert len(jobs) == 4, "the plan needs a stream with 4 finished jobs"
    chat = Recorder()
    watch = watch_for(alerting(default_targets=("slack:C1",), burst_threshold=10), tws=tws, store=sqlite_store,
                      notifiers=[chat])
    for job in jobs:
        simulator.force_fail(job["id"], 8)
    assert (await watch.poll_once()).new == 4  # below the burst threshold: a thread each
    assert await watch.deliver_due() == 4
    roots = {r.title: ref for ref, (_, r, thread) in enumerate(chat.posts, 1) if thread is None}
    simulator.reset_stats()
    assert (await watch.poll_once()).queued == 0  # nothing new: only the failed-jobs query
    quiet = simulator.stats["kinds"]["job_query"]["requests"]
    for job in jobs:
        await tws.job_action(job["id"], "rerun")
        simulator.force_fail(job["id"], 12)
    simulator.reset_stats()
    report = await watch.poll_once()
    assert (report.new, report.repeats) == (0, 4)
    kinds = simulator.stats["kinds"]
    assert kinds["job_query"]["requests"] == quiet + 1  # the successors of all four in one query
    assert kinds["job_log"]["requests"] == 4
    assert await watch.deliver_due() == 8  # a "failed again" reply and a root update per thread
    assert (await watch.poll_once()).queued == 0 and await watch.deliver_due() == 0
    for job in jobs:
        again = [thread for _, r, thread in chat.posts
                 if r.text.startswith(f"🔴 {full_name(job)} failed again: run 1 ended ABEND with return code 12")]
        assert again == [f"m{roots[f'🔴 ABEND: {full_name(job)}']}"]  # in its own thread, once
    assert sorted(ref for _, ref, _ in chat.updates) == sorted(f"m{ref}" for ref in roots.values())


# --- noise control --------------------------------------------------------------------------

def press(action_id: str, value: str, user: str = "ana", lang: str | None = None) -> Event:
    return Event(platform="slack", workspace="T1", channel="C1", user_id="U1", user_name=user, kind="action",
                 action_id=action_id, action_value=value, lang=lang)


async def test_acknowledge_and_snooze_update_the_root_and_quiet_the_thread(sim, tws, sqlite_store):
    simulator, _ = sim
    [job] = pick(simulator, 1, "SUCC")
    chat = Recorder()
    watch = watch_for(alerting(default_targets=("slack:C1",)), tws=tws, store=sqlite_store, notifiers=[chat])
    simulator.force_fail(job["id"], 8)
    await watch.poll_once()
    await watch.deliver_due()
    assert await watch.on_action(press("resync_confirm", "x")) is None  # not ours
    [ack] = await watch.on_action(press(ACTION_ALERT_ACK, job["id"])) or []
    assert ack.ephemeral
    [again] = await watch.on_action(press(ACTION_ALERT_ACK, job["id"], user="bob")) or []
    assert "Already acknowledged by ana" in again.text
    await watch.on_action(press(ACTION_ALERT_SNOOZE_1H, job["id"]))
    assert await watch.deliver_due() == 3
    assert [r.text.split(" (")[0] for _, r, _ in chat.posts[1:]] == ["👍 Acknowledged by ana",
                                                                    "😴 Snoozed for 1 h by ana"]
    root = chat.updates[-1][2]
    assert "Acknowledged by ana" in (root.context or "") and "Snoozed by ana" in (root.context or "")
    assert "resync_alert_ack" not in [b.action_id for b in root.buttons]
    assert (await watch.poll_once()).queued == 0  # acknowledged: never re-alerted
    await tws.rerun(job["id"])
    simulator.force_fail(job["id"], 9)
    report = await watch.poll_once()
    assert report.repeats == 1
    assert await watch.deliver_due() == 1  # snoozed: the root changes, the thread stays quiet
    assert len(chat.posts) == 3


async def test_muted_routes_and_runtime_mutes_swallow_failures_until_they_expire(sim, tws, sqlite_store):
    simulator, _ = sim
    noisy, other = pick(simulator, 2, "SUCC")
    chat = Recorder()
    settings = alerting(routes=(AlertRoute(stream=noisy["jobStreamName"], mute=True, targets=()),),
                             default_targets=("slack:C1",))
    watch = watch_for(settings, tws=tws, store=sqlite_store, notifiers=[chat])
    simulator.force_fail(noisy["id"], 8)
    await watch.mute(full_name(other).split(".")[0] + ".@", seconds=1.0, actor="ana")
    simulator.force_fail(other["id"], 8)
    report = await watch.poll_once()
    assert (report.failed, report.muted, report.new) == (2, 2, 0)
    await asyncio.sleep(1.1)
    report = await watch.poll_once()
    assert (report.muted, report.new) == (1, 1)  # the runtime mute expired; the route mutes forever
    await watch.deliver_due()
    assert [r.title for _, r, _ in chat.posts] == [f"🔴 ABEND: {full_name(other)}"]


async def test_a_burst_in_one_stream_becomes_one_grouped_message(sim, tws, sqlite_store):
    simulator, _ = sim
    by_stream: dict[str, list[JSON]] = {}
    for job in simulator.jobs_in_state("SUCC"):
        by_stream.setdefault(job["jobStreamName"], []).append(job)
    stream, jobs = max(by_stream.items(), key=lambda item: len(item[1]))
    assert len(jobs) >= 5, "the plan needs a stream with 5 finished jobs"
    chat = Recorder()
    watch = watch_for(alerting(default_targets=("slack:C1",), burst_threshold=3), tws=tws,
                      store=sqlite_store, notifiers=[chat])
    simulator.force_fail(jobs[0]["id"], 8)
    assert (await watch.poll_once()).new == 1  # below the threshold: its own alert
    for job in jobs[1:4]:
        simulator.force_fail(job["id"], 8)
    report = await watch.poll_once()
    assert (report.new, report.grouped) == (0, 3)
    simulator.force_fail(jobs[4]["id"], 8)
    report = await watch.poll_once()
    assert (report.new, report.grouped) == (0, 1)  # joins the open group
    assert await watch.deliver_due() == 3  # single alert, group root, "also failed" (root update coalesced)
    single, group, joined = chat.posts
    assert single[1].title == f"🔴 ABEND: {full_name(jobs[0])}"
    assert group[1].title == f"🔴 4 failures in job stream {workstation_label(jobs[1]['workstation'])}#{stream}"
    assert all(full_name(j) in group[1].text for j in jobs[1:5])  # rendered when sent: includes the 5th
    assert joined[2] == "m2" and joined[1].text.startswith(f"🔴 Also failed: {full_name(jobs[4])}")
    [ack] = await watch.on_action(press(ACTION_ALERT_ACK, group[1].buttons[0].value)) or []
    assert ack.text == "Acknowledged the group."


async def test_a_burst_spread_over_two_polls_reads_as_one_burst(sim, tws, sqlite_store):
    simulator, _ = sim
    by_stream: dict[str, list[JSON]] = {}
    for job in simulator.jobs_in_state("SUCC"):
        by_stream.setdefault(job["jobStreamName"], []).append(job)
    stream, jobs = max(by_stream.items(), key=lambda item: len(item[1]))
    assert len(jobs) >= 7, "the plan needs a stream with 7 finished jobs"
    chat, clock = Recorder(), Clock()
    watch = watch_for(alerting(default_targets=("slack:C1",), burst_threshold=5, burst_window=300.0), tws=tws,
                      store=sqlite_store, notifiers=[chat], clock=clock)
    for job in jobs[:3]:
        simulator.force_fail(job["id"], 8)
    assert ((report := await watch.poll_once()).new, report.grouped) == (3, 0)  # below the threshold
    assert await watch.deliver_due() == 3
    clock.skip(12)
    for job in jobs[3:7]:
        simulator.force_fail(job["id"], 8)
    assert ((report := await watch.poll_once()).new, report.grouped) == (0, 4)  # 7 in the window: a burst
    assert await watch.deliver_due() == 1
    assert (await watch.poll_once()).queued == 0
    assert await watch.deliver_due() == 0
    singles, group = chat.posts[:3], chat.posts[3][1]
    assert len(chat.posts) == 4 and all(t is None for _, _, t in chat.posts)  # 4 roots, no thread replies
    assert [r.title for _, r, _ in singles] == [f"🔴 ABEND: {full_name(j)}" for j in jobs[:3]]
    assert chat.updates == []  # the earlier alerts are neither retracted nor edited
    where = f"{workstation_label(jobs[3]['workstation'])}#{stream}"
    assert group.title == f"🔴 4 failures in job stream {where}"
    assert group.text.startswith(f"7 failures in job stream {where} within 5 min (3 already alerted above")
    lines = group.text.splitlines()[1:]
    assert [line.split(" — ")[0].removeprefix("🔴 ") for line in lines] == [full_name(j) for j in jobs[:7]]
    assert [line.endswith("(alerted separately above)") for line in lines] == [True] * 3 + [False] * 4
    assert all(b.value.startswith("burst:") for b in group.buttons)


async def test_pend_jobs_are_announced_as_needing_confirmation_and_close_when_confirmed(sim, tws, sqlite_store):
    simulator, _ = sim
    pending = simulator.jobs_in_state("PEND")
    assert pending, "the simulated plan (seed 5) has a job waiting for confirmation"
    chat = Recorder()
    watch = watch_for(AlertSettings(default_targets=("slack:C1",), baseline="alert"), tws=tws, store=sqlite_store,
                      notifiers=[chat])
    assert (await watch.poll_once()).new == len(pending)
    await watch.deliver_due()
    titles = {r.title for _, r, _ in chat.posts}
    assert f"🟡 PEND: {full_name(pending[0])} (needs confirmation)" in titles
    assert all(r.code is None for _, r, _ in chat.posts)  # rc 0, no real error lines: no "Exit Status : 0"
    assert "resync_alert_rerun" not in {b.action_id for _, r, _ in chat.posts for b in r.buttons}  # TWS would refuse
    await tws.confirm_succ(pending[0]["id"])
    assert (await watch.poll_once()).transitions == 1
    await watch.deliver_due()
    assert chat.posts[-1][1].text.startswith(f"✅ {full_name(pending[0])} recovered")


async def test_the_scheduler_polls_and_delivers_on_its_own(sim, tws, sqlite_store):
    from apscheduler.schedulers.asyncio import AsyncIOScheduler

    simulator, _ = sim
    [job] = pick(simulator, 1, "SUCC")
    chat = Recorder()
    watch = watch_for(alerting(default_targets=("slack:C1",), poll_interval=1.0, lock_ttl=3.0), tws=tws,
                      store=sqlite_store, notifiers=[chat])
    await sqlite_store.put("alert:stale", {"job_id": "stale"}, ttl=0.01)
    await asyncio.sleep(0.05)  # expired before the first housekeeping purges it
    scheduler = AsyncIOScheduler(timezone="UTC")
    watch.schedule(scheduler)
    assert {j.id for j in scheduler.get_jobs()} == {"alerts-poll", "alerts-housekeeping"}  # delivery: its own task
    with capture_logs() as logs:
        scheduler.start()
        try:
            simulator.force_fail(job["id"], 8)
            async with asyncio.timeout(5):
                while not chat.posts:
                    await asyncio.sleep(0.05)
            await asyncio.sleep(1.2)  # one more poll
        finally:
            scheduler.shutdown(wait=False)
            await watch.stop()
            await watch.resign()
    assert [r.title for _, r, _ in chat.posts] == [f"🔴 ABEND: {full_name(job)}"]
    events = [e["event"] for e in logs]
    assert events.count("alerts_single_instance") == 1 and events.count("alerts_store_purged") == 1
    assert await sqlite_store.acquire_lock("alerts-poller", "someone-else", 1.0)  # resigned: free at once


# --- language -------------------------------------------------------------------------------

def button_labels(params: JSON) -> list[str]:
    return [e["text"]["text"] for b in params.get("blocks", []) if b["type"] == "actions" for e in b["elements"]]


async def test_alerts_in_portuguese_from_root_to_thread_and_button_answers(sim, tws, sqlite_store, slack, slack_api):
    simulator, _ = sim
    [job] = pick(simulator, 1, "SUCC")
    english = watch_for(alerting(default_targets=("slack:C_PT",)), tws=tws, store=sqlite_store, notifiers=[slack])
    watch = watch_for(alerting(default_targets=("slack:C_PT",), lang="pt"), tws=tws, store=sqlite_store,
                      notifiers=[slack])
    simulator.force_fail(job["id"], 12)
    await english.poll_once()  # recorded by an English-speaking instance...
    assert await watch.deliver_due() == 1  # ...rendered from the store by a Portuguese one
    [alert] = posted(slack_api, "C_PT")
    body = text_of(alert)
    assert f"ABEND: {full_name(job)}" in body and "terminou em ABEND com código de retorno 12" in body
    assert "Código de retorno" in body and "Linhas de erro do log do job" in body and "Return code" not in body
    assert button_labels(alert) == ["Reexecutar", "Ver log", "Reconhecer", "Adiar 1 h", "Adiar 24 h"]
    # The private answer follows the presser's language when the platform knows it, else the alerts'.
    [ack] = await watch.on_action(press(ACTION_ALERT_ACK, job["id"])) or []
    assert ack.ephemeral and ack.text == f"{full_name(job)} reconhecido."
    [again] = await watch.on_action(press(ACTION_ALERT_ACK, job["id"], user="bob", lang="en")) or []
    assert again.text == "Already acknowledged by ana."
    [snooze] = await watch.on_action(press(ACTION_ALERT_SNOOZE_1H, job["id"], user="bob", lang="pt")) or []
    assert snooze.text.startswith("Adiado por 1 h")
    assert await watch.deliver_due() == 3  # two thread messages, one coalesced root update
    ts = await root_ts(sqlite_store, job["id"], "slack:C_PT")
    texts = thread_texts(slack_api, "C_PT", ts)
    assert texts[0] == "👍 Reconhecido por ana" and texts[1].startswith("😴 bob adiou os alertas por 1 h")
    root = slack_api.message("C_PT", ts)
    assert root is not None and "Reconhecido por ana" in text_of(root) and "Adiado por bob" in text_of(root)
    assert "Reconhecer" not in button_labels(root)


async def test_tws_outage_notices_and_lifecycle_steps_in_portuguese(sim, tws, sqlite_store):
    simulator, _ = sim
    [job] = pick(simulator, 1, "SUCC")
    chat = Recorder()
    watch = watch_for(alerting(default_targets=("slack:C1",), lang="pt"), tws=tws, store=sqlite_store,
                      notifiers=[chat])
    await watch.poll_once()
    simulator.set_faults(drop_rate=1.0)
    assert not (await watch.poll_once()).tws_ok
    simulator.force_fail(job["id"], 8)
    simulator.clear_faults()
    assert (await watch.poll_once()).new == 1
    assert await watch.deliver_due() == 3
    by_title = {r.title: r for _, r, _ in chat.posts}
    assert set(by_title) == {"⚠️ TWS inacessível", "✅ TWS acessível novamente", f"🔴 ABEND: {full_name(job)}"}
    assert "O Resync não consegue acessar o TWS" in by_title["⚠️ TWS inacessível"].text
    await tws.rerun(job["id"])
    assert (await watch.poll_once()).transitions == 1
    simulator.force_fail(job["id"], 12)
    assert (await watch.poll_once()).repeats == 1
    assert await watch.deliver_due() == 3
    rerun, again = (r.text for _, r, _ in chat.posts[3:])
    assert rerun.startswith(f"🔁 {full_name(job)}: reexecução 1 iniciada")
    assert again.startswith(f"🔴 {full_name(job)} falhou de novo: a execução 1 terminou em ABEND "
                            "com código de retorno 12")
    [(_, _, updated)] = chat.updates
    assert {f.label: f.value for f in updated.fields}["Código de retorno"] == "12"
    assert "Já falhou 2 vezes neste plano" in updated.text


async def test_a_scheduled_successor_waiting_on_the_failed_job_counts_as_blocked(sim, tws, sqlite_store):
    """Not only HOLD: a successor that has not run yet (SCHED) waits on the failed job, as the
    rerun confirmation counts it ("Successors 1 (1 waiting)"), so the alert says 1, not 0."""
    simulator, _ = sim
    candidates = [await tws.get_job(j["id"]) for j in simulator.jobs_in_state("SCHED")[:60]]
    successors = await tws.successors_of(candidates)
    job = next(j for j in candidates if [s.status for s in successors[j.id]] == ["SCHED"])
    simulator.force_fail(job.id, 8)
    [after] = (await tws.successors_of([await tws.get_job(job.id)]))[job.id]
    assert after.status == "SCHED"  # still not run, and waiting on the failed job
    chat = Recorder()
    watch = watch_for(alerting(default_targets=("slack:C1",)), tws=tws, store=sqlite_store, notifiers=[chat])
    assert (await watch.poll_once()).new == 1 and await watch.deliver_due() == 1
    [(_, root, _)] = chat.posts
    assert "1 successor job(s) are blocked." in root.text, root.text
    assert any(f.value == "1" for f in root.fields), root.fields
