"""The daily digest: counted from the failure records, posted once a day per route with its chart
uploaded through Slack's files upload v2 (the fake Slack API speaks it as Slack documents it),
and printed by ``resync digest --png``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from adapters.slack import SlackAdapter
from bot.alerts import FailureWatch
from bot.alerts import digest as digests
from bot.config import AlertSettings, DigestSettings, SlackSettings, TwsSettings
from bot.events import Event, Reply
from bot.simulator import run_simulator
from bot.tws.client import TwsClient
from tests.fakes.slack_api import FakeSlackApi

ROOT = Path(__file__).resolve().parent.parent


def test_the_day_is_counted_from_the_records() -> None:
    now = 1_800_000_000.0
    failure = {"name": "J", "stream": "PAYROLL", "workstation": "AGT01", "reruns": 0}
    records = [
        {"failure": failure, "job": {"reruns": 1}, "state": "recovered", "kind": "failed", "failures": 2,
         "opened_at": now - 7200, "closed_at": now - 3600},
        {"failure": {**failure, "stream": "BILLING"}, "job": {"reruns": 0}, "state": "open", "kind": "failed",
         "failures": 1, "opened_at": now - 600},
        {"failure": failure, "job": {"reruns": 0}, "state": "open", "kind": "failed", "failures": 1,
         "opened_at": now - 3 * 86400},  # another day: not counted
    ]
    day = digests.summarize(records, now=now, timezone="America/Sao_Paulo")
    assert (day.failures, day.reruns, day.recoveries, day.still_failing) == (3, 1, 1, 1)
    assert day.recover_median == 3600 and day.top_streams == (("AGT01#PAYROLL", 2), ("AGT01#BILLING", 1))
    assert sum(day.failures_by_hour) == 3 and sum(day.recoveries_by_hour) == 1
    text = digests.as_text(day, lang="pt")
    assert "Resumo diário" in text and "1 h 00 min" in text
    png = digests.chart_png(day)
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 5000


async def test_the_digest_goes_to_slack_once_with_its_chart(sqlite_store) -> None:
    async with FakeSlackApi() as api, run_simulator(jobs=300, seed=5, failure_rate=0.0, speed=0.0) as (sim, url):
        async def handle(event: Event) -> list[Reply]:
            return []

        slack = SlackAdapter(SlackSettings(bot_token="xoxb-digest", signing_secret="s" * 32, api_url=api.url),
                             handle=handle, store=sqlite_store)
        tws = TwsClient(TwsSettings(urls=(url,), user="resync", password="resync", retries=0))
        alerts = AlertSettings(default_targets=("slack:C_ALERTS",), notify_pend=False,
                               digests=(DigestSettings(targets=("slack:C_DIGEST",), at="08:00",
                                                       timezone="America/Sao_Paulo"),))
        watch = FailureWatch(alerts, tws=tws, store=sqlite_store, notifiers=[slack], owner="t", single_instance=True)
        try:
            await watch.poll_once()
            jobs = sim.jobs_in_state("SCHED")[:3]
            for job in jobs:
                sim.force_fail(job["id"], 8)
            await watch.poll_once()
            await tws.rerun(jobs[0]["id"])
            sim.advance(7200)
            await watch.poll_once()
            assert await watch.send_digest(0) is True
            assert await watch.send_digest(0) is False  # once a day, across restarts and replicas
            while await watch.deliver_due():  # the digest goes through the outbox (retried like any alert)
                pass
        finally:
            await slack.close()
            await tws.close()
        [post] = [c.params for c in api.calls("chat.postMessage") if c.params.get("channel") == "C_DIGEST"]
        assert "Daily alert digest" in post["text"]
        [upload] = api.uploads
        assert upload["channel"] == "C_DIGEST" and upload["data"].startswith(b"\x89PNG")
        assert upload["filename"].startswith("resync-digest-") and "Daily alert digest" in upload["title"]
        assert [c.method for c in api.calls() if c.method.startswith("files.")] == [
            "files.getUploadURLExternal", "files.completeUploadExternal"]


def test_resync_digest_prints_the_day_and_writes_the_chart(tmp_path: Path) -> None:
    png = tmp_path / "digest.png"
    result = subprocess.run([sys.executable, "-m", "bot", "digest", "--png", str(png), "--timezone", "Europe/Lisbon"],
                            cwd=ROOT, env={**os.environ, "RESYNC_DATA_DIR": str(tmp_path)}, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "Daily alert digest" in result.stdout and "Failures / recoveries per hour" in result.stdout
    assert png.read_bytes().startswith(b"\x89PNG")
    bad = subprocess.run([sys.executable, "-m", "bot", "digest", "--timezone", "Mars/Olympus"], cwd=ROOT,
                         env={**os.environ, "RESYNC_DATA_DIR": str(tmp_path)}, capture_output=True, text=True,
                         timeout=60)
    assert bad.returncode == 2 and "unknown time zone" in bad.stderr and "Traceback" not in bad.stderr
