"""The long fuzz run: malformed requests to every endpoint of ``resync serve``, counting 5xx answers.

    python bench/fuzz.py                  # 60 s per request family (about 6 min), random seeds
    python bench/fuzz.py --seconds 10     # a quick look
    python bench/fuzz.py --seed 1234      # repeat a run

``tests/test_fuzz.py`` runs the non-platform families with a fixed, derandomized budget in CI; this
script runs the same strategies (``tests/fuzz_inputs.py``) for as long as asked, with random seeds,
against a real ``python -m bot serve`` in its own process (TWS simulator and the loopback fake Slack
Web API in theirs), and adds ``/slack/events``: correctly signed Events API callbacks, interactivity
payloads and slash commands whose fields have every wrong type, and unsigned or badly signed ones
(``/api/messages`` too when Teams is configured). It prints, per family, the requests sent and the
answers by status; it exits 1 if any answer was a 5xx, and prints the first few such inputs.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import random
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from hypothesis import HealthCheck, given, seed, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from bench.processes import PASSWORD, USER, free_port, resync_process, simulator  # noqa: E402
from bench.slack import fake_slack  # noqa: E402
from tests.fakes.slack_api import BOT_USER_ID, TEAM_ID, event_callback, sign  # noqa: E402
from tests.fuzz_inputs import (  # noqa: E402
    TOKEN, auth_headers, chat_bodies, content_types, field, json_values, methods, paths, push_bodies, queries,
    raw_chat_bodies,
)

SECRET = "fuzz-signing-secret-0123456789"
POLICY = ('[roles.operator]\nactions = ["rerun", "hold", "release", "cancel"]\n[bindings]\n'
          '"http:ana" = ["operator"]\n"slack:U0ANA" = ["operator"]\n')

Request = tuple[str, str, bytes | None, dict[str, str]]  # method, path, body, headers


def _signed(body: bytes, content_type: str) -> Request:
    return "POST", "/slack/events", body, {**sign(body, SECRET), "Content-Type": content_type}


slack_events = st.fixed_dictionaries({
    "type": field(["app_mention", "message", "app_home_opened", "member_joined_channel", "app_rate_limited"]),
}, optional={
    "user": field(["U0ANA", "U0BOB"]), "text": field([f"<@{BOT_USER_ID}> status X", "help", "rerun X"]),
    "channel": field(["C0OPS", "D0ANA"]), "ts": field(["1700000000.000100"]), "thread_ts": json_values,
    "channel_type": field(["im", "channel"]), "bot_id": json_values, "subtype": field(["bot_message", "message_changed"]),
    "files": json_values, "blocks": json_values,
}).map(lambda event: _signed(json.dumps(event_callback(event)).encode(), "application/json"))

slack_envelopes = st.dictionaries(st.sampled_from(["type", "event", "team_id", "event_id", "challenge", "token",
                                                   "authorizations", "api_app_id", "retry_attempt"]),
                                  json_values, max_size=8).map(
    lambda body: _signed(json.dumps(body).encode(), "application/json"))

slack_actions = st.fixed_dictionaries({"type": field(["block_actions", "view_submission", "shortcut"])}, optional={
    "user": st.one_of(st.fixed_dictionaries({"id": field(["U0ANA"])}), json_values),
    "team": st.one_of(st.fixed_dictionaries({"id": field([TEAM_ID])}), json_values),
    "channel": st.one_of(st.fixed_dictionaries({"id": field(["C0OPS"])}), json_values),
    "actions": st.one_of(st.lists(st.fixed_dictionaries({"action_id": field(["resync_confirm", "resync_choose"]),
                                                         "value": field(["0" * 32, "{}"])}), max_size=2), json_values),
    "message": json_values, "container": json_values, "response_url": field(["https://hooks.slack.invalid/x"]),
    "trigger_id": json_values,
}).map(lambda payload: _signed(urlencode({"payload": json.dumps(payload)}).encode(),
                                "application/x-www-form-urlencoded"))

slack_commands = st.dictionaries(st.sampled_from(["command", "text", "user_id", "channel_id", "team_id",
                                                  "response_url", "trigger_id", "user_name"]),
                                 st.text(max_size=80), max_size=8).map(
    lambda form: _signed(urlencode({"command": "/tws", **form}).encode(), "application/x-www-form-urlencoded"))

slack_unsigned = st.tuples(st.binary(max_size=400), content_types, st.sampled_from(["", "v0=00", "v1=abc"]),
                           st.sampled_from(["", "0", str(int(time.time())), "abc"])).map(
    lambda t: ("POST", "/slack/events", t[0], {"Content-Type": t[1] or "application/json", "X-Slack-Signature": t[2],
                                               "X-Slack-Request-Timestamp": t[3]}))

FAMILIES: dict[str, st.SearchStrategy[Request]] = {
    "chat-json": st.tuples(chat_bodies, auth_headers).map(
        lambda t: ("POST", "/api/chat", json.dumps(t[0]).encode(), {**t[1], "Content-Type": "application/json"})),
    "chat-raw": st.tuples(raw_chat_bodies, content_types).map(
        lambda t: ("POST", "/api/chat", t[0], {"Authorization": f"Bearer {TOKEN}", "Content-Type": t[1] or "x/y"})),
    "tws-events": st.tuples(push_bodies, auth_headers).map(
        lambda t: ("POST", "/api/tws/events", t[0], {**t[1], "Content-Type": "application/json"})),
    "endpoints": st.tuples(methods, paths, queries, st.one_of(st.none(), st.binary(max_size=200)), auth_headers).map(
        lambda t: (t[0], t[1] + t[2], t[3], t[4])),
    "slack-events": slack_events,
    "slack-envelopes": slack_envelopes,
    "slack-actions": slack_actions,
    "slack-commands": slack_commands,
    "slack-unsigned": slack_unsigned,
}


def send(port: int, request: Request) -> int:
    method, path, body, headers = request
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        response.read()
        return response.status
    except (ConnectionError, http.client.HTTPException) as exc:
        return 599 if "Remote end closed" not in str(exc) else 598  # dropped by the server: counted as a failure
    finally:
        connection.close()


def run_family(name: str, port: int, seconds: float, base_seed: int, bad: list[tuple[str, int, Request]]) -> Counter[int]:
    statuses: Counter[int] = Counter()
    deadline = time.monotonic() + seconds
    rng = random.Random(base_seed)

    def probe(request: Request) -> None:
        status = send(port, request)
        statuses[status] += 1
        if status >= 500 and len(bad) < 10:
            bad.append((name, status, request))

    while time.monotonic() < deadline:  # batches of 100 examples, each with a fresh seed, until time is up
        batch: Callable[[], None] = settings(max_examples=100, deadline=None, database=None,
                                             suppress_health_check=list(HealthCheck))(
            seed(rng.randrange(2**32))(given(FAMILIES[name])(probe)))
        batch()
    return statuses


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="seconds per request family")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--only", choices=sorted(FAMILIES), action="append")
    args = parser.parse_args()
    seed = args.seed if args.seed is not None else random.randrange(2**31)
    data = Path(tempfile.mkdtemp(prefix="resync-fuzz-"))
    (data / "policy.toml").write_text(POLICY)
    port = free_port()
    async with simulator(2000, seed=7, failure_rate=0.1, speed=1.0) as tws_url, fake_slack() as (api_url, _, _):
        env = {"TWS_URL": tws_url, "TWS_USER": USER, "TWS_PASSWORD": PASSWORD, "RESYNC_DATA_DIR": str(data),
               "RESYNC_API_TOKEN": TOKEN, "RESYNC_POLICY": str(data / "policy.toml"), "RESYNC_EVENTS_TOKEN": TOKEN,
               "SLACK_BOT_TOKEN": "xoxb-fuzz-0000-token", "SLACK_SIGNING_SECRET": SECRET, "SLACK_API_URL": api_url,
               "LOG_LEVEL": "ERROR"}
        async with resync_process(["serve", "--host", "127.0.0.1", "--port", str(port), "--no-poll"], env,
                                  f"http://127.0.0.1:{port}/healthz"):
            print(f"seed {seed}; {args.seconds:g} s per family; resync serve at 127.0.0.1:{port}")
            print(f"{'family':<16} {'requests':>9}  answers by status")
            bad: list[tuple[str, int, Request]] = []
            total = fives = 0
            for index, name in enumerate(args.only or FAMILIES):
                statuses = await asyncio.to_thread(run_family, name, port, args.seconds, seed + index, bad)
                count = sum(statuses.values())
                total += count
                fives += sum(n for status, n in statuses.items() if status >= 500)
                shown = ", ".join(f"{status}: {n}" for status, n in sorted(statuses.items()))
                print(f"{name:<16} {count:>9}  {shown}")
            print(f"{'all':<16} {total:>9}  5xx: {fives}")
            for name, status, (method, path, body, _) in bad:
                print(f"  5xx {status} {name}: {method} {path} {body[:200]!r}" if body else f"  5xx {status} {name}: "
                      f"{method} {path}")
    return 1 if fives else 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
