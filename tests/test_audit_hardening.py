"""Issue 10, item 6: every broken audit record is named, and a log emptied by a Redis restart shows.

The failures: a record replaced by non-JSON was detected but not named; with Redis running without
persistence a restart silently emptied the audit log and ``resync audit verify`` still said "intact".
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from bot import audit
from bot.config import StoreSettings
from bot.store import Store, open_store
from tests.conftest import StoreBackend
from tests.redis_server import RedisServer
from tests.test_audit import _edit_in_place, _fill

ROOT = Path(__file__).resolve().parent.parent


async def test_every_unparseable_record_is_named(store: Store, store_backend: StoreBackend, redis_url: str) -> None:
    await _fill(store, 6)
    await _edit_in_place(store_backend, redis_url, 2, "not json at all")
    await _edit_in_place(store_backend, redis_url, 4, '["a list, not a record"]')
    records, problems = audit.verify_stored(await store.read_log_text("audit"))
    unparseable = [(p.seq, p.detail) for p in problems if p.kind == "unparseable"]
    assert [seq for seq, _ in unparseable] == [3, 5]
    assert "stored at position 3" in unparseable[0][1] and "not json at all" in unparseable[0][1]
    assert len(records) == 4
    assert not [p for p in problems if p.kind == "deleted"]  # named as unreadable, not as missing


def _resync(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bot", *args], cwd=ROOT, env={**os.environ, "LOG_LEVEL": "ERROR",
                                                                            **env},
                          capture_output=True, text=True, timeout=60)


async def test_audit_verify_names_the_record_and_reports_the_chain(tmp_path: Path) -> None:
    backend = StoreBackend(kind="sqlite", settings=StoreSettings(data_dir=tmp_path), namespace="")
    async with backend.open() as store:
        await _fill(store, 4)
    intact = _resync("audit", "verify", env={"RESYNC_DATA_DIR": str(tmp_path)})
    assert intact.returncode == 0 and "audit log intact: 4 record(s)" in intact.stdout
    assert "first record: #1 at " in intact.stdout and "last record: #4 at " in intact.stdout
    await _edit_in_place(backend, "", 1, "{oops")
    broken = _resync("audit", "verify", env={"RESYNC_DATA_DIR": str(tmp_path)})
    assert broken.returncode == 1
    assert "TAMPERED record #2: unparseable: record 2 (stored at position 2) is not a JSON record" in broken.stdout


@pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs the redis-server binary")
async def test_redis_without_persistence_is_said_loudly_and_an_emptied_log_shows(tmp_path: Path) -> None:
    server = RedisServer(tmp_path).start()  # no AOF, no RDB: what the issue ran
    try:
        with capture_logs() as logs:
            async with open_store(StoreSettings(redis_url=server.url)) as store:
                await _fill(store, 3)
        assert [e for e in logs if e["event"] == "redis_without_persistence" and e["log_level"] == "warning"]
        server.restart()  # the audit log is gone
        done = _resync("audit", "verify", env={"REDIS_URL": server.url})
        assert "WARNING: this Redis keeps no AOF or RDB snapshots" in done.stdout
        assert "the audit log is EMPTY" in done.stdout
    finally:
        server.kill()
    kept = RedisServer(tmp_path / "aof", persistent=True)
    kept.directory.mkdir()
    kept.start()
    try:
        with capture_logs() as logs:
            async with open_store(StoreSettings(redis_url=kept.url)):
                pass
        assert not [e for e in logs if e["event"].startswith("redis_") and "persist" in e["event"]]
    finally:
        kept.kill()
