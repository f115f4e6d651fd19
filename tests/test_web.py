"""The web app over real HTTP: health, readiness, metrics, the JSON chat API with confirmation."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from bot.config import load_settings
from bot.simulator import run_simulator
from bot.web import create_app

TOKEN = "api-token-for-tests-123"


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[tuple[object, TestClient]]:
    policy = tmp_path / "policy.toml"
    policy.write_text('[roles.operator]\nactions = ["rerun"]\n[bindings]\n"http:ana" = ["operator"]\n"http:bob" = []\n')
    async with run_simulator(jobs=300, seed=5, failure_rate=0.2, speed=1.0) as (sim, url):
        settings = load_settings({"TWS_URL": url, "TWS_USER": "resync", "TWS_PASSWORD": "resync", "TWS_TIMEOUT": "2",
                                  "TWS_RETRIES": "0", "TWS_BREAKER_FAILURES": "2", "TWS_BREAKER_RESET": "60",
                                  "RESYNC_DATA_DIR": str(tmp_path), "RESYNC_API_TOKEN": TOKEN,
                                  "RESYNC_POLICY": str(policy), "RESYNC_ALERTS": "false"})
        app = await create_app(settings, poll=False)
        async with TestClient(TestServer(app)) as client:
            yield sim, client


async def test_health_ready_metrics(served) -> None:  # type: ignore[no-untyped-def]
    sim, client = served
    assert (await client.get("/healthz")).status == 200
    ready = await client.get("/readyz")
    assert ready.status == 200 and (await ready.json())["checks"]["breaker"] == "closed"
    sim.set_faults(outage=True)
    bodies = []
    for _ in range(3):  # TWS down: still ready (the bot can say so), the body tells
        still = await client.get("/readyz")
        assert still.status == 200
        bodies.append(await still.json())
    assert all(b["checks"]["tws"].startswith("down:") and not b["problems"] for b in bodies)
    assert bodies[-1]["checks"]["breaker"] == "open" and "breaker" not in bodies[-1]["problems"]
    metrics = await (await client.get("/metrics")).text()
    assert 'resync_http_requests_total{method="GET",route="/readyz",status="200"} 4.0' in metrics
    assert "resync_tws_request_seconds" in metrics and 'resync_tws_breaker_state{state="open"} 1.0' in metrics


async def test_chat_api_requires_the_bearer_token(served) -> None:  # type: ignore[no-untyped-def]
    _, client = served
    assert (await client.post("/api/chat", json={"user": "ana", "text": "help"})).status == 401
    bad = await client.post("/api/chat", json={"user": "ana", "text": "help"}, headers={"Authorization": "Bearer nope"})
    assert bad.status == 401
    auth = {"Authorization": f"Bearer {TOKEN}"}
    assert (await client.post("/api/chat", data=b"{not json", headers=auth)).status == 400
    assert (await client.post("/api/chat", json={"text": "help"}, headers=auth)).status == 400
    assert (await client.post("/api/chat", json=["x"], headers=auth)).status == 400


async def test_chat_api_rerun_with_confirm_token(served) -> None:  # type: ignore[no-untyped-def]
    sim, client = served
    auth = {"Authorization": f"Bearer {TOKEN}"}
    names = [j["name"] for j in sim.jobs_in_state("ABEND", "SUCC", "EXEC", "READY", "HOLD", "SCHED", "FAIL", "ERROR", "WAIT")]
    job = next(j for j in sim.jobs_in_state("ABEND") if names.count(j["name"]) == 1)
    proposal = await (await client.post("/api/chat", headers=auth, json={"user": "ana", "text": f"rerun {job['name']}"})).json()
    confirm = next(b for b in proposal["replies"][0]["buttons"] if b["action_id"] == "resync_confirm")
    stranger = await client.post("/api/chat", headers=auth, json={"user": "bob", "action_id": "resync_confirm",
                                                                  "action_value": confirm["value"]})
    assert "Only the requester" in (await stranger.json())["replies"][0]["text"]
    done = await (await client.post("/api/chat", headers=auth, json={"user": "ana", "action_id": "resync_confirm",
                                                                     "action_value": confirm["value"]})).json()
    assert done["replies"][0]["level"] == "success"
    again = await (await client.post("/api/chat", headers=auth, json={"user": "ana", "action_id": "resync_confirm",
                                                                      "action_value": confirm["value"]})).json()
    assert "already" in again["replies"][0]["text"]
    status = await (await client.post("/api/chat", headers=auth, json={"user": "ana", "text": f"status {job['name']}"})).json()
    assert any(f["label"] == "Reruns" and f["value"] == "1" for f in status["replies"][0]["fields"])
