"""The bare slack-bolt app that bench/slack.py measures Resync against: the same job, nothing more.

    python bench/bare_bolt.py --port PORT --tws URL --slack-api URL   # env: SLACK_*, TWS_USER/PASSWORD

A slack-bolt ``AsyncApp`` served by bolt's own aiohttp app on ``POST /slack/events`` (bolt's
signature check on), with the idiomatic ack-then-answer: each listener acknowledges, then does
the single TWS query a ``status`` needs (``GET /api/v2/plan/job?oql=name = 'X'``, Basic auth) and
posts one reply (``say``, or a POST to the command's ``response_url``). One pooled aiohttp session
serves all three (left alone, slack-sdk opens a new session, and connection, per call). ``help``
posts a static text. No deduplication, permission policy, pacing or catch-all: the floor Resync
is compared to.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import re
import sys
from typing import Any

import aiohttp
from aiohttp import web
from slack_bolt.app.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

HELP = ("*Resync* answers questions about TWS jobs:\n• `status JOB`\n• `log JOB`\n• `failures`\n"
        "• `rerun JOB` (asks for confirmation)")
_STATUS = re.compile(r"status\s+(\S+)", re.I)


def build(tws: str, slack_api: str, secret: str, token: str, user: str, password: str) -> web.Application:
    client = AsyncWebClient(token=token, base_url=slack_api, retry_handlers=[])
    # As Resync does: bolt answers the HTTP request when the listener returns, and the listener
    # only acks and starts the answer (bolt's default instead polls every 10 ms for the ack).
    app = AsyncApp(client=client, signing_secret=secret, name="bare", process_before_response=True)
    tasks: set[asyncio.Task[None]] = set()

    def later(work: Any) -> None:
        task = asyncio.ensure_future(work)
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    auth = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
    sessions: list[aiohttp.ClientSession] = []

    def session() -> aiohttp.ClientSession:
        if not sessions:
            sessions.append(aiohttp.ClientSession())
            client.session = sessions[0]
        return sessions[0]

    async def status(name: str) -> dict[str, Any]:
        async with session().get(f"{tws}/api/v2/plan/job", headers={"Authorization": auth, "Accept": "application/json"},
                                 params={"oql": f"name = '{name}'", "limit": "50", "offset": "0"}) as response:
            jobs = (await response.json())["results"]
        if not jobs:
            return {"text": f"I can't find a job called `{name}`."}
        job = jobs[0]
        full = f"{job['workstation']}#{job['jobStreamName']}.{job['name']}"
        fields = [{"type": "mrkdwn", "text": f"*{k}*\n{v}"} for k, v in (
            ("Status", job.get("status")), ("Return code", job.get("returnCode")), ("Job stream", job["jobStreamName"]))]
        return {"text": f"{full}: {job.get('status')}", "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": f"*{full}* is {job.get('status')}"}},
            {"type": "section", "fields": fields}]}

    async def answer(text: str) -> dict[str, Any]:
        found = _STATUS.search(text)
        return await status(found[1]) if found else {"text": HELP}

    @app.command("/tws")
    async def command(ack: Any, command: dict[str, Any]) -> None:
        await ack(text=f":hourglass_flowing_sand: Working on `{command['text']}`…", response_type="ephemeral")

        async def respond() -> None:
            reply = {**(await answer(command["text"])), "response_type": "in_channel"}
            async with session().post(command["response_url"], json=reply) as response:
                await response.read()

        later(respond())

    @app.event("app_mention")
    async def mention(ack: Any, event: dict[str, Any], say: Any) -> None:
        await ack()
        session()

        async def reply() -> None:
            await say(**(await answer(event.get("text", ""))), thread_ts=event.get("thread_ts") or event["ts"])

        later(reply())

    web_app = app.web_app(path="/slack/events")
    web_app.router.add_get("/healthz", _ok)

    async def closing(_app: web.Application) -> None:
        for s in sessions:
            await s.close()

    web_app.on_cleanup.append(closing)
    return web_app


async def _ok(_request: web.Request) -> web.Response:
    return web.Response(text="ok")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--tws", required=True)
    parser.add_argument("--slack-api", required=True)
    args = parser.parse_args()
    env = os.environ
    app = build(args.tws, args.slack_api, env["SLACK_SIGNING_SECRET"], env["SLACK_BOT_TOKEN"], env["TWS_USER"],
                env["TWS_PASSWORD"])
    web.run_app(app, host="127.0.0.1", port=args.port, print=None, access_log=None)


if __name__ == "__main__":
    sys.exit(main())
