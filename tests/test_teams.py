"""The Teams adapter through the real botbuilder stack: signed Activities in, a loopback connector out.

Inbound requests carry RS256 tokens from ``FakeIdentityProvider`` (OpenID metadata, JWKS with
endorsements), which the SDK validates through its own settings (``ToBotFromChannelOpenIdMetadataUrl``,
``ToBotFromChannelTokenIssuer``). Outbound, the SDK's MSAL client fetches the bot's token from the
same provider (``ToChannelFromBotLoginUrl`` is an https ADFS-style authority on loopback, trusted
through ``REQUESTS_CA_BUNDLE``), and every call lands on ``FakeBotConnector``, which checks that
token. ``handle`` is a scripted stand-in for the core; tests/test_teams_e2e.py runs the real one.
"""

from __future__ import annotations

import asyncio
import json
import os
import struct
import subprocess
import sys
import time
import zipfile
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from structlog.testing import capture_logs

from adapters.teams import SendWindow, TeamsAdapter
from adapters.teams_cards import card_of
from adapters.teams_conversations import list_conversations
from bot.config import TeamsSettings, load_settings
from bot.errors import DeliveryError
from bot.events import ACTION_CANCEL, ACTION_CONFIRM, Button, Event, Reply
from bot.store import Store
from bot.store.sqlite import SqliteStore
from tests.fakes.bot_connector import BOT_ID, TEAM, TENANT, FakeBotConnector, Member
from tests.fakes.teams_idp import FakeIdentityProvider

ROOT = Path(__file__).resolve().parents[1]
APP_ID = "4f9a6c1e-0d7b-4e43-9a51-2f1d0c6b7e11"
PASSWORD = "resync-teams-test-secret-0001"
CHAIN = f"{TEAM};messageid=1700000000000"
AUTO = object()

Script = Callable[[Event], list[Reply]]


class Scripted:
    """A stand-in for the agent core: records events and answers with ``script``."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.script: Script = lambda event: [Reply(text=f"echo: {event.text}")]
        self.delay = 0.0

    async def __call__(self, event: Event) -> list[Reply]:
        self.events.append(event)
        if self.delay:
            await asyncio.sleep(self.delay)
        return self.script(event)


def teams_settings(idp: FakeIdentityProvider, **extra: str) -> TeamsSettings:
    """Through the public loader, with the SDK's own setting names."""
    env = {"TWS_URL": "http://127.0.0.1:9", "TWS_USER": "u", "TWS_PASSWORD": "p",
           **idp.settings(APP_ID, PASSWORD), **extra}
    settings = load_settings(env).teams
    assert settings is not None
    return settings


@dataclass
class Bot:
    client: TestClient
    adapter: TeamsAdapter
    core: Scripted
    connector: FakeBotConnector
    idp: FakeIdentityProvider
    store: Store

    async def send(self, activity: dict[str, Any] | None = None, *, token: Any = AUTO, data: Any = None,
                   content_type: str = "application/json", authorization: str | None = None) -> Any:
        headers = {"Content-Type": content_type}
        if token is AUTO:
            token = self.idp.channel_token(APP_ID, (activity or {}).get("serviceUrl"))
        if authorization is not None:
            headers["Authorization"] = authorization
        elif token is not None:
            headers["Authorization"] = f"Bearer {token}"
        return await self.client.post("/api/messages", data=data if data is not None else json.dumps(activity),
                                      headers=headers)

    async def settle(self) -> None:
        await asyncio.sleep(0.2)


@pytest.fixture(scope="module")
def idp() -> Iterator[FakeIdentityProvider]:
    with FakeIdentityProvider(tls=True, clients={APP_ID: PASSWORD}) as fake:
        yield fake


@pytest.fixture(autouse=True)
def trusted_idp(idp: FakeIdentityProvider, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(idp.cert_path))


@pytest.fixture
async def connector(idp: FakeIdentityProvider) -> AsyncIterator[FakeBotConnector]:
    async with FakeBotConnector(idp) as fake:
        yield fake


async def _serve(adapter: TeamsAdapter) -> TestClient:
    app = web.Application()
    adapter.mount(app)
    await adapter.start()
    client = TestClient(TestServer(app, host="127.0.0.1", port=0))
    await client.start_server()
    return client


@pytest.fixture
async def bot(idp: FakeIdentityProvider, connector: FakeBotConnector, tmp_path: Path) -> AsyncIterator[Bot]:
    store = await SqliteStore.open(tmp_path / "state.db")
    core = Scripted()
    adapter = TeamsAdapter(teams_settings(idp), handle=core, store=store, ack_after=0.5)
    client = await _serve(adapter)
    yield Bot(client=client, adapter=adapter, core=core, connector=connector, idp=idp, store=store)
    await client.close()
    await adapter.close()
    await store.close()


def _card_text(call: Any) -> str:
    return json.dumps(card_of(call.body), ensure_ascii=False)


def _actions(body: dict[str, Any]) -> list[dict[str, Any]]:
    card = card_of(body) or {}
    return [a for item in card.get("body", []) if item["type"] == "ActionSet" for a in item["actions"]]


# --- conversations --------------------------------------------------------------------------


async def test_channel_mention_is_answered_in_its_reply_chain(bot: Bot) -> None:
    activity = bot.connector.mention("status EXTRACT01", activity_id="1700000000000")
    response = await bot.send(activity)
    assert response.status == 200
    typing, sent = await bot.connector.wait_for("send", 2)
    [event] = bot.core.events
    assert event == Event(platform="teams", workspace=TENANT, channel=TEAM, user_id="aad-ana", user_name="Ana Souza",
                          text="status EXTRACT01", kind="message", thread="1700000000000", event_id="1700000000000",
                          lang="en")
    assert event.identities == ("teams:aad-ana",)  # no e-mail: Teams did not give one
    assert typing.body["type"] == "typing" and typing.conversation == CHAIN
    assert sent.conversation == CHAIN and sent.token_ok
    card = card_of(sent.body)
    assert card["version"] == "1.5" and card["msteams"] == {"width": "Full"} and card["fallbackText"]
    assert "echo: status EXTRACT01" in _card_text(sent)


async def test_personal_chat_in_portuguese_with_the_email_teams_knows(bot: Bot) -> None:
    bot.connector.add_member(Member(id="29:ana", name="Ana Souza", aad="aad-ana", email="Ana.Souza@Contoso.com"))
    await bot.send(bot.connector.activity(text="quais jobs abendaram?", locale="pt-BR"))
    sent = (await bot.connector.wait_for("send", 2))[1]
    [event] = bot.core.events
    assert (event.kind, event.channel, event.thread, event.lang) == ("dm", "a:1personal-chat", None, "pt")
    assert event.identities == ("teams:aad-ana", "ana.souza@contoso.com")
    assert sent.conversation == "a:1personal-chat"


async def test_an_email_typed_in_the_message_is_never_an_identity(bot: Bot) -> None:
    await bot.send(bot.connector.activity(text="I am boss@contoso.com, rerun X",
                                          **{"from": {"id": "29:eve", "name": "boss@contoso.com", "aadObjectId": "aad-eve"}}))
    await bot.connector.wait_for("send", 2)
    assert bot.core.events[0].identities == ("teams:aad-eve",)


async def test_group_chat_mention_is_answered_in_place(bot: Bot) -> None:
    entity = {"type": "mention", "text": "<at>Resync</at>", "mentioned": {"id": BOT_ID, "name": "Resync"}}
    await bot.send(bot.connector.activity(text="<p><at>Resync</at>&nbsp;failures, ask <at>Bruno</at></p>",
                                          conversation="19:group@thread.v2", textFormat="xml",
                                          conversation_type="groupChat", entities=[entity]))
    sent = (await bot.connector.wait_for("send", 2))[1]
    [event] = bot.core.events
    assert (event.kind, event.text, event.thread) == ("message", "failures, ask Bruno", None)
    assert sent.conversation == "19:group@thread.v2"


async def test_replies_for_the_requester_alone_mention_them_in_a_channel(bot: Bot) -> None:
    bot.core.script = lambda e: [Reply(text="You are not allowed to rerun X.", ephemeral=True, level="warning")]
    await bot.send(bot.connector.mention("rerun X"))
    sent = (await bot.connector.wait_for("send", 2))[1]
    card = card_of(sent.body)
    assert card["body"][0]["text"] == "<at>Ana Souza</at>"
    assert card["msteams"]["entities"] == [{"type": "mention", "text": "<at>Ana Souza</at>",
                                            "mentioned": {"id": "aad-ana", "name": "Ana Souza"}}]
    await bot.send(bot.connector.activity(text="rerun X"))  # in a personal chat: no mention needed
    personal = (await bot.connector.wait_for("send", 4))[3]
    assert "entities" not in card_of(personal.body)["msteams"]


async def test_slow_work_is_acknowledged_then_answered(bot: Bot) -> None:
    bot.core.delay = 1.0  # the adapter acknowledges after 0.5 s here
    started = time.monotonic()
    response = await bot.send(bot.connector.activity(text="failures"))
    assert response.status == 200 and time.monotonic() - started < 0.9  # the HTTP answer never waits
    typing, ack = await bot.connector.wait_for("send", 2, timeout=10)
    assert typing.body["type"] == "typing" and "Working on it" in _card_text(ack)
    [answer] = await bot.connector.wait_for("update", timeout=10)  # the answer replaces the acknowledgement
    ack_id = next(i for i, m in bot.connector.messages.items() if m["conversation"]["id"] == ack.conversation)
    assert answer.activity_id == ack_id and "echo: failures" in _card_text(answer)
    assert len(bot.connector.calls("send")) == 2


# --- cards -------------------------------------------------------------------------------------


async def test_a_card_submission_arriving_three_times_is_answered_once(bot: Bot) -> None:
    assert await _install(bot, TEAM, "channel")
    posted = await bot.adapter.post(f"teams:{TEAM}", Reply(text="Rerun X?", buttons=(
        Button(label="Confirm", action_id=ACTION_CONFIRM, value="conf-1"),
        Button(label="Cancel", action_id=ACTION_CANCEL, value="conf-1"))), thread="1700000000000")
    [confirm, cancel] = _actions(bot.connector.calls("send")[-1].body)
    assert confirm["data"]["nonce"] == cancel["data"]["nonce"] and confirm["style"] == "positive"
    bot.core.script = lambda e: [Reply(text="Confirmed by Ana", update=e.message_ref)]
    submit = bot.connector.activity(text=None, value=confirm["data"], conversation=CHAIN, conversation_type="channel",
                                    reply_to=posted.message_ref, team=TEAM, activity_id="f:submit-1")
    for activity_id in ("f:submit-1", "f:submit-1", "f:submit-2"):  # a retry, then a redelivery with a new id
        assert (await bot.send({**submit, "id": activity_id})).status == 200
    [update] = await bot.connector.wait_for("update")
    await bot.settle()
    [event] = bot.core.events
    assert (event.kind, event.action_id, event.action_value, event.message_ref) == (
        "action", ACTION_CONFIRM, "conf-1", posted.message_ref)
    assert update.activity_id == posted.message_ref and not _actions(update.body)
    assert "Confirmed by Ana" in _card_text(update)
    assert len(bot.connector.calls("update")) == 1


async def test_every_invoke_gets_an_answer(bot: Bot) -> None:
    execute = bot.connector.activity("invoke", name="adaptiveCard/action",
                                     value={"action": {"type": "Action.Execute", "verb": "confirm",
                                                       "data": {"action_id": ACTION_CONFIRM, "value": "c-2", "nonce": "n"}}})
    response = await bot.send(execute)
    assert response.status == 200
    assert (await response.json())["type"] == "application/vnd.microsoft.activity.message"
    await bot.connector.wait_for("send", 2)
    assert bot.core.events[0].action_value == "c-2"
    other = await bot.send(bot.connector.activity("invoke", name="composeExtension/query", value={"x": 1}))
    assert other.status == 200


# --- security ----------------------------------------------------------------------------------


BAD_TOKENS: dict[str, Callable[[FakeIdentityProvider, str], str | None]] = {
    "expired": lambda idp, url: idp.channel_token(APP_ID, url, expires_in=-900),
    "wrong audience": lambda idp, url: idp.channel_token("someone-elses-app", url),
    "wrong issuer": lambda idp, url: idp.channel_token(APP_ID, url, issuer="https://evil.example.com/"),
    "wrong key": lambda idp, url: idp.channel_token(APP_ID, url, key="rogue"),
    "missing endorsement": lambda idp, url: idp.channel_token(APP_ID, url, key="webchat"),
    "serviceUrl mismatch": lambda idp, url: idp.channel_token(APP_ID, "https://smba.evil.example.com/"),
    "no serviceurl claim": lambda idp, url: idp.channel_token(APP_ID, None),
    "malformed": lambda idp, url: "not.a.jwt-at-all-but-long-enough",
    "garbage": lambda idp, url: "x" * 40,
}


@pytest.mark.parametrize("case", sorted(BAD_TOKENS))
async def test_bad_tokens_get_401_and_nothing_runs(bot: Bot, case: str) -> None:
    activity = bot.connector.activity(text="rerun PAYROLL.EXTRACT01")
    response = await bot.send(activity, token=BAD_TOKENS[case](bot.idp, activity["serviceUrl"]))
    assert response.status == 401
    await bot.settle()
    assert bot.core.events == [] and bot.connector.calls() == []
    assert await list_conversations(bot.store) == []


@pytest.mark.parametrize("authorization", [None, "", "Basic dXNlcjpwYXNz", "Bearer", "Bearer a b c d e f g h i j k"])
async def test_missing_or_odd_authorization_gets_401(bot: Bot, authorization: str | None) -> None:
    activity = bot.connector.activity(text="status X")
    response = await bot.send(activity, token=None, authorization=authorization)
    assert response.status == 401
    await bot.settle()
    assert bot.core.events == [] and bot.connector.calls() == []


async def test_a_token_cannot_send_replies_elsewhere(bot: Bot) -> None:
    """A genuine token for the real connector, replayed with another serviceUrl in the body."""
    activity = bot.connector.activity(text="status X", serviceUrl="https://attacker.example.com/")
    token = bot.idp.channel_token(APP_ID, bot.connector.url)
    assert (await bot.send(activity, token=token)).status == 401
    assert bot.core.events == []


@pytest.mark.parametrize(("data", "content_type"), [
    (b"text=status", "application/x-www-form-urlencoded"), (b"{not json", "application/json"),
    (b"\xff\xfe", "application/json"), (b"", "application/json"), (b"status X", "text/plain")])
async def test_a_body_that_is_not_json_gets_415(bot: Bot, data: bytes, content_type: str) -> None:
    response = await bot.send(token="x" * 40, data=data, content_type=content_type)
    assert response.status == 415


@pytest.mark.parametrize("change", [
    {"type": None}, {"type": ""}, {"serviceUrl": None}, {"serviceUrl": "ftp://x"}, {"conversation": None},
    {"channelId": None}, {"from": None}, {"timestamp": "not a date"}, {"deliveryMode": "expectReplies"}])
async def test_a_malformed_activity_gets_400_with_a_valid_token(bot: Bot, change: dict[str, Any]) -> None:
    activity = {k: v for k, v in {**bot.connector.activity(text="status X"), **change}.items() if v is not None}
    response = await bot.send(activity, token=bot.idp.channel_token(APP_ID, bot.connector.url))
    assert response.status == 400, await response.text()
    await bot.settle()
    assert bot.core.events == []


@pytest.mark.parametrize("body", [[], "text", 42, None])
async def test_json_that_is_not_an_object_gets_400(bot: Bot, body: Any) -> None:
    response = await bot.send(token="x" * 40, data=json.dumps(body))
    assert response.status == 400


async def test_other_tenants_get_403(idp: FakeIdentityProvider, connector: FakeBotConnector, sqlite_store: SqliteStore) -> None:
    core = Scripted()
    adapter = TeamsAdapter(teams_settings(idp, TEAMS_ALLOWED_TENANTS="tenant-a, tenant-b"), handle=core, store=sqlite_store)
    client = await _serve(adapter)
    try:
        for tenant, status in (("tenant-x", 403), ("tenant-b", 200)):
            activity = connector.activity(text="status X", tenant=tenant)
            response = await client.post("/api/messages", data=json.dumps(activity), headers={
                "Content-Type": "application/json", "Authorization": f"Bearer {idp.channel_token(APP_ID, connector.url)}"})
            assert response.status == status
        await connector.wait_for("send", 2)
        assert [e.workspace for e in core.events] == ["tenant-b"]
    finally:
        await client.close()
        await adapter.close()


# --- proactive ---------------------------------------------------------------------------------


async def _install(bot: Bot, conversation: str, kind: str) -> bool:
    update = bot.connector.activity("conversationUpdate", conversation=conversation, conversation_type=kind,
                                    team=TEAM if kind == "channel" else None,
                                    membersAdded=[{"id": BOT_ID, "name": "Resync"}])
    return (await bot.send(update)).status == 200


async def test_installation_stores_the_reference_and_alerts_go_there(bot: Bot) -> None:
    assert await _install(bot, "19:alerts@thread.tacv2", "channel")
    [stored] = await list_conversations(bot.store)
    assert (stored.id, stored.type, stored.team, stored.tenant, stored.service_url) == (
        "19:alerts@thread.tacv2", "channel", "Operations", TENANT, bot.connector.url)
    posted = await bot.adapter.post("teams:19:alerts@thread.tacv2", Reply(title="🔴 ABEND X", text="failed"))
    [root] = await bot.connector.wait_for("send")
    assert root.conversation == "19:alerts@thread.tacv2" and posted.thread == posted.message_ref
    await bot.adapter.post("teams:19:alerts@thread.tacv2", Reply(text="rerun by ana"), thread=posted.thread)
    await bot.adapter.update("teams:19:alerts@thread.tacv2", posted.message_ref, Reply(title="✅ SUCC X", text="ok"))
    reply = (await bot.connector.wait_for("send", 2))[1]
    assert reply.conversation == f"19:alerts@thread.tacv2;messageid={posted.message_ref}"
    assert bot.connector.thread_of[reply.body.get("id") or max(bot.connector.messages)] == posted.message_ref
    [update] = await bot.connector.wait_for("update")
    assert "SUCC" in _card_text(update)


async def test_unknown_conversations_stay_in_the_outbox(bot: Bot) -> None:
    with pytest.raises(DeliveryError) as caught:
        await bot.adapter.post("teams:19:never-seen@thread.tacv2", Reply(text="x"))
    assert not caught.value.permanent and bot.connector.calls() == []


async def test_429_and_502_are_retried_with_retry_after(bot: Bot) -> None:
    await _install(bot, "a:1personal-chat", "personal")
    bot.connector.fail("send", status=429, retry_after=0.6)
    bot.connector.fail("send", status=502)
    started = time.monotonic()
    with capture_logs() as logs:
        await bot.adapter.post("teams:a:1personal-chat", Reply(text="hello"))
    calls = bot.connector.calls("send")
    assert [c.status for c in calls] == [429, 502, 201]
    assert calls[1].at - calls[0].at >= 0.55 and time.monotonic() - started >= 0.55
    assert [e["event"] for e in logs].count("teams_call_retry") == 2


async def test_a_post_that_keeps_failing_raises_for_the_outbox(bot: Bot) -> None:
    await _install(bot, "a:1personal-chat", "personal")
    bot.connector.fail("send", status=504, times=4)
    with pytest.raises(DeliveryError) as caught:
        await bot.adapter.post("teams:a:1personal-chat", Reply(text="hello"))
    assert not caught.value.permanent and len(bot.connector.calls("send")) == 4


async def test_removed_from_a_conversation_is_reported_once(bot: Bot) -> None:
    await _install(bot, "a:1personal-chat", "personal")
    bot.connector.remove("a:1personal-chat")
    with capture_logs() as logs:
        for _ in range(3):
            with pytest.raises(DeliveryError) as caught:
                await bot.adapter.post("teams:a:1personal-chat", Reply(text="hello"))
            assert caught.value.permanent
    assert len(bot.connector.calls("send")) == 1  # asked once, then refused without a call
    assert [e["event"] for e in logs].count("teams_conversation_gone") == 1
    [stored] = await list_conversations(bot.store)
    assert stored.gone and "BotNotInConversationRoster" in stored.gone
    await _install(bot, "a:1personal-chat", "personal")  # installed again: posting works again
    bot.connector._removed.clear()
    await bot.adapter.post("teams:a:1personal-chat", Reply(text="back"))


async def test_uninstalling_marks_the_conversation_gone(bot: Bot) -> None:
    await _install(bot, "a:1personal-chat", "personal")
    await bot.send(bot.connector.activity("installationUpdate", action="remove"))
    with pytest.raises(DeliveryError):
        await bot.adapter.post("teams:a:1personal-chat", Reply(text="x"))
    assert bot.connector.calls("send") == []


async def test_sends_keep_within_teams_limits_per_conversation(bot: Bot) -> None:
    await _install(bot, "a:1personal-chat", "personal")
    await asyncio.gather(*(bot.adapter.post("teams:a:1personal-chat", Reply(text=f"m{i}")) for i in range(9)))
    times = [c.at for c in bot.connector.calls("send")]
    assert len(times) == 9
    assert times[7] - times[0] >= 0.8  # the 8th waits for the second to pass (less network jitter)


async def test_the_send_window_keeps_both_limits() -> None:
    """Teams' two windows, scaled down: at most 3 in 0.2 s and 5 in 1 s, per conversation."""
    window, loop = SendWindow(((0.2, 3), (1.0, 5))), asyncio.get_running_loop()
    started = loop.time()

    async def slot(key: str) -> float:
        await window.wait(key)
        return loop.time() - started

    times = sorted(await asyncio.gather(*(slot("a") for _ in range(7)), slot("b")))
    other = times.pop(0)  # conversation "b" is never held up by "a"
    assert other < 0.05 and all(t < 0.05 for t in times[:3])  # a burst of 3 at once
    assert 0.19 <= times[3] < 0.35 and times[4] < 0.35  # then 2 more after 0.2 s: 5 in the first second
    assert times[5] >= 0.99  # the 6th waits for the 1 s window
    window.block("b", 0.3)  # a 429's Retry-After
    before = loop.time()
    await window.wait("b")
    assert loop.time() - before >= 0.29


async def test_references_survive_a_restart(idp: FakeIdentityProvider, connector: FakeBotConnector, tmp_path: Path) -> None:
    for round_ in range(2):
        store = await SqliteStore.open(tmp_path / "state.db")
        adapter = TeamsAdapter(teams_settings(idp), handle=Scripted(), store=store)
        client = await _serve(adapter)
        try:
            if round_ == 0:
                update = connector.activity("conversationUpdate", conversation="19:ops@thread.tacv2",
                                            conversation_type="channel", team=TEAM,
                                            membersAdded=[{"id": BOT_ID, "name": "Resync"}])
                response = await client.post("/api/messages", data=json.dumps(update), headers={
                    "Content-Type": "application/json",
                    "Authorization": f"Bearer {idp.channel_token(APP_ID, connector.url)}"})
                assert response.status == 200
            else:
                await adapter.post("teams:19:ops@thread.tacv2", Reply(text="after the restart"))
        finally:
            await client.close()
            await adapter.close()
            await store.close()
    [sent] = await connector.wait_for("send")
    assert sent.conversation == "19:ops@thread.tacv2" and "after the restart" in _card_text(sent)


# --- never a 500 -------------------------------------------------------------------------------

_ODD = [None, 0, -1, "", "x", [], ["x"], {}, {"id": 5}, True]
_FIELDS = ["id", "type", "serviceUrl", "channelId", "from", "recipient", "conversation", "channelData", "text",
           "value", "entities", "locale", "replyToId", "attachments", "name", "membersAdded", "action", "timestamp"]


async def test_odd_activities_never_get_a_500(bot: Bot) -> None:
    """Every field of a valid Activity replaced by values of the wrong shape: 200, 400 or 401, never 500."""
    good = bot.connector.activity(text="status X")
    token = bot.idp.channel_token(APP_ID, bot.connector.url)
    statuses = set()
    with capture_logs() as logs:
        for field in _FIELDS:
            for odd in _ODD:
                for kind in ("message", "invoke", "conversationUpdate"):
                    activity = {**good, "type": kind, field: odd}
                    status = (await bot.send(activity, token=token)).status
                    assert status in (200, 400, 401), (field, odd, kind, status)
                    statuses.add(status)
        await bot.settle()
    assert statuses >= {200, 400}
    crashes = [e for e in logs if e["event"] in ("teams_turn_failed", "teams_handler_failed", "http_request_failed")]
    assert crashes == []


# --- the state store: Redis too -----------------------------------------------------------------


async def test_card_dedup_in_redis(idp: FakeIdentityProvider, connector: FakeBotConnector, store: Store) -> None:
    """The claim lives in the configured store (both backends); a second adapter (another replica,
    or a restart) sees it too."""
    core = Scripted()
    adapters = [TeamsAdapter(teams_settings(idp), handle=core, store=store) for _ in range(2)]
    clients = [await _serve(adapter) for adapter in adapters]
    try:
        submit = connector.activity(text=None, value={"action_id": ACTION_CONFIRM, "value": "c-9", "nonce": "n-9"},
                                    reply_to="1700000000001")
        token = idp.channel_token(APP_ID, connector.url)
        for i, client in enumerate(clients * 2):
            response = await client.post("/api/messages", data=json.dumps({**submit, "id": f"f:{i}"}), headers={
                "Content-Type": "application/json", "Authorization": f"Bearer {token}"})
            assert response.status == 200
        await connector.wait_for("send", 2)
        await asyncio.sleep(0.3)
        assert [e.action_value for e in core.events] == ["c-9"]
    finally:
        for client, adapter in zip(clients, adapters):
            await client.close()
            await adapter.close()


# --- the command line ----------------------------------------------------------------------------


def _resync(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("TWS_", "SLACK_", "RESYNC_", "REDIS_", "Microsoft"))}
    return subprocess.run([sys.executable, "-m", "bot", *args], capture_output=True, text=True, cwd=ROOT,
                          env={**clean, **env}, timeout=60)


async def test_teams_conversations_lists_what_the_bot_can_post_in(bot: Bot, tmp_path: Path) -> None:
    assert await _install(bot, "19:alerts@thread.tacv2", "channel")
    assert await _install(bot, "a:1personal-chat", "personal")
    result = _resync("teams", "conversations", "--json", env={"RESYNC_DATA_DIR": str(tmp_path)})
    assert result.returncode == 0, result.stderr
    rows = {row["id"]: row for row in map(json.loads, result.stdout.splitlines())}
    assert set(rows) == {"19:alerts@thread.tacv2", "a:1personal-chat"}
    channel = rows["19:alerts@thread.tacv2"]
    assert (channel["target"], channel["type"], channel["team"], channel["tenant"]) == (
        "teams:19:alerts@thread.tacv2", "channel", "Operations", TENANT)
    assert channel["last_seen"].endswith("Z") and channel["gone"] is None
    text = _resync("teams", "conversations", env={"RESYNC_DATA_DIR": str(tmp_path)}).stdout
    assert "teams:a:1personal-chat  personal" in text


def test_teams_package_writes_the_manifest_and_both_icons(tmp_path: Path) -> None:
    out = tmp_path / "pkg" / "resync.zip"
    result = _resync("teams", "package", "--out", str(out), env={
        "MicrosoftAppId": APP_ID, "MicrosoftAppPassword": PASSWORD, "TEAMS_APP_NAME": "Ops Bot"})
    assert result.returncode == 0, result.stderr
    with zipfile.ZipFile(out) as package:
        assert sorted(package.namelist()) == ["color.png", "manifest.json", "outline.png"]
        manifest = json.loads(package.read("manifest.json"))
        color, outline = package.read("color.png"), package.read("outline.png")
    assert manifest["id"] == manifest["bots"][0]["botId"] == APP_ID and manifest["name"]["short"] == "Ops Bot"
    assert manifest["manifestVersion"] == "1.22" and set(manifest["bots"][0]["scopes"]) == {"personal", "team", "groupChat"}
    assert {c["title"] for c in manifest["bots"][0]["commandLists"][0]["commands"]} >= {"help", "status", "failures"}
    assert struct.unpack(">II", color[16:24]) == (192, 192)
    assert struct.unpack(">II", outline[16:24]) == (32, 32) and outline[25] == 6  # colour type 6: RGBA (transparent)
    missing = _resync("teams", "package", env={"MicrosoftAppPassword": PASSWORD})
    assert missing.returncode == 2 and "MicrosoftAppId" in missing.stderr.strip()
    no_secret = _resync("teams", "package", "--out", str(tmp_path / "nosecret.zip"), env={"MicrosoftAppId": APP_ID})
    assert no_secret.returncode == 0, no_secret.stderr  # building a package needs the app id, no secret
    with zipfile.ZipFile(tmp_path / "nosecret.zip") as package:
        assert json.loads(package.read("manifest.json"))["bots"][0]["botId"] == APP_ID
    serve = _resync("serve", env={"MicrosoftAppId": APP_ID, "TWS_URL": "http://127.0.0.1:9/twsd", "TWS_USER": "u",
                                  "TWS_PASSWORD": "p", "RESYNC_DATA_DIR": str(tmp_path)})
    assert serve.returncode != 0 and "MicrosoftAppPassword is required" in serve.stderr  # serving still needs it


async def test_not_healthy_until_the_signing_keys_are_known(idp: FakeIdentityProvider, connector: FakeBotConnector,
                                                            sqlite_store: SqliteStore, bot: Bot) -> None:
    assert await bot.adapter.healthy()
    dead = teams_settings(idp, ToBotFromChannelOpenIdMetadataUrl="https://127.0.0.1:9/.well-known/openid-configuration")
    adapter = TeamsAdapter(dead, handle=Scripted(), store=sqlite_store)
    client = await _serve(adapter)
    try:
        assert not await adapter.healthy()
        activity = connector.activity(text="status X")
        response = await client.post("/api/messages", data=json.dumps(activity), headers={
            "Content-Type": "application/json", "Authorization": f"Bearer {idp.channel_token(APP_ID, connector.url)}"})
        assert response.status == 401
    finally:
        await client.close()
        await adapter.close()


async def test_conversations_in_memory_are_bounded_and_the_store_still_has_them(sqlite_store: SqliteStore) -> None:
    """Every channel thread is a conversation of its own: memory keeps the most recent, the store all."""
    from adapters.teams_conversations import Conversation, Conversations

    conversations = Conversations(sqlite_store, memory=50)
    for n in range(200):
        await conversations.seen(Conversation(id=f"19:chan@thread.tacv2;messageid={n}", type="channel", tenant="T",
                                              service_url="https://smba.example/", reference={"n": n}))
        await conversations.get("19:chan@thread.tacv2;messageid=0")  # used again and again: stays
    assert len(conversations._known) == 50 and len(conversations._read) <= 50
    assert "19:chan@thread.tacv2;messageid=0" in conversations._known
    oldest = await conversations.get("19:chan@thread.tacv2;messageid=1")  # forgotten here, read back
    assert oldest is not None and oldest.reference == {"n": 1}
    assert len(await list_conversations(sqlite_store)) == 200
