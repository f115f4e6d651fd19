"""The adapter seam's contracts, driven by plain functions: background answers, sending, fitting.

``Answers`` runs against the real SQLite store; ``paced`` against attempt functions that fail
the way platforms do. The wire behaviour (Slack) is covered in test_slack.py.
"""

from __future__ import annotations

import asyncio
import dataclasses

import pytest
from structlog.testing import capture_logs

from adapters.answers import Answers
from adapters.fit import chunks, head, tail
from adapters.markup import to_markdown, to_mrkdwn
from adapters.sending import Pacer, paced, refusal, retry_after
from bot import config
from bot.errors import DeliveryError
from bot.events import Event, Reply
from bot.store.sqlite import SqliteStore


def _event(n: int, text: str = "status X", event_id: str | None = None) -> Event:
    return Event(platform="chat", workspace="w", channel=f"C{n}", user_id="U1", text=text,
                 event_id=event_id if event_id is not None else f"Ev{n}")


async def test_answers_run_a_bounded_number_at_a_time_and_all_finish(sqlite_store: SqliteStore) -> None:
    running = peak = 0
    gate = asyncio.Event()

    async def handle(event: Event) -> list[Reply]:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await gate.wait()
        running -= 1
        return [Reply(text=f"done {event.channel}")]

    sent: list[str] = []

    async def send(reply: Reply) -> None:
        sent.append(reply.text)

    answers = Answers(handle, sqlite_store, platform="chat", limit=3)
    for n in range(10):
        answers.spawn(_event(n), send)
    await asyncio.sleep(0.1)
    assert peak == running == 3 and answers.pending == 10
    gate.set()
    await answers.close(timeout=5)
    assert peak == 3 and sorted(sent) == sorted(f"done C{n}" for n in range(10))
    assert answers.pending == 0


async def test_a_delivery_is_answered_once_and_a_crash_is_answered_politely(sqlite_store: SqliteStore) -> None:
    seen: list[str] = []

    async def handle(event: Event) -> list[Reply]:
        seen.append(event.text)
        if event.text == "boom":
            raise RuntimeError("the core fell over")
        return [Reply(text="ok")]

    sent: list[Reply] = []

    async def send(reply: Reply) -> None:
        sent.append(reply)

    answers = Answers(handle, sqlite_store, platform="chat")
    with capture_logs() as logs:
        for _ in range(3):
            answers.spawn(_event(1, event_id="EvSAME"), send)
        answers.spawn(_event(2, text="boom"), send)
        await answers.close()
    assert seen == ["status X", "boom"]
    assert [r.text for r in sent][0] == "ok" and "Something went wrong" in sent[1].text and sent[1].ephemeral
    assert sum(e["event"] == "chat_duplicate_dropped" for e in logs) == 2
    failure = next(e for e in logs if e["event"] == "chat_handler_failed")
    assert failure["ref"] in sent[1].text


async def test_a_failed_send_is_logged_and_spares_the_next_reply(sqlite_store: SqliteStore) -> None:
    async def handle(event: Event) -> list[Reply]:
        return [Reply(text="first"), Reply(text="second")]

    sent: list[str] = []

    async def send(reply: Reply) -> None:
        if reply.text == "first":
            raise DeliveryError("chat.post: channel_not_found", permanent=True, reason="channel_not_found")
        sent.append(reply.text)

    answers = Answers(handle, sqlite_store, platform="chat")
    with capture_logs() as logs:
        answers.spawn(_event(1), send)
        await answers.close()
    assert sent == ["second"]
    [failed] = [e for e in logs if e["event"] == "chat_post_failed"]
    assert failed["permanent"] and failed["reason"] == "chat.post: channel_not_found"


async def test_close_cancels_what_does_not_finish_in_time(sqlite_store: SqliteStore) -> None:
    async def handle(event: Event) -> list[Reply]:
        await asyncio.sleep(30)
        return []

    async def send(reply: Reply) -> None: ...

    answers = Answers(handle, sqlite_store, platform="chat", limit=1)
    answers.spawn(_event(1), send)
    answers.spawn(_event(2), send)
    with capture_logs() as logs:
        await answers.close(timeout=0.2)
    assert [(e["event"], e["count"]) for e in logs] == [("chat_replies_abandoned", 2)]


# --- sending ----------------------------------------------------------------------------------


@pytest.mark.parametrize("status, reason, transient, expected", [
    (429, None, (), ("ratelimited", False, 3.0)),
    (200, "ratelimited", (), ("ratelimited", False, 3.0)),
    (500, None, (), ("HTTP 500", False, None)),
    (404, None, (), ("HTTP 404", True, None)),
    (200, "channel_not_found", (), ("channel_not_found", True, None)),
    (200, "service_unavailable", {"service_unavailable"}, ("service_unavailable", False, None)),
    (412, None, {412, 502, 504}, ("HTTP 412", False, None)),
])
def test_refusals_are_classified(status: int, reason: str | None, transient: set[str | int],
                                 expected: tuple[str, bool, float | None]) -> None:
    error = refusal("post", status, {"Retry-After": "3"}, reason=reason, transient=transient)
    assert (error.reason, error.permanent, error.retry_after) == expected
    assert str(error) == f"post: {expected[0]}"


def test_retry_after_reads_seconds_and_survives_nonsense() -> None:
    assert retry_after({"retry-after": "2.5"}) == 2.5
    assert retry_after({"Retry-After": ["7"]}) == 7.0
    assert retry_after({"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}) == 1.0
    assert retry_after({}) == 1.0


async def test_paced_retries_transient_refusals_and_honours_retry_after() -> None:
    answers = [DeliveryError("x: ratelimited", retry_after=0.3), DeliveryError("x: HTTP 502"), "ok"]
    times: list[float] = []
    loop = asyncio.get_running_loop()

    async def attempt() -> str:
        times.append(loop.time())
        outcome = answers.pop(0)
        if isinstance(outcome, DeliveryError):
            raise outcome
        return outcome

    with capture_logs() as logs:
        assert await paced("x", "C1", attempt, pacer=Pacer(0.0), platform="chat", backoff=0.01) == "ok"
    assert times[1] - times[0] >= 0.29
    assert [e["event"] for e in logs] == ["chat_call_retry", "chat_call_retry"]


async def test_paced_gives_up_at_once_on_a_permanent_refusal_and_after_the_last_attempt() -> None:
    calls = 0

    async def refused() -> None:
        nonlocal calls
        calls += 1
        raise DeliveryError("x: channel_not_found", permanent=True)

    with pytest.raises(DeliveryError):
        await paced("x", "C1", refused, pacer=Pacer(0.0), platform="chat")
    assert calls == 1

    async def down() -> None:
        nonlocal calls
        calls += 1
        raise DeliveryError("x: HTTP 503")

    calls = 0
    with pytest.raises(DeliveryError):
        await paced("x", "C1", down, pacer=Pacer(0.0), platform="chat", attempts=3, backoff=0.001)
    assert calls == 3


async def test_pacer_spaces_one_conversation_not_others() -> None:
    pacer, loop = Pacer(0.2), asyncio.get_running_loop()
    started = loop.time()

    async def at(key: str) -> float:
        await pacer.wait(key)
        return loop.time() - started

    a1, a2, b1 = await asyncio.gather(at("A"), at("A"), at("B"))
    assert a1 < 0.1 and b1 < 0.1 and a2 >= 0.19


# --- fitting and dialects -----------------------------------------------------------------------


def test_head_tail_and_chunks_say_what_was_cut_in_the_reply_language() -> None:
    text = "\n".join(f"line {n}" for n in range(100))
    kept = head(text, 120, "pt")
    assert len(kept) <= 120 and kept.startswith("line 0\n") and kept.endswith("linhas cortadas)")
    assert tail(text, 60).startswith("… (") and tail(text, 60).endswith("line 99")
    assert "earlier lines cut" in tail(text, 60) and "linhas anteriores cortadas" in tail(text, 60, "pt")
    assert all(len(c) <= 50 for c in chunks(text, 50)) and "\n".join(chunks(text, 50)) == text


def test_dialects_convert_bold_for_each_platform() -> None:
    assert to_markdown("*EXTRACT01* is `ABEND`; 2 * 3", "mrkdwn") == "**EXTRACT01** is `ABEND`; 2 * 3"
    assert to_mrkdwn("**EXTRACT01** is down", "markdown") == "*EXTRACT01* is down"
    assert to_markdown("*as is*", "plain") == "*as is*"


# --- every settings slice names its own secrets ---------------------------------------------------


def test_every_hidden_setting_of_every_slice_is_a_secret_the_scrubber_gets() -> None:
    settings = config.load_settings({
        "TWS_URL": "http://tws.invalid/twsd", "TWS_USER": "u", "TWS_PASSWORD": "tws-password-1",
        "TWS_API_KEY": "tws-api-key-0001", "REDIS_URL": "redis://:redis-password-1@127.0.0.1:6379/0",
        "RESYNC_API_TOKEN": "api-token-00001", "SLACK_BOT_TOKEN": "xoxb-bot-token-1",
        "SLACK_SIGNING_SECRET": "signing-secret-1", "SLACK_APP_TOKEN": "xapp-app-token-1",
        "LLM_MODEL": "openai/x", "LLM_API_KEY": "llm-api-key-0001"})
    secrets = settings.secrets()
    for part in (getattr(settings, f.name) for f in dataclasses.fields(settings)):
        if not dataclasses.is_dataclass(part):
            continue
        for f in dataclasses.fields(part):
            value = getattr(part, f.name)
            if f.repr or not isinstance(value, str):
                continue
            assert any(s in value for s in secrets), f"{type(part).__name__}.{f.name} is hidden but not scrubbed"
