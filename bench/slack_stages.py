"""Where an answered Slack event's time goes, per stage, from cProfile files of ``bench/slack.py``.

    python bench/slack.py --reps 1 --only resync --profile /tmp/after.prof
    python bench/slack.py --reps 1 --only resync --profile /tmp/before.prof --root /path/to/old/checkout
    python bench/slack_stages.py /tmp/before.prof /tmp/after.prof

Each stage is the event loop thread's CPU time in its entry functions (``--profile`` times the
bot with ``time.thread_time``), divided by the events the bot answered during the run. cProfile
slows everything down about twofold, so read the figures as shares and as before/after
differences, not as absolute costs.
"""

from __future__ import annotations

import argparse
import pstats

# stage -> (file suffix, function) entries whose cumulative time is the stage's
STAGES: dict[str, tuple[tuple[str, str], ...]] = {
    "HTTP server (aiohttp)": (("aiohttp/web_protocol.py", "data_received"), ("aiohttp/web_protocol.py", "start")),
    "signature + body parse": (("adapters/slack_http.py", "accept"), ("adapters/slack.py", "_verified"),
                               ("adapters/slack.py", "_signed"), ("adapters/slack.py", "_parse"),
                               ("adapters/slack.py", "_bolt_request")),
    "bolt dispatch and ack": (("slack_bolt/app/async_app.py", "async_dispatch"),),
    "delivery claim (store)": (("bot/store/sqlite.py", "claim"), ("bot/store/redis.py", "claim")),
    "agent (understand, policy, tools)": (("bot/agent.py", "handle"),),
    "  of which TWS query": (("bot/tws/client.py", "resolve_job"),),
    "  of which store reads/writes": (("bot/store/sqlite.py", "get"), ("bot/store/sqlite.py", "put"),
                                     ("bot/store/redis.py", "get"), ("bot/store/redis.py", "put")),
    "Block Kit rendering": (("adapters/slack_blocks.py", "render"),),
    "reply post (slack_sdk)": (("adapters/slack.py", "_call"), ("adapters/slack.py", "_respond")),
    "metrics middleware (own time)": (("bot/web.py", "_observed"),),
    "thread hand-offs (executor submit)": (("concurrent/futures/thread.py", "submit"),),
    "everything (the event loop thread)": (("asyncio/base_events.py", "_run_once"),),
}
_OWN = {"metrics middleware (own time)"}


def stage_times(path: str) -> tuple[dict[str, float], int]:
    stats = pstats.Stats(path).stats  # type: ignore[attr-defined]
    events = _answered(stats)
    times: dict[str, float] = {}
    for stage, entries in STAGES.items():
        total = 0.0
        for (file, line, name), (_cc, _nc, tottime, cumtime, _callers) in stats.items():
            if any(file.endswith(f) and name == fn for f, fn in entries):
                total += tottime if stage in _OWN else cumtime
        times[stage] = total * 1000 / max(1, events)
    return times, events


def _answered(stats: dict) -> int:
    """Events answered: calls of ``understand``, which every text event passes once (a coroutine
    would count each resumption as a call)."""
    for (file, _line, name), (primitive, *_rest) in stats.items():
        if file.endswith(("bot/nlu.py", "bot/nlu/__init__.py")) and name == "understand":
            return primitive
    return 0


def main(paths: list[str]) -> None:
    columns = [stage_times(p) for p in paths]
    print(f"{'stage (ms per answered event, under cProfile)':48}" + "".join(f"{p.split('/')[-1]:>20}" for p in paths))
    for stage in STAGES:
        print(f"{stage:48}" + "".join(f"{c[0][stage]:20.3f}" for c in columns))
    print(f"{'events answered':48}" + "".join(f"{c[1]:20d}" for c in columns))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("profiles", nargs="+")
    main(parser.parse_args().profiles)
