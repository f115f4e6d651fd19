"""The flood guard counts per channel, not per route: a channel that two routes share fills up once,
whichever route sent the alerts there. Simulator over HTTP."""

from __future__ import annotations

from bot.config import AlertRoute
from tests.test_alerts_scale import Recorder, client_for, drain, serving, settings, streams_of, watch_for


async def test_a_channel_shared_by_two_routes_is_flood_guarded_once(sqlite_store) -> None:
    async with serving() as (simulator, url, _), client_for(url) as tws:
        jobs = streams_of(simulator, 4)
        alone_streams = [job["jobStreamName"] for job in jobs[:2]]
        routes = tuple(AlertRoute(stream=stream, targets=("slack:C1",)) for stream in alone_streams) + (
            AlertRoute(targets=("slack:C1", "slack:C2")),)
        chat = Recorder()
        watch = watch_for(settings(routes=routes, default_targets=(), channel_burst=3, burst_threshold=1000),
                          tws, sqlite_store, chat)
        await watch.poll_once()  # the plan is known
        for job in jobs:
            simulator.force_fail(job["id"], 8)
        report = await watch.poll_once()
        # C1 hears of 4 new failures through two routes: 3 alone, the 4th in a flood message
        assert (report.new, report.flooded) == (3, 1)
        await drain(watch)
        c1_roots = [reply for target, reply, thread in chat.posts if target == "slack:C1" and thread is None]
        assert len(c1_roots) == 4 and sum("more failures" in (r.title or r.text) for r in c1_roots) == 1
