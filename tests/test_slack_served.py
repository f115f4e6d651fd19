"""Slack through the whole application: e-mail identities from users.info, and a store outage.

The real web app, agent core, TWS simulator and Slack adapter; signed requests in, the fake Slack
API out. The outage test starts a private redis-server and kills it mid-test (the shared one must
stay up for everyone else), then starts it again on the same port.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from structlog.testing import capture_logs

from bot.config import load_settings
from bot.simulator import run_simulator
from bot.web import create_app
from tests.fakes.slack_api import BOT_USER_ID, FakeSlackApi, event_callback, mention, sign

SECRET = "served-signing-secret-0123456789"
TOKEN = "xoxb-served-0000-token"


class Redis:
    """A private redis-server that can be killed and started again on the same port."""

    def __init__(self, tmp: Path) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.tmp = tmp
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                                         "--appendonly", "no", "--dir", str(self.tmp)], stdout=subprocess.DEVNULL)
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.1).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[Redis]:
    if shutil.which("redis-server") is None:
        pytest.skip("needs the redis-server binary")
    server = Redis(tmp_path)
    server.start()
    yield server
    server.kill()


class Served:
    def __init__(self, client: TestClient, slack: FakeSlackApi, sim: Any) -> None:
        self.client, self.slack, self.sim = client, slack, sim

    async def mention(self, text: str, *, user: str = "U0ANA", channel: str = "C0OPS",
                      event_id: str | None = None) -> dict[str, Any]:
        body = event_callback(mention(f"<@{BOT_USER_ID}> {text}", user=user, channel=channel), event_id=event_id)
        raw = json.dumps(body).encode()
        response = await self.client.post("/slack/events", data=raw,
                                          headers={**sign(raw, SECRET), "Content-Type": "application/json"})
        assert response.status == 200
        return body

    def job(self) -> str:
        names = [j["name"] for j in self.sim.jobs_in_state()]
        job = next(j for j in self.sim.jobs_in_state("ABEND") if names.count(j["name"]) == 1)
        return job["name"]

    def reruns(self, name: str) -> int:
        return next(j["rerunCount"] for j in self.sim.jobs_in_state() if j["name"] == name)


@asynccontextmanager
async def _served(tmp_path: Path, policy: str, **env: str) -> AsyncIterator[Served]:
    (tmp_path / "policy.toml").write_text(policy)
    async with FakeSlackApi() as slack, run_simulator(jobs=300, seed=5, failure_rate=0.2, speed=1.0) as (sim, url):
        settings = load_settings({
            "TWS_URL": url, "TWS_USER": "resync", "TWS_PASSWORD": "resync", "TWS_TIMEOUT": "5", "TWS_RETRIES": "0",
            "RESYNC_DATA_DIR": str(tmp_path), "RESYNC_POLICY": str(tmp_path / "policy.toml"),
            "RESYNC_ALERTS": "false", "SLACK_BOT_TOKEN": TOKEN, "SLACK_SIGNING_SECRET": SECRET,
            "SLACK_API_URL": slack.url, **env})
        app = await create_app(settings, poll=False)
        async with TestClient(TestServer(app, host="127.0.0.1", port=0)) as client:
            yield Served(client, slack, sim)


def _in(calls: list[Any], channel: str) -> list[Any]:
    return [c for c in calls if c.params.get("channel") == channel]


# --- e-mail identities ----------------------------------------------------------------------------


async def test_a_policy_entry_by_email_matches_the_slack_user(tmp_path: Path) -> None:
    policy = '[roles.operator]\nactions = ["rerun"]\n[bindings]\n"ana@example.com" = ["operator"]\n'
    async with _served(tmp_path, policy) as served:
        served.slack.emails["U0ANA"] = "Ana@Example.com"  # Slack keeps the case people typed
        name = served.job()
        await served.mention(f"rerun {name}", channel="C0ANA")
        [proposal] = await served.slack.wait_for("chat.postMessage", timeout=10)
        buttons = [e["action_id"] for b in proposal.params["blocks"] if b["type"] == "actions" for e in b["elements"]]
        assert "resync_confirm" in buttons  # granted by the e-mail entry alone

        await served.mention(f"status {name}", user="U0BOB", channel="C0BOB")  # bob@example.com: no entry
        [denied] = await served.slack.wait_for("chat.postEphemeral", timeout=10)
        assert denied.params["user"] == "U0BOB" and "not allowed to use Resync" in denied.params["text"]

        await served.mention(f"status {name}", channel="C0ANA2")
        await served.slack.wait_for("chat.postMessage", 2, timeout=10)
        asked = [c.params["user"] for c in served.slack.calls("users.info")]
        assert sorted(asked) == ["U0ANA", "U0BOB"], "one users.info per user, then the cache"


async def test_without_the_email_scope_the_user_is_known_by_id_only(tmp_path: Path) -> None:
    policy = '[roles.operator]\nactions = ["rerun"]\n[bindings]\n"ana@example.com" = ["operator"]\n'
    async with _served(tmp_path, policy) as served:
        served.slack.email_scope = False
        with capture_logs() as logs:
            await served.mention(f"status {served.job()}")
            [denied] = await served.slack.wait_for("chat.postEphemeral", timeout=10)
        assert "not allowed to use Resync" in denied.params["text"]
        [unknown] = [e for e in logs if e["event"] == "slack_email_unknown"]
        assert "users:read.email" in unknown["reason"] and unknown["user"] == "U0ANA"


# --- the store goes away and comes back -------------------------------------------------------------


async def test_slack_answers_reads_during_a_store_outage_and_recovers(tmp_path: Path, redis_server: Redis) -> None:
    policy = '[roles.operator]\nactions = ["rerun"]\n[bindings]\n"slack:U0ANA" = ["operator"]\n'
    async with _served(tmp_path, policy, REDIS_URL=redis_server.url, REDIS_TIMEOUT="1") as served:
        name = served.job()
        redis_server.kill()
        with capture_logs() as logs:
            body = await served.mention(f"status {name}", channel="C0READ", event_id="Ev0OUTAGE1")
            [answer] = await served.slack.wait_for("chat.postMessage", timeout=15)
            assert answer.params["channel"] == "C0READ" and "ABEND" in json.dumps(answer.params["blocks"])
            raw = json.dumps(body).encode()  # Slack's retry of the same delivery
            await served.client.post("/slack/events", data=raw, headers={
                **sign(raw, SECRET), "Content-Type": "application/json", "X-Slack-Retry-Num": "1"})
            await served.mention(f"rerun {name}", channel="C0ACT")
            [refused] = await served.slack.wait_for("chat.postEphemeral", timeout=15)
            await asyncio.sleep(0.5)
        assert len(_in(served.slack.calls("chat.postMessage"), "C0READ")) == 1, "the retry was deduplicated in memory"
        assert "cannot take actions safely" in refused.params["text"] and served.reruns(name) == 0
        assert any(e["event"] == "dedup_in_memory" for e in logs)

        redis_server.start()  # back, same address: no restart of the bot
        with capture_logs() as logs:
            await served.mention(f"rerun {name}", channel="C0BACK")
            await served.slack.wait_for("chat.postMessage", 2, timeout=15)
        [proposal] = _in(served.slack.calls("chat.postMessage"), "C0BACK")
        assert "resync_confirm" in json.dumps(proposal.params["blocks"])
        assert any(e["event"] == "dedup_store_back" for e in logs)
