"""Rerun from an alert, end to end: the real web app, Slack adapter, agent, alerts and simulator.

The alert's Rerun button goes through permission and confirmation like any rerun; the alert's
thread then shows the rerun and the recovery, and the root message is updated in place.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from bot.config import load_settings
from bot.events import ACTION_ALERT_RERUN, ACTION_CONFIRM
from bot.simulator import run_simulator
from bot.tws.names import workstation_label
from bot.web import COMPONENTS, create_app
from tests.fakes.slack_api import FakeSlackApi, block_actions, sign

SECRET = "0cc175b9c0f1b6a831c399e269772661"
FORM = "application/x-www-form-urlencoded"


@dataclass
class Rig:
    sim: Any
    slack: FakeSlackApi
    client: TestClient
    watch: Any

    async def press(self, body: bytes) -> int:
        response = await self.client.post("/slack/events", data=body, headers={**sign(body, SECRET), "Content-Type": FORM})
        return response.status

    async def cycle(self) -> None:
        await self.watch.poll_once()
        while await self.watch.deliver_due():
            pass


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    policy = tmp_path / "policy.toml"
    policy.write_text('[roles.operator]\nactions = ["rerun"]\n[bindings]\n"slack:U0ANA" = ["operator"]\n'
                      '"slack:U0VIEW" = []\n')
    async with FakeSlackApi() as slack, run_simulator(jobs=200, seed=9, failure_rate=0.0, speed=0.0) as (sim, url):
        settings = load_settings({
            "TWS_URL": url, "TWS_USER": "resync", "TWS_PASSWORD": "resync", "TWS_RETRIES": "0",
            "RESYNC_DATA_DIR": str(tmp_path), "RESYNC_POLICY": str(policy), "RESYNC_ALERT_CHANNELS": "slack:C0ALERTS",
            "SLACK_BOT_TOKEN": "xoxb-0000-alert-test", "SLACK_SIGNING_SECRET": SECRET, "SLACK_API_URL": slack.url})
        app = await create_app(settings, poll=False)
        async with TestClient(TestServer(app, host="127.0.0.1", port=0)) as client:
            yield Rig(sim=sim, slack=slack, client=client, watch=app[COMPONENTS].watch)


def _buttons(call: Any) -> dict[str, str]:
    return {e["action_id"].split("#")[0]: e["value"] for b in call.params.get("blocks", []) if b["type"] == "actions"
            for e in b["elements"]}


async def test_rerun_from_the_alert_is_confirmed_then_followed_to_recovery(rig: Rig) -> None:
    job = next(j for j in rig.sim.jobs_in_state("SUCC"))
    await rig.cycle()  # the plan is known: what fails from now on is alerted one by one
    rig.sim.force_fail(job["id"], 12)
    await rig.cycle()
    full = f"{workstation_label(job['workstation'])}#{job['jobStreamName']}.{job['name']}"
    [root] = [c for c in rig.slack.calls("chat.postMessage") if c.params["channel"] == "C0ALERTS" and full in c.params["text"]]
    root_ts = root.answer["ts"]
    assert job["name"] in json.dumps(root.params["blocks"]) and "ABEND" in root.params["text"]

    # A viewer's press is refused; the operator's press gives a confirmation, not a rerun.
    assert await rig.press(block_actions(ACTION_ALERT_RERUN, _buttons(root)[ACTION_ALERT_RERUN], message_ts=root_ts,
                                         channel="C0ALERTS", user="U0VIEW")) == 200
    await rig.slack.wait_for("chat.postEphemeral", 1, timeout=10)
    posted = len(rig.slack.calls("chat.postMessage"))
    assert await rig.press(block_actions(ACTION_ALERT_RERUN, _buttons(root)[ACTION_ALERT_RERUN], message_ts=root_ts,
                                         channel="C0ALERTS")) == 200
    proposals = await rig.slack.wait_for("chat.postMessage", posted + 1, timeout=10)
    proposal = proposals[-1]
    assert proposal.params["thread_ts"] == root_ts and ACTION_CONFIRM in _buttons(proposal)
    assert next(j for j in rig.sim.jobs_in_state() if j["id"] == job["id"])["rerunCount"] == 0

    assert await rig.press(block_actions(ACTION_CONFIRM, _buttons(proposal)[ACTION_CONFIRM], channel="C0ALERTS",
                                         message_ts=proposal.answer["ts"], thread_ts=root_ts)) == 200
    await rig.slack.wait_for("chat.update", 1, timeout=10)
    assert next(j for j in rig.sim.jobs_in_state() if j["id"] == job["id"])["rerunCount"] == 1

    rig.sim.advance(3600)  # the rerun runs and (failure rate 0) succeeds
    await rig.cycle()
    thread = [c for c in rig.slack.calls("chat.postMessage") if c.params.get("thread_ts") == root_ts]
    assert any("SUCC" in c.params["text"] or "recover" in c.params["text"].lower() for c in thread), \
        [c.params["text"] for c in thread]
    assert any("rerun" in c.params["text"].lower() for c in thread)
    root_updates = [c for c in rig.slack.calls("chat.update") if c.params["ts"] == root_ts]
    assert root_updates and "SUCC" in json.dumps(root_updates[-1].params)
    roots = [c for c in rig.slack.calls("chat.postMessage")
             if c.params["channel"] == "C0ALERTS" and "thread_ts" not in c.params and full in c.params["text"]]
    assert len(roots) == 1  # one root per failure, however the story went
