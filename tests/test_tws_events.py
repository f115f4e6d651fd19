"""``POST /api/tws/events`` over real HTTP: the web app with its poller, the simulator, the fake Slack API.

A pushed failure reaches Slack within a second (no poll in between: the poll interval is five
minutes here); forged or malformed events get 401/400 and alert nothing; a Hypothesis fuzz run
of the endpoint never gets a 5xx.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.config import load_settings
from bot.simulator import run_simulator
from bot.web import COMPONENTS, create_app
from bot.tws.names import workstation_label
from tests.fakes.slack_api import FakeSlackApi

TOKEN = "events-token-for-tests-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@dataclass
class Rig:
    sim: Any
    slack: FakeSlackApi
    client: TestClient
    watch: Any

    def posts(self) -> list[dict[str, Any]]:
        return [c.params for c in self.slack.calls("chat.postMessage") if c.status == 200]


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    async with FakeSlackApi() as slack, run_simulator(jobs=300, seed=5, failure_rate=0.0, speed=0.0) as (sim, url):
        env = {"TWS_URL": url, "TWS_USER": "resync", "TWS_PASSWORD": "resync", "TWS_RETRIES": "0",
               "RESYNC_DATA_DIR": str(tmp_path), "RESYNC_ALERT_CHANNELS": "slack:C0ALERTS", "RESYNC_ALERT_PEND": "false",
               "RESYNC_POLL_INTERVAL": "300", "RESYNC_EVENTS_TOKEN": TOKEN,
               "SLACK_BOT_TOKEN": "xoxb-0000-events-test", "SLACK_SIGNING_SECRET": "s" * 32, "SLACK_API_URL": slack.url}
        app = await create_app(load_settings(env), poll=True)
        async with TestClient(TestServer(app, host="127.0.0.1", port=0)) as client:
            watch = app[COMPONENTS].watch
            async with asyncio.timeout(5):
                while watch.plan is None:  # the first poll (at start) has seen the plan
                    await asyncio.sleep(0.02)
            yield Rig(sim=sim, slack=slack, client=client, watch=watch)


def _name(job: dict[str, Any]) -> str:
    return f"{workstation_label(job['workstation'])}#{job['jobStreamName']}.{job['name']}"


async def test_a_pushed_failure_is_alerted_within_a_second(rig: Rig) -> None:
    job = rig.sim.jobs_in_state("SCHED")[0]
    rig.sim.force_fail(job["id"], 8)
    started = time.monotonic()
    response = await rig.client.post("/api/tws/events", json={"job": _name(job), "status": "ABEND"}, headers=AUTH)
    assert response.status == 202
    assert await response.json() == {"accepted": True, "job": _name(job), "status": "ABEND", "outcome": "alerted"}
    await rig.slack.wait_for("chat.postMessage", timeout=1.0, ok=True)
    assert time.monotonic() - started < 1.0
    [post] = rig.posts()
    assert post["channel"] == "C0ALERTS" and _name(job) in post["text"]
    # The same event again (TWS retries, or the poll finds it): nothing more.
    again = await rig.client.post("/api/tws/events", json={"id": job["id"], "status": "ABEND"}, headers=AUTH)
    assert again.status == 202 and (await again.json())["outcome"] == "followed"
    await rig.watch.poll_once()
    await asyncio.sleep(0.3)
    assert len(rig.posts()) == 1


async def test_forged_and_bad_events_are_refused_and_alert_nothing(rig: Rig) -> None:
    healthy = rig.sim.jobs_in_state("SCHED")[0]
    cases = [
        ({}, {"job": _name(healthy), "status": "ABEND"}, 401),
        ({"Authorization": "Bearer wrong"}, {"job": _name(healthy), "status": "ABEND"}, 401),
        (AUTH, {"job": _name(healthy), "status": "ABEND"}, 400),  # TWS says SCHED: a forged failure
        (AUTH, {"job": "NOSUCH#STREAM.JOB", "status": "ABEND"}, 400),
        (AUTH, {"job": healthy["name"], "status": "ABEND"}, 400),  # a bare name is not enough
        (AUTH, {"job": "AGT@#ST.J", "status": "ABEND"}, 400),  # no wildcards
        (AUTH, {"job": _name(healthy), "status": "BROKEN"}, 400),
        (AUTH, {"id": "not-an-id", "status": "ABEND"}, 400),
        (AUTH, ["not", "an", "object"], 400),
    ]
    for headers, body, status in cases:
        response = await rig.client.post("/api/tws/events", json=body, headers=headers)
        assert response.status == status, (body, await response.text())
        assert "error" in await response.json()
    raw = await rig.client.post("/api/tws/events", data=b"{nope", headers=AUTH)
    assert raw.status == 400
    await asyncio.sleep(0.3)
    assert rig.posts() == []


async def test_the_endpoint_is_off_without_a_token(tmp_path: Path) -> None:
    async with run_simulator(jobs=50, seed=5, failure_rate=0.0, speed=0.0) as (_, url):
        env = {"TWS_URL": url, "TWS_USER": "resync", "TWS_PASSWORD": "resync", "RESYNC_DATA_DIR": str(tmp_path),
               "RESYNC_ALERTS": "false"}
        app = await create_app(load_settings(env), poll=False)
        async with TestClient(TestServer(app, host="127.0.0.1", port=0)) as client:
            response = await client.post("/api/tws/events", json={"job": "A#B.C", "status": "ABEND"}, headers=AUTH)
            assert response.status == 404 and "RESYNC_EVENTS_TOKEN" in (await response.json())["error"]


_JSONISH = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=40),
                        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                                   max_size=4), max_leaves=12)
_EVENTS = st.fixed_dictionaries({}, optional={
    "job": st.one_of(st.text(max_size=60), st.sampled_from(["AGT01#PAYROLL.EXTRACT", "A#B.C", "#.", "a#b.c@"]),
                     _JSONISH),
    "id": st.one_of(st.uuids().map(str), st.text(max_size=40), _JSONISH),
    "status": st.one_of(st.sampled_from(["ABEND", "abend", "SUCC", "PEND", "EXEC", "BROKEN", ""]), _JSONISH)})


def test_fuzzed_events_never_get_a_5xx_nor_alert(tmp_path: Path) -> None:
    """Hypothesis drives the endpoint over HTTP with a fixed budget (the app runs on its own loop)."""
    loop = asyncio.new_event_loop()

    async def start() -> tuple[Any, ...]:
        slack = await FakeSlackApi().__aenter__()
        sim_cm = run_simulator(jobs=100, seed=5, failure_rate=0.0, speed=0.0)
        _, url = await sim_cm.__aenter__()
        env = {"TWS_URL": url, "TWS_USER": "resync", "TWS_PASSWORD": "resync", "TWS_RETRIES": "0",
               "RESYNC_DATA_DIR": str(tmp_path), "RESYNC_ALERT_CHANNELS": "slack:C0ALERTS", "RESYNC_ALERT_PEND": "false",
               "RESYNC_POLL_INTERVAL": "300", "RESYNC_EVENTS_TOKEN": TOKEN,
               "SLACK_BOT_TOKEN": "xoxb-0000-events-test", "SLACK_SIGNING_SECRET": "s" * 32, "SLACK_API_URL": slack.url}
        client = TestClient(TestServer(await create_app(load_settings(env), poll=False), host="127.0.0.1", port=0))
        await client.start_server()
        return slack, sim_cm, client

    slack, sim_cm, client = loop.run_until_complete(start())
    seen: list[int] = []

    @settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
    @given(body=st.one_of(_EVENTS, _JSONISH), raw=st.one_of(st.none(), st.binary(max_size=200)),
           auth=st.sampled_from([AUTH, {}, {"Authorization": "Bearer " + TOKEN[:-1]}, {"Authorization": TOKEN}]))
    def send(body: Any, raw: bytes | None, auth: dict[str, str]) -> None:
        data = raw if raw is not None else json.dumps(body).encode()
        response = loop.run_until_complete(client.post("/api/tws/events", data=data,
                                                       headers={**auth, "Content-Type": "application/json"}))
        seen.append(response.status)
        assert response.status in {202, 400, 401}, loop.run_until_complete(response.text())

    try:
        send()
        assert {400, 401} <= set(seen)
        assert not [c for c in slack.calls("chat.postMessage")]  # nothing failed in the plan: nothing alerted
    finally:
        loop.run_until_complete(client.close())
        loop.run_until_complete(sim_cm.__aexit__(None, None, None))
        loop.run_until_complete(slack.__aexit__(None, None, None))
        loop.close()
