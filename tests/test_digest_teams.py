"""The daily digest in Teams: its text, then its chart shown as an image (an Adaptive Card Image
with a data URI), through the real botbuilder stack to the fake Bot Connector; the plan from the
simulator over HTTP."""

from __future__ import annotations

import base64

from adapters.teams_cards import card_of
from bot.alerts import FailureWatch
from bot.config import AlertSettings, DigestSettings, TwsSettings
from bot.simulator import run_simulator
from bot.tws.client import TwsClient
from tests.test_teams import Bot, _install, bot, connector, idp, trusted_idp  # noqa: F401 (fixtures)

CONVERSATION = "19:digest@thread.tacv2"


async def test_the_digest_shows_its_chart_as_an_image_in_teams(bot: Bot) -> None:  # noqa: F811
    assert await _install(bot, CONVERSATION, "channel")
    async with run_simulator(jobs=300, seed=5, failure_rate=0.0, speed=0.0) as (sim, url):
        tws = TwsClient(TwsSettings(urls=(url,), user="resync", password="resync", retries=0))
        alerts = AlertSettings(default_targets=("slack:C_ALERTS",), notify_pend=False, baseline="alert",
                               digests=(DigestSettings(targets=(f"teams:{CONVERSATION}",), at="08:00",
                                                       timezone="America/Sao_Paulo"),))
        watch = FailureWatch(alerts, tws=tws, store=bot.store, notifiers=[bot.adapter], owner="t",
                             single_instance=True)
        try:
            await watch.poll_once()
            for job in sim.jobs_in_state("SCHED")[:2]:
                sim.force_fail(job["id"], 8)
            await watch.poll_once()
            before = len(bot.connector.calls("send"))  # the alerts went to Slack (no adapter here: kept queued)
            assert await watch.send_digest(0) is True
            while await watch.deliver_due():  # through the outbox
                pass
        finally:
            await tws.close()
    sends = [c for c in (await bot.connector.wait_for("send", before + 2))[before:] if c.conversation == CONVERSATION]
    cards = [card_of(c.body) or {} for c in sends]
    [text] = [card for card in cards if "Daily alert digest" in str(card) and "data:image" not in str(card)]
    [picture] = [card for card in cards if any(item["type"] == "Image" for item in card.get("body", []))]
    assert cards.index(text) < cards.index(picture)  # the text first, then its chart
    images = [item for item in picture["body"] if item["type"] == "Image"]
    assert len(images) == 1 and images[0]["url"].startswith("data:image/png;base64,")
    png = base64.b64decode(images[0]["url"].split(",", 1)[1])
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 5000
    assert all(c.status == 201 and c.token_ok for c in sends)
