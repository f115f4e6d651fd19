"""The loopback fake Slack API (tests/fakes/slack_api.py) in its own process, for bench/slack.py.

    python bench/slack_fake.py --stats-port PORT     # prints "api <url>" and "responses <url>"

Serving thousands of replies in the measuring process would slow down the very loop that times
the acknowledgements; apart, both bots meet the same fake and the load generator stays light.
``GET /stats?method=chat.postMessage`` on the stats port answers ``{"count", "ok", "last_at"}``
(``last_at`` is ``time.monotonic()``, the same clock in every process on the machine);
``POST /reset`` forgets every call recorded so far.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.fakes.slack_api import FakeSlackApi  # noqa: E402


async def main(stats_port: int) -> None:
    async with FakeSlackApi() as slack:
        async def stats(request: web.Request) -> web.Response:
            calls = slack.calls(request.query.get("method"))
            ok = [c for c in calls if c.status == 200 and (c.answer is None or c.answer.get("ok", True))]
            return web.json_response({"count": len(calls), "ok": len(ok), "last_at": max((c.at for c in calls),
                                                                                       default=0.0)})

        async def reset(_request: web.Request) -> web.Response:
            slack._calls.clear()  # noqa: SLF001 - the fake is ours; the bench must not grow it forever
            return web.Response(text="ok")

        app = web.Application()
        app.router.add_get("/stats", stats)
        app.router.add_post("/reset", reset)
        runner = web.AppRunner(app, handle_signals=False)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", stats_port).start()
        print(f"api {slack.url}\nresponses {slack.response_url('bench')}", flush=True)
        await asyncio.Event().wait()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stats-port", type=int, required=True)
    try:
        asyncio.run(main(parser.parse_args().stats_port))
    except KeyboardInterrupt:
        pass
