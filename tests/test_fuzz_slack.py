"""No input to ``/slack/events`` gets a 5xx: correctly signed payloads with fields of any type.

Slack retries every non-2xx, so a 500 for a payload it (or a forger who has the secret) sends
comes back again and again. The requests are signed for real and go through the real bolt stack
to a running application; the core is a recording stand-in, outbound calls go to the fake Slack
API. The property-based part has a fixed budget (``max_examples``), so CI time stays bounded; a
longer run: ``RESYNC_FUZZ_EXAMPLES=5000 pytest tests/test_fuzz_slack.py``.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.slack import SlackAdapter
from bot.config import SlackSettings
from bot.events import Event, Reply
from bot.store.sqlite import SqliteStore
from tests.fakes.slack_api import BOT_USER_ID, FakeSlackApi, block_actions, event_callback, mention, sign

SECRET = "fuzz-signing-secret-0123456789ab"
TOKEN = "xoxb-fuzz-0000-token"
EXAMPLES = int(os.environ.get("RESYNC_FUZZ_EXAMPLES", "120"))


@dataclass
class Rig:
    client: TestClient
    events: list[Event]

    async def send(self, body: bytes, content_type: str = "application/json") -> int:
        headers = {**sign(body, SECRET), "Content-Type": content_type}
        async with self.client.post("/slack/events", data=body, headers=headers) as response:
            await response.read()
            return response.status


@asynccontextmanager
async def _running(tmp_path: Path) -> AsyncIterator[Rig]:
    events: list[Event] = []

    async def handle(event: Event) -> list[Reply]:
        events.append(event)
        return [Reply(text=f"echo: {event.text}")]

    store = await SqliteStore.open(tmp_path / "state.db")
    async with FakeSlackApi() as slack:
        adapter = SlackAdapter(SlackSettings(bot_token=TOKEN, signing_secret=SECRET, api_url=slack.url),
                               handle=handle, store=store)
        app = web.Application()
        adapter.mount(app)
        async with TestClient(TestServer(app, host="127.0.0.1", port=0)) as client:
            yield Rig(client=client, events=events)
            await adapter.close()
    await store.close()


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    async with _running(tmp_path) as running:
        yield running


# --- the failures seen, one by one ---------------------------------------------------------------


async def test_a_callback_without_a_listener_is_acknowledged(rig: Rig) -> None:
    body = {"token": "x", "team_id": "T0RESYNC", "minute_rate_limited": 1518467820, "api_app_id": "A0RESYNC",
            "type": "app_rate_limited"}
    assert await rig.send(json.dumps(body).encode()) == 200
    reaction = event_callback({"type": "reaction_added", "user": "U0ANA", "reaction": "eyes",
                               "item": {"type": "message", "channel": "C0OPS", "ts": "1.2"}})
    assert await rig.send(json.dumps(reaction).encode()) == 200
    assert rig.events == []


@pytest.mark.parametrize("field, value", [
    ("text", 42), ("text", ["status", "X"]), ("user", 7), ("channel", None), ("ts", {"x": 1}),
    ("thread_ts", 1.5), ("bot_id", True), ("subtype", [])])
async def test_wrongly_typed_event_fields_get_400_not_500(rig: Rig, field: str, value: Any) -> None:
    event = mention(f"<@{BOT_USER_ID}> status X")
    event[field] = value
    status = await rig.send(json.dumps(event_callback(event)).encode())
    assert status == (200 if value is None else 400)
    await asyncio.sleep(0.05)
    assert value is None or rig.events == []


@pytest.mark.parametrize("path, value", [
    (("team",), 5), (("authorizations",), 3), (("authorizations",), ["x"]), (("event_id",), 12)])
async def test_wrongly_typed_envelope_fields_get_400(rig: Rig, path: tuple[str, ...], value: Any) -> None:
    body = event_callback(mention(f"<@{BOT_USER_ID}> status X"))
    body[path[0]] = value
    assert await rig.send(json.dumps(body).encode()) == 400


@pytest.mark.parametrize("change", ["action_id", "value", "user_id", "container", "actions", "channel"])
async def test_wrongly_typed_button_fields_get_400(rig: Rig, change: str) -> None:
    payload = json.loads(dict(_form(block_actions("resync_confirm", "c-1", message_ts="1.1")))["payload"])
    if change == "action_id":
        payload["actions"][0]["action_id"] = 1
    elif change == "value":
        payload["actions"][0]["value"] = {"v": 1}
    elif change == "user_id":
        payload["user"]["id"] = ["U0ANA"]
    elif change == "container":
        payload["container"] = "C0OPS"
    elif change == "actions":
        payload["actions"] = [1]
    else:
        payload["channel"] = ["C0OPS"]
    body = urlencode({"payload": json.dumps(payload)}).encode()
    assert await rig.send(body, "application/x-www-form-urlencoded") == 400


async def test_lone_surrogates_and_deep_nesting_get_400(rig: Rig) -> None:
    event = mention(f"<@{BOT_USER_ID}> status X")
    raw = json.dumps(event_callback(event)).replace("status X", "status \\ud83d")
    assert await rig.send(raw.encode()) == 400
    user = json.dumps(event_callback(event)).replace('"U0ANA"', '"\\udc00"')
    assert await rig.send(user.encode()) == 400
    deep = b'{"type": "event_callback", "event": ' + b"[" * 1000 + b"]" * 1000 + b"}"
    assert await rig.send(deep) == 400
    deeper = '{"type": "event_callback", "x": ' + '{"a": ' * 100_000 + "1" + "}" * 100_000 + "}"
    assert await rig.send(deeper.encode()) == 400
    assert rig.events == []


# --- property: anything signed, nothing 5xx ---------------------------------------------------------

_scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=40))
_json = st.recursive(_scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                       st.dictionaries(st.text(max_size=10), inner, max_size=4)),
                     max_leaves=12)
_event_keys = st.sampled_from(["type", "user", "text", "channel", "ts", "thread_ts", "channel_type", "bot_id",
                               "subtype", "team", "message", "event_ts"])
_top_keys = st.sampled_from(["type", "team_id", "event_id", "team", "user", "authorizations", "enterprise_id",
                             "is_enterprise_install", "api_app_id", "event", "challenge"])
_action_keys = st.sampled_from(["action_id", "value", "selected_option", "type", "block_id"])
_payload_keys = st.sampled_from(["type", "user", "team", "channel", "container", "message", "actions", "trigger_id",
                                 "response_url", "view"])


def _form(body: bytes) -> Iterator[tuple[str, str]]:
    from urllib.parse import parse_qsl

    return iter(parse_qsl(body.decode()))


@st.composite
def _requests(draw: st.DrawFn) -> tuple[bytes, str]:
    kind = draw(st.sampled_from(["event", "envelope", "action", "payload", "command", "raw"]))
    if kind in ("event", "envelope"):
        event = mention(f"<@{BOT_USER_ID}> " + draw(st.text(max_size=30)))
        body = event_callback(event)
        if kind == "event":
            event.update(draw(st.dictionaries(_event_keys, _json, max_size=3)))
            body["event"] = event
        else:
            body.update(draw(st.dictionaries(_top_keys, _json, max_size=3)))
        return json.dumps(body).encode(), "application/json"
    if kind in ("action", "payload"):
        payload = json.loads(dict(_form(block_actions("resync_confirm", draw(st.text(max_size=20)),
                                                      message_ts="1.1")))["payload"])
        if kind == "action":
            payload["actions"][0].update(draw(st.dictionaries(_action_keys, _json, max_size=3)))
        else:
            payload.update(draw(st.dictionaries(_payload_keys, _json, max_size=3)))
        return urlencode({"payload": json.dumps(payload)}).encode(), "application/x-www-form-urlencoded"
    if kind == "command":
        fields = {"command": "/tws", "team_id": "T0RESYNC", "channel_id": "C0OPS", "user_id": "U0ANA",
                  "response_url": "http://127.0.0.1:9/r", "trigger_id": "1.2"}
        fields.update(draw(st.dictionaries(st.sampled_from(sorted(fields) + ["text", "user_name"]),
                                           st.text(max_size=30), max_size=4)))
        return urlencode(fields).encode(), "application/x-www-form-urlencoded"
    raw = draw(st.one_of(st.binary(max_size=200), st.text(max_size=200).map(lambda t: t.encode("utf-8", "replace"))))
    return raw, draw(st.sampled_from(["application/json", "application/x-www-form-urlencoded", "text/plain"]))


def test_no_signed_request_gets_a_5xx(tmp_path: Path) -> None:
    loop = asyncio.new_event_loop()
    running = _running(tmp_path)
    try:
        built = loop.run_until_complete(running.__aenter__())

        @settings(max_examples=EXAMPLES, deadline=None, database=None,
                  suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
        @given(request=_requests())
        def property(request: tuple[bytes, str]) -> None:
            status = loop.run_until_complete(built.send(*request))
            assert status < 500, request

        property()
    finally:
        loop.run_until_complete(running.__aexit__(None, None, None))
        loop.close()


_JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(alphabet='ab{}[]"\\:, ', max_size=6),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(alphabet='k{["\\', max_size=4), inner, max_size=3),
    max_leaves=40)


def _containers_deep(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max((_containers_deep(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((_containers_deep(v) for v in value), default=0)
    return 0


@given(_JSON_VALUES)
@settings(max_examples=400, deadline=None)
def test_the_guards_quick_nesting_count_is_the_payloads_depth(value: Any) -> None:
    """The guard decides from the text whether the payload needs the full walk (depth, surrogates);
    brackets inside strings, escaped quotes included, must not count."""
    from adapters.slack_http import _nesting

    assert _nesting(json.dumps(value)) == _containers_deep(value)
