"""Issue 10, item 1: a confirmed action's outcome is never misreported or repeated, whatever the store does.

The failure: Redis killed between the TWS call and the recording of its outcome made the bot say
"Nothing was changed; try again", lose the outcome from the audit log, and rerun the job on retry.

Here the whole app runs with Redis behind ``RedisTap``, which kills the redis-server just before
the n-th command of the Confirm path, for every n until the path completes: at each step the test
checks the TWS action requests (simulator statistics), the user's message, a retry during the
outage, and, once Redis is back (AOF, like a production Redis with persistence), the audit log.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from bot import audit
from bot.actions import JobActions
from bot.config import StoreSettings, load_settings
from bot.errors import StoreError
from bot.events import ACTION_CONFIRM
from bot.journal import ActionJournal
from bot.simulator import run_simulator
from bot.store import open_store
from bot.tws.names import workstation_label
from bot.web import COMPONENTS, create_app
from tests.fakes.redis_tap import RedisTap
from tests.redis_server import RedisServer

pytestmark = pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs the redis-server binary")
TOKEN = "fault-test-token-1"
ACCEPTED, NOTHING_CHANGED, HANDLED = "TWS accepted", "Nothing was changed", "already handled"


@dataclass
class Rig:
    sim: Any
    client: TestClient
    server: RedisServer
    tap: RedisTap
    jobs: list[dict[str, Any]]

    @property
    def components(self):  # type: ignore[no-untyped-def]
        return self.client.server.app[COMPONENTS]

    def actions(self) -> int:
        return self.sim.stats["kinds"].get("job_action", {}).get("requests", 0)

    async def chat(self, **body: str) -> dict[str, Any]:
        response = await self.client.post("/api/chat", json={"user": "ana", "conversation": "c", **body},
                                          headers={"Authorization": f"Bearer {TOKEN}"})
        assert response.status == 200, await response.text()
        [reply] = (await response.json())["replies"]
        return reply

    async def propose(self) -> tuple[str, str]:
        job = self.jobs.pop()
        name = f"{workstation_label(job['workstation'])}#{job['jobStreamName']}.{job['name']}"  # as the bot prints it
        reply = await self.chat(text=f"rerun {name}")
        [token] = [b["value"] for b in reply["buttons"] if b["action_id"] == ACTION_CONFIRM]
        return name, token

    async def confirm(self, token: str) -> str:
        return (await self.chat(action_id=ACTION_CONFIRM, action_value=token))["text"]

    async def audit_of(self, name: str) -> list[dict[str, Any]]:
        records = await self.components.store.read_log("audit")
        assert audit.verify(records) == []
        return [r for r in records if r["target"] == name]


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    server = RedisServer(tmp_path / "redis", persistent=True)
    server.directory.mkdir()
    server.start()
    policy = tmp_path / "policy.toml"
    policy.write_text('[roles.operator]\nactions = ["rerun"]\n[bindings]\n"http:ana" = ["operator"]\n')
    try:
        async with RedisTap(server.port) as tap, run_simulator(jobs=800, seed=5, failure_rate=0.25,
                                                                speed=1.0) as (sim, url):
            settings = load_settings({"TWS_URL": url, "TWS_USER": "resync", "TWS_PASSWORD": "resync",
                                      "REDIS_URL": tap.url, "REDIS_TIMEOUT": "2", "RESYNC_DATA_DIR": str(tmp_path),
                                      "RESYNC_API_TOKEN": TOKEN, "RESYNC_POLICY": str(policy),
                                      "RESYNC_ALERTS": "false"})
            app = await create_app(settings, poll=False)
            async with TestClient(TestServer(app)) as client:
                yield Rig(sim=sim, client=client, server=server, tap=tap, jobs=sim.jobs_in_state("ABEND", "FAIL", "SUCC"))
    finally:
        server.kill()


async def test_store_killed_at_every_step_of_a_confirmed_action(rig: Rig) -> None:
    steps: list[tuple[int, str, int, str]] = []
    for n in range(1, 60):
        name, token = await rig.propose()
        rig.sim.reset_stats()
        rig.tap.kill_at(n, rig.server.kill)
        first = await rig.confirm(token)
        rig.tap.disarm()
        asked = rig.actions()
        if rig.tap.fired is None:  # the path finished before the n-th command: every step was covered
            assert asked == 1 and ACCEPTED in first
            assert [r["action"] for r in await rig.audit_of(name)] == ["request", "confirm", "outcome"]
            break
        assert asked <= 1, f"step {n} ({rig.tap.fired}): TWS was asked {asked} times"
        # What the user hears is what happened.
        assert (ACCEPTED in first) if asked else (NOTHING_CHANGED in first), (n, rig.tap.fired, first)
        assert ("kept on this server" in first) == bool(asked)  # and that the record is still to be written
        during = await rig.confirm(token)  # pressed again while the store is still down
        assert rig.actions() == asked
        assert (HANDLED in during) if asked else (NOTHING_CHANGED in during), (n, during)
        rig.server.start()  # the store is back, with its data (once it has loaded its AOF)
        await _store_back(rig, token, outcome=bool(asked))
        after = await rig.confirm(token)
        assert rig.actions() == 1, f"step {n}: a retry after the outage must run it exactly once overall"
        assert (HANDLED in after) if asked else (ACCEPTED in after), (n, after)
        records = await rig.audit_of(name)
        outcomes = [r["result"] for r in records if r["action"] == "outcome"]
        assert outcomes == ["ok"], (n, rig.tap.fired, records)
        assert [r["action"] for r in records if r["action"] in ("confirm", "outcome")] == ["confirm", "outcome"]
        assert await rig.components.store.get(f"done:{token}") is not None
        steps.append((n, rig.tap.fired, asked, first.split(".")[0]))
    else:
        pytest.fail("the Confirm path never completed")
    assert len(steps) >= 5  # GET confirm, SET claim, the two audit appends, done, delete at least
    print("\nstore killed before command | TWS action requests | first message")
    for n, command, asked, message in steps:
        print(f"  {n:>2} {command:<40} {asked}  {message}")


async def _store_back(rig: Rig, token: str, *, outcome: bool) -> None:
    """Replay until the store holds the outcome (or, when TWS was never asked, the pending request
    again): a restarted Redis answers LOADING until it has read its AOF."""
    journal, store = rig.components.agent.actions.journal, rig.components.store
    for _ in range(150):
        await journal.replay(store)
        try:
            key = f"done:{token}" if outcome else f"confirm:{token}"
            if not journal.needs_replay() and await store.get(key) is not None:
                return
        except StoreError:
            pass
        await asyncio.sleep(0.1)
    pytest.fail("the store did not take the journal within 15 s of coming back")


async def test_store_killed_while_tws_is_being_asked(rig: Rig) -> None:
    """The issue's exact scenario: 3 s TWS latency, Redis killed 1.5 s after Confirm."""
    name, token = await rig.propose()
    rig.sim.reset_stats()
    rig.sim.set_faults(latency_ms=3000)
    pressed = asyncio.create_task(rig.confirm(token))
    await asyncio.sleep(1.5)
    rig.server.kill()
    first = await pressed
    rig.sim.clear_faults()
    assert rig.actions() == 1 and ACCEPTED in first and "kept on this server" in first
    assert HANDLED in await rig.confirm(token) and rig.actions() == 1
    rig.server.start()
    # No one calls replay here: the app's own loop (every 5 s) carries the outcome into the store.
    for _ in range(150):
        try:
            if await rig.components.store.get(f"done:{token}") is not None:
                break
        except StoreError:
            pass
        await asyncio.sleep(0.1)
    else:
        pytest.fail("the journal was not replayed within 15 s of the store coming back")
    assert HANDLED in await rig.confirm(token) and rig.actions() == 1
    assert [r["result"] for r in await rig.audit_of(name) if r["action"] == "outcome"] == ["ok"]


async def test_a_process_killed_while_tws_was_asked_is_closed_as_unknown(tmp_path: Path, redis_url: str,
                                                                         redis_namespace: str) -> None:
    """kill -9 between the request to TWS and its answer: after restart the outcome is "unknown", never "ok"."""
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    owner = f"{socket.gethostname()}:{int(dead.stdout)}"
    path = tmp_path / "journal.db"
    crashed = ActionJournal.open(path, owner=owner)
    crashed.claim("c1", lang="en", job="WS#S.J", tool="rerun_job",
                  audit_base={"actor": "http:ana", "where": "http:api:c", "why": None})
    crashed.asking("c1")
    crashed.close()  # the process is gone: no answer was ever written

    restarted = ActionJournal.open(path)
    async with open_store(StoreSettings(redis_url=redis_url), namespace=redis_namespace) as store:
        assert await restarted.replay(store) == 2  # the outcome record and the done marker
        [record] = await store.read_log("audit")
        assert record["action"] == "outcome" and record["result"].startswith("unknown")
        assert (await store.get("done:c1"))["outcome"].startswith("unknown")
        reply = JobActions(tws=None, store=store, journal=restarted).known("c1")  # type: ignore[arg-type]
        assert reply is not None and "do not know whether it ran" in reply.text
    assert os.path.exists(path)
