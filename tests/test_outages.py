"""Redis going away at run time: reads keep working, actions refuse clearly, readiness says why.

A private redis-server is started for each test (the shared one must stay up for everyone else)
and killed mid-test: a real outage over a real connection.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from bot.config import load_settings
from bot.events import Event
from bot.simulator import run_simulator
from bot.web import COMPONENTS, create_app
from bot.tws.names import workstation_label

pytestmark = pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs the redis-server binary")
TOKEN = "outage-test-token-1"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    port = _free_port()
    server = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                               "--appendonly", "no", "--dir", str(tmp_path)], stdout=subprocess.DEVNULL)
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
            break
        except OSError:
            time.sleep(0.05)
    yield f"redis://127.0.0.1:{port}/0", server
    server.kill()
    server.wait()


@pytest.fixture
async def served(tmp_path: Path, private_redis) -> AsyncIterator[tuple[object, TestClient, subprocess.Popen[bytes]]]:  # type: ignore[no-untyped-def]
    url_redis, server = private_redis
    policy = tmp_path / "policy.toml"
    policy.write_text('[roles.operator]\nactions = ["rerun"]\n[bindings]\n"http:ana" = ["operator"]\n')
    async with run_simulator(jobs=300, seed=5, failure_rate=0.2, speed=1.0) as (sim, url):
        settings = load_settings({"TWS_URL": url, "TWS_USER": "resync", "TWS_PASSWORD": "resync", "REDIS_URL": url_redis,
                                  "RESYNC_API_TOKEN": TOKEN, "RESYNC_POLICY": str(policy), "RESYNC_ALERTS": "false"})
        app = await create_app(settings, poll=False)
        async with TestClient(TestServer(app)) as client:
            yield sim, client, server


async def _ask(client: TestClient, text: str) -> dict:
    response = await client.post("/api/chat", json={"user": "ana", "text": text},
                                 headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status == 200
    return (await response.json())["replies"][0]


async def test_redis_outage_keeps_reads_and_refuses_actions_clearly(served) -> None:  # type: ignore[no-untyped-def]
    sim, client, server = served
    assert (await client.get("/readyz")).status == 200
    server.kill()
    server.wait()
    failures = await _ask(client, "which jobs failed?")
    assert failures["code"] and "job(s)" in failures["text"]  # reads need only TWS
    job = sim.jobs_in_state("ABEND")[0]
    refused = await _ask(client, f"rerun {workstation_label(job['workstation'])}#{job['jobStreamName']}.{job['name']}")
    assert refused["level"] == "error" and "cannot take actions safely" in refused["text"] and not refused["buttons"]
    assert next(j for j in sim.jobs_in_state() if j["id"] == job["id"])["rerunCount"] == 0
    ready = await client.get("/readyz")
    assert ready.status == 503 and "store" in (await ready.json())["problems"]


async def test_agent_answers_reads_without_its_store(served) -> None:  # type: ignore[no-untyped-def]
    sim, client, server = served
    agent = client.server.app[COMPONENTS].agent
    server.kill()
    server.wait()
    job = sim.jobs_in_state("ABEND")[0]
    [reply] = await agent.handle(Event(platform="http", workspace="api", channel="c", user_id="ana",
                                       text=f"status {workstation_label(job['workstation'])}#{job['jobStreamName']}.{job['name']}"))
    assert "ABEND" in reply.text
