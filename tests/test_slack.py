"""The Slack adapter through the real bolt stack: signed requests in, a loopback Slack API out.

Inbound requests are signed for real and posted to a running aiohttp application; the adapter's
Web API calls go to ``FakeSlackApi``, which records them; deduplication uses real Redis under a
per-test namespace. ``handle`` is a small scripted stand-in for the agent core.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from structlog.testing import capture_logs

from adapters.slack import SlackAdapter
from bot.config import SlackSettings
from bot.errors import DeliveryError
from bot.events import ACTION_CHOOSE, ACTION_CONFIRM, Button, Event, Reply
from bot.store.redis import RedisStore
from bot.tws.names import workstation_label
from tests.fakes.slack_api import (
    BOT_ID, BOT_USER_ID, TEAM_ID, FakeSlackApi, block_actions, direct_message, event_callback, mention, sign,
    slash_command,
)

SECRET = "8f14e45fceea167a5a36dedd4bea2543"
TOKEN = "xoxb-1111-2222-resynctesttoken"
APP_TOKEN = "xapp-1-A0RESYNC-3333-apptoken"
JSON_TYPE = "application/json"
FORM_TYPE = "application/x-www-form-urlencoded"

Script = Callable[[Event], list[Reply]]


class Scripted:
    """A stand-in for the agent core: records events and answers with ``script``."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.script: Script = lambda event: [Reply(text=f"echo: {event.text}")]
        self.gate: asyncio.Event | None = None  # when set, handling waits for it

    async def __call__(self, event: Event) -> list[Reply]:
        self.events.append(event)
        if self.gate is not None:
            await self.gate.wait()
        if event.text == "boom":
            raise RuntimeError("the core fell over")
        return self.script(event)


@dataclass
class Bot:
    client: TestClient
    adapter: SlackAdapter
    core: Scripted
    slack: FakeSlackApi

    async def send(self, body: bytes | dict[str, Any], content_type: str = JSON_TYPE, *,
                   headers: dict[str, str] | None = None, secret: str = SECRET, timestamp: int | None = None) -> Any:
        raw = json.dumps(body).encode() if isinstance(body, dict) else body
        signed = {**sign(raw, secret, timestamp), "Content-Type": content_type, **(headers or {})}
        return await self.client.post("/slack/events", data=raw, headers=signed)

    async def event(self, event: dict[str, Any], **kwargs: Any) -> Any:
        return await self.send(event_callback(event, **kwargs))


@pytest.fixture
async def redis_store(redis_url: str, redis_namespace: str) -> AsyncIterator[RedisStore]:
    store = RedisStore.from_url(redis_url, namespace=redis_namespace)
    yield store
    await store.close()


@pytest.fixture
async def slack() -> AsyncIterator[FakeSlackApi]:
    async with FakeSlackApi() as fake:
        yield fake


@pytest.fixture
async def bot(slack: FakeSlackApi, redis_store: RedisStore) -> AsyncIterator[Bot]:
    core = Scripted()
    adapter = SlackAdapter(SlackSettings(bot_token=TOKEN, signing_secret=SECRET, api_url=slack.url),
                           handle=core, store=redis_store)
    app = web.Application()
    adapter.mount(app)
    async with TestClient(TestServer(app, host="127.0.0.1", port=0)) as client:
        yield Bot(client=client, adapter=adapter, core=core, slack=slack)
        await adapter.close()


# --- inbound: the four kinds of delivery ---------------------------------------------------


async def test_url_verification_answers_the_challenge(bot: Bot) -> None:
    response = await bot.send({"token": "x", "challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P",
                               "type": "url_verification"})
    assert response.status == 200
    assert (await response.json())["challenge"] == "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"
    assert bot.core.events == []


async def test_mention_is_answered_in_its_thread(bot: Bot) -> None:
    response = await bot.event(mention(f"<@{BOT_USER_ID}> status EXTRACT01 &amp; co", channel="C0OPS",
                                       ts="1700000000.000100"), event_id="Ev0MENTION1")
    assert response.status == 200
    [call] = await bot.slack.wait_for("chat.postMessage")
    [event] = bot.core.events
    assert event == Event(platform="slack", workspace=TEAM_ID, channel="C0OPS", user_id="U0ANA",
                          text="status EXTRACT01 & co", kind="message", thread="1700000000.000100",
                          event_id="Ev0MENTION1", user_email="u0ana@example.com")
    assert call.params["channel"] == "C0OPS" and call.params["thread_ts"] == "1700000000.000100"
    assert call.params["text"] == "echo: status EXTRACT01 &amp; co"
    assert call.token == TOKEN and call.status == 200


async def test_mention_inside_a_thread_stays_in_that_thread(bot: Bot) -> None:
    await bot.event(mention(f"hey <@{BOT_USER_ID}|resync> log it", ts="1700000000.000300",
                            thread_ts="1700000000.000100"))
    [call] = await bot.slack.wait_for("chat.postMessage")
    assert bot.core.events[0].text == "hey  log it"
    assert bot.core.events[0].thread == call.params["thread_ts"] == "1700000000.000100"


async def test_direct_message_is_answered_in_the_dm(bot: Bot) -> None:
    await bot.event(direct_message("status EXTRACT01", channel="D0ANA"), event_id="Ev0DM1")
    [call] = await bot.slack.wait_for("chat.postMessage")
    [event] = bot.core.events
    assert (event.kind, event.channel, event.thread, event.text) == ("dm", "D0ANA", None, "status EXTRACT01")
    assert call.params["channel"] == "D0ANA" and "thread_ts" not in call.params


async def test_bot_messages_edits_and_own_messages_are_ignored(bot: Bot) -> None:
    await bot.event(direct_message("from another bot", bot_id="B0OTHER"))
    await bot.event(direct_message("edited", subtype="message_changed"))
    await bot.event(direct_message("joined", subtype="channel_join"))
    await bot.event(direct_message("my own words", user=BOT_USER_ID))
    await bot.event(direct_message("channel chatter", channel="C0OPS", channel_type="channel"))
    await bot.event(mention(f"<@{BOT_USER_ID}> hi from a bot", bot_id=BOT_ID))
    await bot.event(direct_message("the real one"))
    await bot.slack.wait_for("chat.postMessage")
    await asyncio.sleep(0.1)
    assert [e.text for e in bot.core.events] == ["the real one"]


async def test_slash_command_acks_at_once_and_answers_through_response_url(bot: Bot) -> None:
    bot.core.gate = asyncio.Event()  # the core is slow: the ack must not wait for it
    response_url = bot.slack.response_url("cmd1")
    started = time.monotonic()
    response = await bot.send(slash_command("status EXTRACT01", response_url=response_url), FORM_TYPE)
    acked = time.monotonic() - started
    assert response.status == 200 and acked < 1.0
    assert "Working on `status EXTRACT01`" in (await response.json())["text"]
    await asyncio.sleep(0.05)
    [event] = bot.core.events
    assert (event.kind, event.text, event.channel, event.user_name) == ("command", "status EXTRACT01", "C0OPS", "u0ana")
    assert bot.slack.calls("response_url") == []
    bot.core.gate.set()
    [call] = await bot.slack.wait_for("response_url")
    assert call.params["key"] == "cmd1" and call.params["response_type"] == "in_channel"
    assert call.params["text"] == "echo: status EXTRACT01"


async def test_slash_command_mentioning_payload_is_not_lost(bot: Bot) -> None:
    # bolt reads any form body containing "payload" as an interactivity payload
    await bot.send(slash_command("log payload_loader", response_url=bot.slack.response_url()), FORM_TYPE)
    await bot.slack.wait_for("response_url")
    assert [e.text for e in bot.core.events] == ["log payload_loader"]


async def test_button_press_becomes_an_action_and_update_edits_the_message(bot: Bot) -> None:
    posted = await bot.adapter.post("slack:C0OPS", Reply(text="Rerun EXTRACT01?", buttons=(
        Button(label="Confirm", action_id=ACTION_CONFIRM, value="conf-1"),)))
    bot.core.script = lambda e: [Reply(text="Confirmed by ana", update=e.message_ref),
                                 Reply(text="Rerun accepted by TWS", level="success")]
    response = await bot.send(block_actions(ACTION_CONFIRM, "conf-1", message_ts=posted.message_ref), FORM_TYPE)
    assert response.status == 200
    [update] = await bot.slack.wait_for("chat.update")
    [event] = bot.core.events
    assert (event.kind, event.action_id, event.action_value) == ("action", ACTION_CONFIRM, "conf-1")
    assert event.message_ref == event.thread == posted.message_ref and event.user_name == "u0ana"
    assert update.params["ts"] == posted.message_ref and update.params["channel"] == "C0OPS"
    assert bot.slack.message("C0OPS", posted.message_ref)["text"] == "Confirmed by ana"
    posts = await bot.slack.wait_for("chat.postMessage", 2)
    assert posts[1].params["thread_ts"] == posted.message_ref


async def test_button_in_a_thread_and_suffixed_action_ids(bot: Bot) -> None:
    await bot.send(block_actions(f"{ACTION_CHOOSE}#2", "status AGT2#PAY.EXTRACT", message_ts="1700000000.000500",
                                 thread_ts="1700000000.000100"), FORM_TYPE)
    [call] = await bot.slack.wait_for("chat.postMessage")
    [event] = bot.core.events
    assert (event.action_id, event.action_value) == (ACTION_CHOOSE, "status AGT2#PAY.EXTRACT")
    assert event.message_ref == "1700000000.000500" and event.thread == "1700000000.000100"
    assert call.params["thread_ts"] == "1700000000.000100"


async def test_ephemeral_reply_goes_to_the_requester_only(bot: Bot) -> None:
    bot.core.script = lambda e: [Reply(text="You may not rerun this job", ephemeral=True, level="error")]
    await bot.event(mention(f"<@{BOT_USER_ID}> rerun PAYROLL", ts="1700000000.000700", user="U0BOB"))
    [call] = await bot.slack.wait_for("chat.postEphemeral")
    assert (call.params["user"], call.params["channel"], call.params["thread_ts"]) == (
        "U0BOB", "C0OPS", "1700000000.000700")
    assert bot.slack.calls("chat.postMessage") == []


async def test_update_of_an_ephemeral_message_uses_its_response_url(bot: Bot) -> None:
    bot.core.script = lambda e: [Reply(text="Cancelled: nothing was sent to TWS.", update=e.message_ref)]
    await bot.send(block_actions("resync_cancel", "conf-2", message_ts="1700000000.000900", ephemeral=True,
                                 response_url=bot.slack.response_url("eph")), FORM_TYPE)
    [call] = await bot.slack.wait_for("response_url")
    assert call.params["replace_original"] is True and call.params["key"] == "eph"
    assert bot.slack.calls("chat.update") == []


async def test_button_in_a_channel_the_bot_is_not_in_answers_through_response_url(bot: Bot) -> None:
    bot.slack.fail("chat.postMessage", error="not_in_channel")
    await bot.send(block_actions(ACTION_CHOOSE, "status X", message_ts="1700000000.001300", channel="C0NOTIN",
                                 response_url=bot.slack.response_url("notin")), FORM_TYPE)
    [call] = await bot.slack.wait_for("response_url")
    assert call.params["response_type"] == "in_channel" and call.params["text"] == "echo:"
    assert [c.status for c in bot.slack.calls("chat.postMessage")] == [200]  # ok: false is HTTP 200
    assert bot.slack.calls("chat.postMessage")[0].answer == {"ok": False, "error": "not_in_channel"}


async def test_a_failing_core_becomes_a_polite_ephemeral_reply(bot: Bot) -> None:
    with capture_logs() as logs:
        await bot.event(mention(f"<@{BOT_USER_ID}> boom"))
        [call] = await bot.slack.wait_for("chat.postEphemeral")
    assert "Something went wrong on my side" in call.params["text"]
    failure = next(e for e in logs if e["event"] == "slack_handler_failed")
    assert failure["ref"] in call.params["text"] and failure["log_level"] == "error"
    # the app is still serving
    await bot.event(direct_message("still there?"))
    await bot.slack.wait_for("chat.postMessage")


# --- Slack's retries never duplicate work ---------------------------------------------------


async def test_event_retries_are_deduplicated(bot: Bot) -> None:
    body = event_callback(mention(f"<@{BOT_USER_ID}> rerun EXTRACT01"), event_id="Ev0RETRY01")
    statuses = []
    for retry in (None, "1", "2"):
        headers = {"X-Slack-Retry-Num": retry, "X-Slack-Retry-Reason": "http_timeout"} if retry else {}
        statuses.append((await bot.send(body, headers=headers)).status)
    assert statuses == [200, 200, 200]
    await bot.slack.wait_for("chat.postMessage")
    await asyncio.sleep(0.2)
    assert len(bot.core.events) == 1 and len(bot.slack.calls("chat.postMessage")) == 1


async def test_same_button_payload_twice_runs_once(bot: Bot) -> None:
    body = block_actions(ACTION_CONFIRM, "conf-3", message_ts="1700000000.001100", trigger_id="1234.abcd")
    assert [(await bot.send(body, FORM_TYPE)).status for _ in range(2)] == [200, 200]
    await bot.slack.wait_for("chat.postMessage")
    await asyncio.sleep(0.2)
    assert len(bot.core.events) == 1


# --- security: signature first, then shape ---------------------------------------------------


@pytest.mark.parametrize("how", ["wrong secret", "stale", "future", "missing", "garbage timestamp", "tampered"])
async def test_unsigned_requests_get_401_and_nothing_runs(bot: Bot, how: str) -> None:
    raw = json.dumps(event_callback(mention(f"<@{BOT_USER_ID}> rerun EXTRACT01"))).encode()
    headers = {**sign(raw, SECRET), "Content-Type": JSON_TYPE}
    if how == "wrong secret":
        headers.update(sign(raw, "not-the-secret"))
    elif how == "stale":
        headers.update(sign(raw, SECRET, int(time.time()) - 6 * 60))
    elif how == "future":
        headers.update(sign(raw, SECRET, int(time.time()) + 6 * 60))
    elif how == "missing":
        del headers["X-Slack-Signature"], headers["X-Slack-Request-Timestamp"]
    elif how == "garbage timestamp":
        headers["X-Slack-Request-Timestamp"] = "soon"
    else:
        raw = raw.replace(b"rerun", b"hold ")
    response = await bot.client.post("/slack/events", data=raw, headers=headers)
    assert response.status == 401
    await asyncio.sleep(0.2)
    assert bot.core.events == [] and bot.slack.calls() == []


@pytest.mark.parametrize("content_type, body", [
    (JSON_TYPE, b'{"type": "event_callback", "event": '),
    (JSON_TYPE, b'["not", "an", "object"]'),
    (JSON_TYPE, b'{"type": "event_callback", "event_id": "Ev1"}'),
    (JSON_TYPE, b'{"type": "url_verification"}'),
    (JSON_TYPE, b""),
    ("text/plain", b'{"type": "url_verification", "challenge": "x"}'),
    (FORM_TYPE, b"payload=%7Bnot+json"),
    (FORM_TYPE, b"payload=" + json.dumps({"type": "block_actions", "user": {"id": "U1"}}).encode()),
    (FORM_TYPE, b"command=%2Ftws&text=status+X&team_id=T1&channel_id=C1"),
    (FORM_TYPE, b"hello=world"),
    (JSON_TYPE, b'{"type": "event_callback", "event": {"type": "app_mention", "text": "\xff"}}'),
])
async def test_malformed_payloads_get_400_and_nothing_runs(bot: Bot, content_type: str, body: bytes) -> None:
    response = await bot.send(body, content_type)
    assert response.status == 400
    await asyncio.sleep(0.1)
    assert bot.core.events == [] and bot.slack.calls() == []


# --- outbound: pacing, 429, retries, failures ------------------------------------------------


async def test_429_retry_after_is_honoured(bot: Bot) -> None:
    bot.slack.fail("chat.postMessage", status=429, retry_after=2)  # longer than the 1 s pacing
    with capture_logs() as logs:
        await bot.event(mention(f"<@{BOT_USER_ID}> status EXTRACT01"))
        first, second = await bot.slack.wait_for("chat.postMessage", 2)
    assert (first.status, second.status) == (429, 200)
    assert second.at - first.at >= 2.0
    assert any(e["event"] == "slack_call_retry" and e["reason"] == "chat.postMessage: ratelimited" for e in logs)


async def test_messages_to_one_channel_are_paced_others_are_not(bot: Bot) -> None:
    posts = [bot.adapter.post("slack:C0PACE", Reply(text=f"alert {i}")) for i in range(3)]
    posts.append(bot.adapter.post("slack:C0OTHER", Reply(text="other")))
    await asyncio.gather(*posts)
    paced = [c.at for c in bot.slack.calls("chat.postMessage") if c.params["channel"] == "C0PACE"]
    other = next(c.at for c in bot.slack.calls("chat.postMessage") if c.params["channel"] == "C0OTHER")
    assert [round(b - a, 1) >= 0.9 for a, b in zip(paced, paced[1:])] == [True, True]
    assert other - paced[0] < 0.5


async def test_a_post_that_finally_fails_is_logged_with_its_reason(bot: Bot) -> None:
    bot.slack.fail("chat.postMessage", status=500, times=10)
    with capture_logs() as logs:
        await bot.event(mention(f"<@{BOT_USER_ID}> status EXTRACT01"))
        await bot.slack.wait_for("chat.postMessage", 4)
        await asyncio.sleep(0.3)
    [failed] = [e for e in logs if e["event"] == "slack_post_failed"]
    assert failed["reason"] == "chat.postMessage: HTTP 500" and not failed["permanent"]
    assert failed["channel"] == "C0OPS" and failed["log_level"] == "error"
    assert len(bot.slack.calls("chat.postMessage")) == 4
    assert TOKEN not in repr(logs) and SECRET not in repr(logs)


async def test_notifier_raises_delivery_error(bot: Bot) -> None:
    assert bot.adapter.handles("slack:C0OPS") and not bot.adapter.handles("teams:abc")
    bot.slack.fail("chat.postMessage", error="channel_not_found")
    with capture_logs() as logs, pytest.raises(DeliveryError) as refused:
        await bot.adapter.post("slack:C0GONE", Reply(text="alert"))
    assert refused.value.permanent and "channel_not_found" in str(refused.value)
    assert [(e["event"], e["channel"]) for e in logs if e["log_level"] == "error"] == [("slack_post_failed", "C0GONE")]
    assert len(bot.slack.calls("chat.postMessage")) == 1, "a permanent refusal is not retried"

    bot.slack.fail("chat.postMessage", status=429, retry_after=0.2, times=4)
    with pytest.raises(DeliveryError) as limited:
        await bot.adapter.post("slack:C0BUSY", Reply(text="alert"))
    assert limited.value.retry_after == 0.2 and not limited.value.permanent
    assert TOKEN not in str(limited.value)


async def test_notifier_posts_threads_and_updates(bot: Bot) -> None:
    posted = await bot.adapter.post("slack:C0ALERTS", Reply(text="EXTRACT01 ABEND", level="error"))
    assert posted.target == "slack:C0ALERTS" and posted.message_ref and posted.thread is None
    follow = await bot.adapter.post("slack:C0ALERTS", Reply(text="log tail"), thread=posted.message_ref)
    assert follow.thread == posted.message_ref
    await bot.adapter.update("slack:C0ALERTS", posted.message_ref, Reply(text="EXTRACT01 recovered", level="success"))
    assert bot.slack.message("C0ALERTS", posted.message_ref)["text"] == "EXTRACT01 recovered"
    assert bot.slack.calls("chat.postMessage")[1].params["thread_ts"] == posted.message_ref


async def test_a_channel_ping_in_a_job_log_is_escaped(bot: Bot) -> None:
    bot.core.script = lambda e: [Reply(text="Log of <EXTRACT01>", code="step 1\nERROR <!channel> disk full `x`",
                                       code_title="stdlist")]
    await bot.event(mention(f"<@{BOT_USER_ID}> log EXTRACT01"))
    [call] = await bot.slack.wait_for("chat.postMessage", ok=True)
    sent = json.dumps(call.params)
    assert "<!channel>" not in sent and "<EXTRACT01>" not in sent
    assert "ERROR &lt;!channel&gt; disk full" in sent


# --- Socket Mode --------------------------------------------------------------------------


async def test_socket_mode_receives_acks_and_reconnects(slack: FakeSlackApi, redis_store: RedisStore) -> None:
    core = Scripted()
    adapter = SlackAdapter(SlackSettings(bot_token=TOKEN, signing_secret="", app_token=APP_TOKEN, api_url=slack.url),
                           handle=core, store=redis_store)
    try:
        await adapter.start()
        await slack.wait_link()
        assert await adapter.healthy()
        [opened] = slack.calls("apps.connections.open")
        assert opened.token == APP_TOKEN

        envelope = await slack.push("events_api", event_callback(mention(f"<@{BOT_USER_ID}> status X", ts="1.5")))
        [call] = await slack.wait_for("chat.postMessage")
        assert call.params["thread_ts"] == "1.5" and core.events[0].text == "status X"
        assert any(a["envelope_id"] == envelope for a in slack.acks)

        await slack.drop_link()  # what a Slack server restart looks like
        await slack.wait_link(2, timeout=10)
        assert len(slack.calls("apps.connections.open")) == 2
        form = dict(parse_qsl(slash_command("status Y", response_url=slack.response_url("sock")).decode()))
        envelope = await slack.push("slash_commands", form)
        await slack.wait_for("response_url")
        ack = next(a for a in slack.acks if a["envelope_id"] == envelope)
        assert "Working on `status Y`" in ack["payload"]["text"]
        assert [e.text for e in core.events] == ["status X", "status Y"]
    finally:
        await adapter.close()


# --- end to end: the real web app, agent core and TWS simulator --------------------------------


@dataclass
class Served:
    sim: Any
    bot: Bot


@pytest.fixture
async def served(tmp_path: Any, slack: FakeSlackApi) -> AsyncIterator[Served]:
    from bot.config import load_settings
    from bot.simulator import run_simulator
    from bot.web import COMPONENTS, create_app

    policy = tmp_path / "policy.toml"
    policy.write_text('[roles.operator]\nactions = ["rerun"]\n[bindings]\n"slack:U0ANA" = ["operator"]\n')
    async with run_simulator(jobs=300, seed=5, failure_rate=0.2, speed=1.0) as (sim, url):
        settings = load_settings({
            "TWS_URL": url, "TWS_USER": "resync", "TWS_PASSWORD": "resync", "TWS_TIMEOUT": "5", "TWS_RETRIES": "0",
            "RESYNC_DATA_DIR": str(tmp_path), "RESYNC_POLICY": str(policy), "RESYNC_ALERTS": "false",
            "SLACK_BOT_TOKEN": TOKEN, "SLACK_SIGNING_SECRET": SECRET, "SLACK_API_URL": slack.url})
        app = await create_app(settings, poll=False)
        async with TestClient(TestServer(app, host="127.0.0.1", port=0)) as client:
            adapter = app[COMPONENTS].adapter("slack")
            yield Served(sim=sim, bot=Bot(client=client, adapter=adapter, core=Scripted(), slack=slack))


def _unique_failed(sim: Any) -> dict[str, Any]:
    names = [j["name"] for j in sim.jobs_in_state()]
    return next(j for j in sim.jobs_in_state("ABEND") if names.count(j["name"]) == 1)


def _rerun_count(sim: Any, job_id: str) -> int:
    return next(j["rerunCount"] for j in sim.jobs_in_state() if j["id"] == job_id)


async def test_e2e_mention_gets_the_real_status_in_its_thread(served: Served) -> None:
    job = _unique_failed(served.sim)
    response = await served.bot.event(mention(f"<@{BOT_USER_ID}> status {job['name'].lower()}", ts="1700000001.000100"))
    assert response.status == 200
    [call] = await served.bot.slack.wait_for("chat.postMessage", timeout=10)
    assert call.params["channel"] == "C0OPS" and call.params["thread_ts"] == "1700000001.000100"
    sent = json.dumps(call.params["blocks"])
    assert f"{workstation_label(job['workstation'])}#{job['jobStreamName']}.{job['name']}" in sent and "ABEND" in sent
    assert str(job["returnCode"]) in sent


async def test_e2e_unsigned_mention_is_rejected(served: Served) -> None:
    job = _unique_failed(served.sim)
    raw = json.dumps(event_callback(mention(f"<@{BOT_USER_ID}> status {job['name']}"))).encode()
    response = await served.bot.client.post("/slack/events", data=raw, headers={"Content-Type": JSON_TYPE})
    assert response.status == 401
    await asyncio.sleep(0.3)
    assert served.bot.slack.calls() == []


async def test_e2e_rerun_through_the_confirm_button_runs_exactly_once(served: Served) -> None:
    sim, bot = served.sim, served.bot
    job = _unique_failed(sim)
    before = _rerun_count(sim, job["id"])
    await bot.event(mention(f"<@{BOT_USER_ID}> rerun {job['name']}", ts="1700000002.000100"))
    [proposal] = await bot.slack.wait_for("chat.postMessage", timeout=10)
    buttons = [e for b in proposal.params["blocks"] if b["type"] == "actions" for e in b["elements"]]
    confirm = next(e for e in buttons if e["action_id"] == ACTION_CONFIRM)
    assert proposal.params["thread_ts"] == "1700000002.000100"
    ts = proposal.answer["ts"]

    press = block_actions(ACTION_CONFIRM, confirm["value"], message_ts=ts, thread_ts="1700000002.000100",
                          trigger_id="4242.confirm")
    assert [(await bot.send(press, FORM_TYPE)).status for _ in range(2)] == [200, 200]  # Slack delivered it twice
    double_click = block_actions(ACTION_CONFIRM, confirm["value"], message_ts=ts, thread_ts="1700000002.000100")
    assert (await bot.send(double_click, FORM_TYPE)).status == 200  # a second press: another trigger id

    [update] = await bot.slack.wait_for("chat.update", timeout=10)
    assert update.params["ts"] == ts and "actions" not in json.dumps(update.params["blocks"])
    await asyncio.sleep(1.5)  # room for any duplicate to (wrongly) reach TWS
    assert _rerun_count(sim, job["id"]) == before + 1
