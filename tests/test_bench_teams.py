"""The bare botbuilder app bench/teams.py compares Resync with: it does the job, and it pays for
outbound tokens the way the benchmark says botbuilder does (one per reply unless reused).

If botbuilder starts caching its credentials by default, ``test_sdk_default_fetches_a_token_per_reply``
fails: then bench/bare_botbuilder.py's docstring and docs/teams-performance.md need a new look.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from bench.bare_botbuilder import build
from bench.slack import job_names
from bot.simulator import run_simulator
from tests.fakes.bot_connector import FakeBotConnector, Member
from tests.fakes.teams_idp import FakeIdentityProvider

APP_ID = "6d1f3a52-8b7c-4e9d-a0b1-c2d3e4f5a6b7"
PASSWORD = "bench-test-password"
USER = Member(id="29:bench", name="Bench User", aad="aad-bench")


@pytest.fixture(scope="module")
def idp() -> Iterator[FakeIdentityProvider]:
    with FakeIdentityProvider(tls=True, clients={APP_ID: PASSWORD}) as fake:
        yield fake


@pytest.fixture
async def rig(idp: FakeIdentityProvider, monkeypatch: pytest.MonkeyPatch,
              request: pytest.FixtureRequest) -> AsyncIterator[tuple[TestClient, FakeBotConnector, list[str]]]:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(idp.cert_path))
    async with FakeBotConnector(idp) as connector, run_simulator(jobs=200, seed=9, speed=0.0) as (_sim, url):
        env = {**idp.settings(APP_ID, PASSWORD), "TWS_USER": "resync", "TWS_PASSWORD": "resync"}
        client = TestClient(TestServer(build(url, env, request.param), host="127.0.0.1", port=0))
        await client.start_server()
        try:
            yield client, connector, await job_names(url, 4)
        finally:
            await client.close()


async def _ask(client: TestClient, idp: FakeIdentityProvider, connector: FakeBotConnector, text: str,
               conversation: str) -> dict[str, Any]:
    body = connector.activity(text=text, conversation=conversation, user=USER)
    token = idp.channel_token(APP_ID, connector.url)
    response = await client.post("/api/messages", data=json.dumps(body),
                                 headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"})
    assert response.status == 200
    return (await connector.first_message(conversation, timeout=10)).body


@pytest.mark.parametrize("rig", ["none", "credentials", "clients"], indirect=True)
async def test_status_is_one_card_and_help_a_text(rig: Any, idp: FakeIdentityProvider) -> None:
    client, connector, names = rig
    card = await _ask(client, idp, connector, f"status {names[0]}", "a:status")
    assert names[0] in card["text"]
    content = card["attachments"][0]["content"]
    assert content["type"] == "AdaptiveCard" and content["body"][1]["type"] == "FactSet"
    helped = await _ask(client, idp, connector, "help", "a:help")
    assert "status JOB" in helped["text"] and not helped.get("attachments")
    await asyncio.sleep(0.1)
    assert len([c for c in connector.calls() if c.body.get("type") == "message"]) == 2  # one reply each


@pytest.mark.parametrize("rig", ["none"], indirect=True)
async def test_sdk_default_fetches_a_token_per_reply(rig: Any, idp: FakeIdentityProvider) -> None:
    client, connector, names = rig
    before = idp.tokens_issued
    for i, name in enumerate(names[:3]):
        await _ask(client, idp, connector, f"status {name}", f"a:default-{i}")
    assert idp.tokens_issued - before == 3


@pytest.mark.parametrize("rig", ["credentials", "clients"], indirect=True)
async def test_reused_credentials_fetch_one_token(rig: Any, idp: FakeIdentityProvider) -> None:
    client, connector, names = rig
    before = idp.tokens_issued
    for i, name in enumerate(names[:3]):
        await _ask(client, idp, connector, f"status {name}", f"a:reused-{i}")
    assert idp.tokens_issued - before == 1
