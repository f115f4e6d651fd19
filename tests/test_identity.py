"""Issue 10, item 3: a user is its platform-qualified identity, so a confirmation never crosses platforms.

The failure: the requester check compared bare ids, so an ``/api/chat`` caller sending
``"user": "U0OPS"`` confirmed Slack user U0OPS's rerun. Here the whole app runs (signed Slack
requests through slack-bolt, the loopback Slack Web API, the TWS simulator, the HTTP chat API), and
the same bare id arrives from Slack, the HTTP API and the console.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from bot import audit
from bot.config import load_settings
from bot.events import ACTION_CONFIRM, Event
from bot.simulator import run_simulator
from bot.web import COMPONENTS, create_app
from bot.tws.names import workstation_label
from tests.fakes.slack_api import BOT_USER_ID, FakeSlackApi, block_actions, event_callback, mention, sign

SECRET = "8f14e45fceea167a5a36dedd4bea2543"
API_TOKEN = "identity-test-token-1"


def _find_confirm(node: Any) -> str | None:
    if isinstance(node, dict):
        if node.get("action_id") == ACTION_CONFIRM:
            return node["value"]
        node = list(node.values())
    if isinstance(node, list):
        return next((v for v in map(_find_confirm, node) if v), None)
    if isinstance(node, str) and node.startswith("["):
        return _find_confirm(json.loads(node))
    return None


@pytest.fixture
async def app_world(tmp_path: Path) -> AsyncIterator[tuple[Any, TestClient, FakeSlackApi]]:
    policy = tmp_path / "policy.toml"
    policy.write_text('[roles.operator]\nactions = ["rerun"]\n[bindings]\n"slack:U0OPS" = ["operator"]\n'
                      '"u0bob@example.com" = ["operator"]\n')
    async with FakeSlackApi() as slack, run_simulator(jobs=300, seed=5, failure_rate=0.2, speed=1.0) as (sim, url):
        settings = load_settings({"TWS_URL": url, "TWS_USER": "resync", "TWS_PASSWORD": "resync",
                                  "RESYNC_DATA_DIR": str(tmp_path), "RESYNC_API_TOKEN": API_TOKEN,
                                  "RESYNC_POLICY": str(policy), "RESYNC_ALERTS": "false",
                                  "SLACK_BOT_TOKEN": "xoxb-1111-2222-identitytest", "SLACK_SIGNING_SECRET": SECRET,
                                  "SLACK_API_URL": slack.url})
        app = await create_app(settings, poll=False)
        async with TestClient(TestServer(app)) as client:
            yield sim, client, slack


async def _slack_post(client: TestClient, body: bytes, content_type: str) -> None:
    response = await client.post("/slack/events", data=body,
                                 headers={**sign(body, SECRET), "Content-Type": content_type})
    assert response.status == 200


async def test_a_bare_user_id_never_confirms_another_platforms_request(app_world) -> None:  # type: ignore[no-untyped-def]
    sim, client, slack = app_world
    job = sim.jobs_in_state("ABEND")[0]
    name = f"{workstation_label(job['workstation'])}#{job['jobStreamName']}.{job['name']}"
    await _slack_post(client, json.dumps(event_callback(mention(f"<@{BOT_USER_ID}> rerun {name}", user="U0OPS",
                                                                ts="1700000000.000100"))).encode(), "application/json")
    [posted] = await slack.wait_for("chat.postMessage")
    token = _find_confirm(posted.params)
    assert token, posted.params

    # The HTTP API, same bare id: refused, nothing sent to TWS.
    answer = await client.post("/api/chat", headers={"Authorization": f"Bearer {API_TOKEN}"},
                               json={"user": "U0OPS", "action_id": ACTION_CONFIRM, "action_value": token})
    [reply] = (await answer.json())["replies"]
    assert "Only the requester" in reply["text"] and not reply["buttons"]
    # The console, same bare id: refused too.
    agent = client.server.app[COMPONENTS].agent
    [console_reply] = await agent.handle(Event(platform="console", workspace="local", channel="console",
                                               user_id="U0OPS", kind="action", action_id=ACTION_CONFIRM,
                                               action_value=token))
    assert "Only the requester" in console_reply.text
    assert sim.stats["kinds"].get("job_action", {}).get("requests", 0) == 0

    # The Slack requester confirms: the rerun runs, once.
    await _slack_post(client, block_actions(ACTION_CONFIRM, token, message_ts=posted.answer["ts"], user="U0OPS"),
                      "application/x-www-form-urlencoded")
    await slack.wait_for("chat.update")
    assert sim.stats["kinds"]["job_action"]["requests"] == 1
    records = await audit.tail(client.server.app[COMPONENTS].store, 20)
    denied = [r["actor"] for r in records if r["action"] == "deny"]
    assert denied == ["http:U0OPS (U0OPS)", "console:U0OPS"]
    assert [r["actor"].split()[0] for r in records if r["action"] == "outcome"] == ["slack:U0OPS"]


async def test_a_policy_entry_by_email_matches_only_the_platforms_email(app_world) -> None:  # type: ignore[no-untyped-def]
    """Item 8 (core): ``ana.souza@example.com`` in the policy is the user whose platform says so
    (Slack's users.info here), never an HTTP caller who merely sends that string as ``user``."""
    sim, client, slack = app_world
    job = sim.jobs_in_state("ABEND")[1]
    name = f"{job['workstation'].strip('/')}#{job['jobStreamName']}.{job['name']}"
    await _slack_post(client, json.dumps(event_callback(mention(f"<@{BOT_USER_ID}> rerun {name}", user="U0BOB",
                                                                ts="1700000000.000200"))).encode(), "application/json")
    [posted] = await slack.wait_for("chat.postMessage")
    assert _find_confirm(posted.params), posted.params  # u0bob@example.com is an operator by e-mail
    answer = await client.post("/api/chat", headers={"Authorization": f"Bearer {API_TOKEN}"},
                               json={"user": "u0bob@example.com", "text": f"rerun {name}"})
    [reply] = (await answer.json())["replies"]
    assert not reply["buttons"] and "not allowed" in reply["text"]
