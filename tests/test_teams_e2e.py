"""Teams end to end: the real web app (``create_app``), agent, alerts and TWS simulator behind the
botbuilder stack, configured only through the settings an operator sets.

A rerun proposed from a channel mention is confirmed through its card exactly once however often
the submission arrives, refused for someone else, and the card loses its buttons; a routed alert
lands in a stored Teams conversation, its lifecycle goes in the reply chain and the root card is
updated in place, also after a restart of the bot.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from adapters.teams_cards import card_of
from bot.config import load_settings
from bot.events import ACTION_ALERT_ACK, ACTION_ALERT_LOG, ACTION_ALERT_RERUN, ACTION_ALERT_SNOOZE_1H, ACTION_CONFIRM
from bot.simulator import run_simulator
from bot.web import COMPONENTS, create_app
from bot.tws.names import workstation_label
from tests.fakes.bot_connector import BOT_ID, TEAM, FakeBotConnector, Member
from tests.fakes.teams_idp import FakeIdentityProvider

APP_ID = "0b7c2d4e-5f60-4a1b-8c9d-e0f1a2b3c4d5"
PASSWORD = "resync-teams-e2e-secret-0002"
ALERTS = "19:alerts-channel@thread.tacv2"
ANA = Member(id="29:ana", name="Ana Souza", aad="aad-ana", email="ana@contoso.com")
BOB = Member(id="29:bob", name="Bob Lima", aad="aad-bob")


@dataclass
class Rig:
    sim: Any
    idp: FakeIdentityProvider
    connector: FakeBotConnector
    client: TestClient
    watch: Any

    async def send(self, activity: dict[str, Any]) -> int:
        token = self.idp.channel_token(APP_ID, activity["serviceUrl"])
        response = await self.client.post("/api/messages", data=json.dumps(activity), headers={
            "Content-Type": "application/json", "Authorization": f"Bearer {token}"})
        return response.status

    async def cycle(self) -> None:
        await self.watch.poll_once()
        while await self.watch.deliver_due():
            pass


@pytest.fixture(scope="module")
def idp() -> Iterator[FakeIdentityProvider]:
    with FakeIdentityProvider(tls=True, clients={APP_ID: PASSWORD}) as fake:
        yield fake


@pytest.fixture
async def parts(idp: FakeIdentityProvider, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Any]:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(idp.cert_path))
    policy = tmp_path / "policy.toml"
    policy.write_text('[roles.operator]\nactions = ["rerun"]\n[roles.viewer]\nactions = []\n[bindings]\n'
                      '"ana@contoso.com" = ["operator"]\n"teams:aad-bob" = ["viewer"]\n')
    async with FakeBotConnector(idp) as connector, \
            run_simulator(jobs=200, seed=9, failure_rate=0.0, speed=0.0) as (sim, url):
        connector.add_member(ANA)
        connector.add_member(BOB)
        env = {"TWS_URL": url, "TWS_USER": "resync", "TWS_PASSWORD": "resync", "TWS_RETRIES": "0",
               "RESYNC_DATA_DIR": str(tmp_path), "RESYNC_POLICY": str(policy), "RESYNC_ALERT_CHANNELS": f"teams:{ALERTS}",
               **idp.settings(APP_ID, PASSWORD)}
        yield sim, connector, env


async def _rig(parts: Any, idp: FakeIdentityProvider) -> tuple[Rig, Any]:
    sim, connector, env = parts
    app = await create_app(load_settings(env), poll=False)
    client = TestClient(TestServer(app, host="127.0.0.1", port=0))
    await client.start_server()
    return Rig(sim=sim, idp=idp, connector=connector, client=client, watch=app[COMPONENTS].watch), client


@pytest.fixture
async def rig(parts: Any, idp: FakeIdentityProvider) -> AsyncIterator[Rig]:
    rig, client = await _rig(parts, idp)
    yield rig
    await client.close()


def _actions(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    card = card_of(body) or {}
    return {a["data"]["action_id"]: a["data"] for item in card.get("body", []) if item["type"] == "ActionSet"
            for a in item["actions"]}


def _text(body: dict[str, Any]) -> str:
    return json.dumps(card_of(body) or body, ensure_ascii=False)


async def test_rerun_through_a_card_runs_once_and_only_for_the_requester(rig: Rig) -> None:
    job = rig.sim.jobs_in_state("SUCC")[0]
    full = f"{workstation_label(job['workstation'])}#{job['jobStreamName']}.{job['name']}"
    chain = f"{TEAM};messageid=1700000000000"
    assert await rig.send(rig.connector.mention(f"rerun {full}", activity_id="1700000000000", user=ANA)) == 200
    messages = await rig.connector.wait_for("send", 2, timeout=10)
    proposal = next(c for c in messages if c.body["type"] == "message")
    assert proposal.conversation == chain and ACTION_CONFIRM in _actions(proposal.body)
    card_id = next(i for i, m in rig.connector.messages.items() if m.get("summary") == proposal.body.get("summary"))
    confirm = _actions(proposal.body)[ACTION_CONFIRM]

    def submit(user: Member, activity_id: str) -> dict[str, Any]:
        return rig.connector.activity(text=None, value=confirm, conversation=chain, conversation_type="channel",
                                      team=TEAM, reply_to=card_id, user=user, activity_id=activity_id)

    before = len(rig.connector.calls("send"))
    assert await rig.send(submit(BOB, "f:bob-1")) == 200  # a viewer may not confirm someone else's rerun
    refused = (await rig.connector.wait_for("send", before + 2, timeout=10))[-1]
    assert "Only the requester" in _text(refused.body)
    assert next(j for j in rig.sim.jobs_in_state() if j["id"] == job["id"])["rerunCount"] == 0

    for activity_id in ("f:ana-1", "f:ana-1", "f:ana-2"):  # retried, and redelivered with a new id
        assert await rig.send(submit(ANA, activity_id)) == 200
    [update] = await rig.connector.wait_for("update", timeout=10)
    assert update.activity_id == card_id and not _actions(update.body)
    assert "Ana Souza" in _text(update.body)  # who did it, on the card itself
    await rig.client.get("/healthz")
    assert next(j for j in rig.sim.jobs_in_state() if j["id"] == job["id"])["rerunCount"] == 1
    assert len(rig.connector.calls("update")) == 1


async def test_a_routed_alert_is_threaded_and_updated_in_place_across_a_restart(
        parts: Any, idp: FakeIdentityProvider) -> None:
    sim, connector, _ = parts
    rig, client = await _rig(parts, idp)
    install = connector.activity("conversationUpdate", conversation=ALERTS, conversation_type="channel", team=TEAM,
                                 channel_name="Alerts", membersAdded=[{"id": BOT_ID, "name": "Resync"}])
    assert await rig.send(install) == 200
    job = sim.jobs_in_state("SUCC")[0]
    await rig.cycle()  # the plan is known: what fails from now on is alerted one by one
    sim.force_fail(job["id"], 12)
    await rig.cycle()
    [root] = [c for c in connector.calls("send") if c.conversation == ALERTS and job["name"] in _text(c.body)]
    root_id = next(i for i, m in connector.messages.items() if connector.thread_of[i] == i and
                   m.get("summary") == root.body.get("summary"))
    assert job["name"] in _text(root.body) and "ABEND" in _text(root.body)
    assert {ACTION_ALERT_RERUN, ACTION_ALERT_LOG, ACTION_ALERT_ACK, ACTION_ALERT_SNOOZE_1H} <= set(_actions(root.body))
    await client.close()  # a restart: the reference and the root's id come back from the store

    rig, client = await _rig(parts, idp)
    try:
        sim.plan.job_action(job["id"], "rerun", sim.now())  # an operator reran it in TWS itself
        sim.advance(3600)  # ... and (failure rate 0) it succeeds
        await rig.cycle()
        chain = f"{ALERTS};messageid={root_id}"
        thread = [c for c in connector.calls("send") if c.conversation == chain and c.body["type"] == "message"]
        assert thread and any("SUCC" in _text(c.body) for c in thread), [c.conversation for c in connector.calls("send")]
        updates = [c for c in connector.calls("update") if c.activity_id == root_id]
        assert updates and "SUCC" in _text(updates[-1].body)
        assert not {ACTION_ALERT_RERUN, ACTION_ALERT_ACK} & set(_actions(updates[-1].body))
        assert len([c for c in connector.calls("send")
                    if c.conversation == ALERTS and job["name"] in _text(c.body)]) == 1  # one root, ever
    finally:
        await client.close()
