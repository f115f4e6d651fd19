"""Late jobs as the plan gives them: a job that has not started by its latest start time, or is
still waiting at its deadline, is alerted like a failure (same lifecycle, same routing), says when
it starts at last, and closes with a note when it finishes. Real simulator over HTTP (virtual clock
stopped, moved by the test; the watch reads the same clock), real Slack adapter on a fake Web API.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from adapters.slack import SlackAdapter
from bot.alerts import FailureWatch
from bot.config import AlertSettings, SlackSettings, TwsSettings
from bot.events import Event, Reply
from bot.simulator import run_simulator
from bot.store import Store
from bot.tws.client import TwsClient
from tests.fakes.slack_api import FakeSlackApi

CHANNEL = "slack:C0LATE"


@pytest.fixture
async def rig(sqlite_store: Store) -> AsyncIterator[tuple[Any, TwsClient, FakeSlackApi, SlackAdapter]]:
    async def handle(event: Event) -> list[Reply]:
        return []

    async with FakeSlackApi() as api, run_simulator(jobs=2000, seed=11, failure_rate=0.0, speed=0.0) as (sim, url):
        tws = TwsClient(TwsSettings(urls=(url,), user="resync", password="resync", timeout=2.0, retries=0))
        slack = SlackAdapter(SlackSettings(bot_token="xoxb-test", signing_secret="shh-test", api_url=api.url),
                             handle=handle, store=sqlite_store)
        yield sim, tws, api, slack
        await slack.close()
        await tws.close()


def _watch(sim: Any, tws: TwsClient, store: Store, slack: SlackAdapter, *, late: bool = True) -> FailureWatch:
    settings = AlertSettings(default_targets=(CHANNEL,), notify_pend=False, notify_late=late, baseline="alert",
                             channel_burst=1000, long_factor=1000.0)
    return FailureWatch(settings, tws=tws, store=store, notifiers=[slack], owner="test", single_instance=True,
                        clock=sim.now)


async def _cycle(watch: FailureWatch) -> None:
    await watch.poll_once()
    while await watch.deliver_due():
        pass


def _texts(api: FakeSlackApi, name: str) -> list[str]:
    return [c.params.get("text", "") + json.dumps(c.params.get("blocks", []), ensure_ascii=False)
            for c in api.calls("chat.postMessage") if c.status == 200 and name in c.params.get("text", "")]


def _later_job(sim: Any) -> Any:
    """A job with a latest start that has not started yet, the first of them to come due."""
    now = sim.now()
    return min((j for j in sim.plan.jobs if j.latest_start is not None and j.start > now + 60
                and j.latest_start > now + 60 and not j.long and j.end - j.start > 60),
               key=lambda j: j.latest_start)


async def test_a_job_held_past_its_latest_start_is_alerted_then_starts_then_finishes(rig: Any, sqlite_store: Store) -> None:
    sim, tws, api, slack = rig
    watch = _watch(sim, tws, sqlite_store, slack)
    job = _later_job(sim)
    job_id = sim.plan.job_id(job)
    wire_job = next(j for j in sim.jobs_in_state() if j["id"] == job_id)
    assert wire_job["latestStart"] and wire_job["deadline"]  # the simulator gives them over the wire
    await tws.hold(job_id)
    await _cycle(watch)
    assert await sqlite_store.get(f"alert:{job_id}") is None  # not late yet: nothing said
    assert _texts(api, job.name) == []

    sim.advance(job.latest_start - sim.now() + 30)  # its latest start has passed; still held
    await _cycle(watch)
    [root] = [t for t in _texts(api, job.name) if "not started by its latest start" in t]
    assert "HOLD" in root and "NOT STARTED" in root
    record = await sqlite_store.get(f"alert:{job_id}")
    assert record is not None and record["kind"] == "late" and record["targets"] == [CHANNEL]
    await _cycle(watch)  # still held: no second alert
    assert len([t for t in _texts(api, job.name) if "not started" in t]) == 1

    await tws.release(job_id)
    started = next(j for j in sim.plan.jobs if j is job)
    sim.advance(max(0.0, started.start - sim.now()) + 1)  # it runs now
    await _cycle(watch)
    assert len([t for t in _texts(api, job.name) if "started at last" in t]) == 1
    assert (await sqlite_store.get(f"alert:{job_id}"))["state"] == "open"

    sim.advance(started.end - sim.now() + 1)  # it finished
    await _cycle(watch)
    assert len([t for t in _texts(api, job.name) if "finished" in t]) == 1
    assert (await sqlite_store.get(f"alert:{job_id}"))["state"] == "recovered"
    roots = [c for c in api.calls("chat.postMessage") if "thread_ts" not in c.params and job.name in c.params["text"]]
    assert len(roots) == 1  # one thread for the whole story
    replies = [c for c in api.calls("chat.postMessage") if c.params.get("thread_ts") == roots[0].answer["ts"]]
    assert len(replies) == 2  # started, finished


async def test_a_job_still_waiting_at_its_deadline_says_deadline(rig: Any, sqlite_store: Store) -> None:
    sim, tws, api, slack = rig
    watch = _watch(sim, tws, sqlite_store, slack)
    job = _later_job(sim)
    job_id = sim.plan.job_id(job)
    await tws.hold(job_id)
    sim.advance(job.deadline - sim.now() + 30)  # both limits passed, never started
    await _cycle(watch)
    [root] = [t for t in _texts(api, job.name) if "past its deadline" in t]
    assert "HOLD" in root and "PAST DEADLINE" in root


async def test_late_alerts_stay_off_without_the_switch(rig: Any, sqlite_store: Store) -> None:
    sim, tws, api, slack = rig
    watch = _watch(sim, tws, sqlite_store, slack, late=False)
    job = _later_job(sim)
    job_id = sim.plan.job_id(job)
    await tws.hold(job_id)
    sim.advance(job.deadline - sim.now() + 30)
    await _cycle(watch)
    assert await sqlite_store.get(f"alert:{job_id}") is None and _texts(api, job.name) == []
