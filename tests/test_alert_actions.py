"""Acting from an alert, end to end over Slack: a PEND job confirmed from its alert, a long-running
job killed from its alert; both through the policy (actions ``confirm`` and ``kill``),
confirmation, idempotency and the audit log. The real web app, Slack adapter, agent, alerts and
simulator (virtual clock stopped, moved by the test).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from bot import audit
from bot.config import load_settings
from bot.events import ACTION_ALERT_CONFIRM_SUCC, ACTION_ALERT_KILL, ACTION_CONFIRM
from bot.simulator import run_simulator
from bot.web import COMPONENTS, create_app
from tests.fakes.slack_api import FakeSlackApi, block_actions, sign

SECRET = "0cc175b9c0f1b6a831c399e269772661"
FORM = "application/x-www-form-urlencoded"


@dataclass
class Rig:
    sim: Any
    slack: FakeSlackApi
    client: TestClient
    components: Any

    async def press(self, action_id: str, value: str, ts: str, user: str = "U0ANA", thread: str | None = None) -> None:
        body = block_actions(action_id, value, message_ts=ts, channel="C0ALERTS", user=user, thread_ts=thread)
        response = await self.client.post("/slack/events", data=body,
                                          headers={**sign(body, SECRET), "Content-Type": FORM})
        assert response.status == 200

    async def cycle(self) -> None:
        await self.components.watch.poll_once()
        while await self.components.watch.deliver_due():
            pass

    def job(self, job_id: str) -> dict[str, Any]:
        return next(j for j in self.sim.jobs_in_state() if j["id"] == job_id)


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    policy = tmp_path / "policy.toml"
    policy.write_text('[roles.operator]\nactions = ["confirm", "kill"]\n[bindings]\n"slack:U0ANA" = ["operator"]\n'
                      '"slack:U0VIEW" = []\n')
    async with FakeSlackApi() as slack, run_simulator(jobs=3000, seed=7, failure_rate=0.0, speed=0.0) as (sim, url):
        settings = load_settings({
            "TWS_URL": url, "TWS_USER": "resync", "TWS_PASSWORD": "resync", "TWS_RETRIES": "0",
            "RESYNC_DATA_DIR": str(tmp_path), "RESYNC_POLICY": str(policy), "RESYNC_ALERT_CHANNELS": "slack:C0ALERTS",
            "RESYNC_ALERT_LATE": "true", "RESYNC_ALERT_BASELINE": "alert",
            "SLACK_BOT_TOKEN": "xoxb-0000-alert-test", "SLACK_SIGNING_SECRET": SECRET, "SLACK_API_URL": slack.url})
        app = await create_app(settings, poll=False)
        async with TestClient(TestServer(app, host="127.0.0.1", port=0)) as client:
            yield Rig(sim=sim, slack=slack, client=client, components=app[COMPONENTS])


def _buttons(call: Any) -> dict[str, str]:
    return {e["action_id"].split("#")[0]: e["value"] for b in call.params.get("blocks", []) if b["type"] == "actions"
            for e in b["elements"]}


def _root(rig: Rig, name: str) -> Any:
    return next(c for c in rig.slack.calls("chat.postMessage")
                if "thread_ts" not in c.params and name in c.params["text"])


async def _confirm_from(rig: Rig, root: Any, action_id: str) -> None:
    """Press the alert's button, then Confirm on the proposal in its thread."""
    posted = len(rig.slack.calls("chat.postMessage"))
    await rig.press(action_id, _buttons(root)[action_id], root.answer["ts"])
    proposal = (await rig.slack.wait_for("chat.postMessage", posted + 1, timeout=10))[-1]
    assert proposal.params["thread_ts"] == root.answer["ts"] and ACTION_CONFIRM in _buttons(proposal)
    updates = len(rig.slack.calls("chat.update"))
    await rig.press(ACTION_CONFIRM, _buttons(proposal)[ACTION_CONFIRM], proposal.answer["ts"],
                    thread=root.answer["ts"])
    await rig.slack.wait_for("chat.update", updates + 1, timeout=10)
    await rig.press(ACTION_CONFIRM, _buttons(proposal)[ACTION_CONFIRM], proposal.answer["ts"],
                    thread=root.answer["ts"])  # pressed twice: runs once


async def test_a_pend_job_is_confirmed_from_its_alert(rig: Rig) -> None:
    [pending] = rig.sim.jobs_in_state("PEND")[:1]
    name = f"{pending['workstation'].strip('/')}#{pending['jobStreamName']}.{pending['name']}"
    await rig.cycle()
    root = _root(rig, name)
    assert {ACTION_ALERT_CONFIRM_SUCC, "resync_alert_confirm_abend"} <= set(_buttons(root))
    await _confirm_from(rig, root, ACTION_ALERT_CONFIRM_SUCC)
    assert rig.job(pending["id"])["internalStatus"] == "SUCC"
    await rig.cycle()
    thread = [c.params["text"] for c in rig.slack.calls("chat.postMessage")
              if c.params.get("thread_ts") == root.answer["ts"]]
    assert any("recovered" in text for text in thread), thread
    records = await audit.tail(rig.components.store, 10)
    outcomes = [r for r in records if r["action"] == "outcome" and r["tool"] == "confirm_succ_job"]
    assert len(outcomes) == 1 and outcomes[0]["result"] == "ok"
    metrics = await (await rig.client.get("/metrics")).text()
    assert 'resync_actions_total{action="confirm",outcome="ok"} 1.0' in metrics


async def test_a_long_running_job_is_killed_from_its_alert(rig: Rig) -> None:
    plan = rig.sim.plan
    now = rig.sim.now()
    long = min((j for j in plan.jobs if j.long and j.start > now and j.end - j.start > 600),
               key=lambda j: j.start)
    usual = (long.end - long.start) / 8
    rig.sim.advance(long.start - now + 4 * usual)  # four times its estimate: past RESYNC_ALERT_LONG_FACTOR (3)
    await rig.cycle()
    root = _root(rig, long.label)
    assert root.params["text"].startswith("🐢") and ACTION_ALERT_KILL in _buttons(root)
    assert "more than 3× its estimated" in json.dumps(root.params["blocks"], ensure_ascii=False)
    job_id = plan.job_id(long)
    await rig.press(ACTION_ALERT_KILL, job_id, root.answer["ts"], user="U0VIEW")  # no role: refused
    await _confirm_from(rig, root, ACTION_ALERT_KILL)
    assert rig.job(job_id)["internalStatus"] == "ABEND"
    records = await audit.tail(rig.components.store, 20)
    assert [r["result"] for r in records if r["action"] == "outcome" and r["tool"] == "kill_job"] == ["ok"]
    metrics = await (await rig.client.get("/metrics")).text()
    assert 'resync_denials_total{action="kill"} 1.0' in metrics
