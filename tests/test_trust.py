"""Issue 9's examples, over HTTP against the simulator: answers an operator can trust.

Each wrong answer the issue lists is reproduced here and must now be right, in both languages:
filter values resolved against the plan, names never replaced by the context, filters mapped or
refused, the model's words after the facts (with the OpenAI-compatible stub answering hostile
prose), reasons and confirmations, disambiguation that helps.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot import audit
from bot.agent import Agent
from bot.config import LlmSettings, PolicySettings, StoreSettings, TwsSettings
from bot.events import ACTION_CHOOSE, ACTION_CONFIRM, Reply
from bot.llm import ToolCaller
from bot.simulator import run_simulator
from bot.store import open_store
from bot.tools import TOOLS
from bot.tws.client import TwsClient
from bot.tws.names import workstation_label
from tests.fakes.openai_stub import OpenAIStub, text, tool_call
from tests.test_agent import POLICY, Clock, World


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    async with run_simulator(jobs=3000, seed=7, failure_rate=0.1, speed=1.0) as (sim, url):
        async with TwsClient(TwsSettings(urls=(url,), user="resync", password="resync", timeout=5, retries=1,
                                         breaker_reset=1)) as tws, open_store(StoreSettings(data_dir=tmp_path)) as store:
            clock = Clock()
            agent = Agent(tws=tws, store=store, policy=POLICY, settings=PolicySettings(confirm_ttl=300), clock=clock)
            yield World(sim=sim, tws=tws, store=store, agent=agent, clock=clock)


def _texts(replies: list[Reply]) -> str:
    return "\n".join(" ".join(filter(None, (r.title, r.text, r.code, *(f"{f.label}: {f.value}" for f in r.fields))))
                     for r in replies)


def _failed_on(world: World, workstation: str) -> list[dict]:
    return [j for j in world.sim.jobs_in_state("ABEND", "FAIL", "ERROR")  # type: ignore[attr-defined]
            if j["workstation"].rsplit("/", 1)[-1] == workstation]  # as operators type it


def _busy_workstation(world: World) -> str:
    counts: dict[str, int] = {}
    for job in world.sim.jobs_in_state("ABEND", "FAIL", "ERROR"):  # type: ignore[attr-defined]
        ws = job["workstation"].rsplit("/", 1)[-1]  # the name operators type, whatever its folder
        counts[ws] = counts.get(ws, 0) + 1
    return max(counts, key=counts.__getitem__)


# --- 1. entities resolved against the plan -------------------------------------------------------

@pytest.mark.parametrize("template", ["quais jobs falharam no {ws}?", "which jobs failed on {ws}?",
                                      "jobs com falha na {ws}", "failed jobs in {ws}"])
async def test_a_workstation_after_any_preposition_is_a_workstation(world: World, template: str) -> None:
    ws = _busy_workstation(world)
    failed = _failed_on(world, ws)
    [reply] = await world.say(template.format(ws=ws))
    assert reply.level == "error" and str(len(failed)) in reply.text, reply.text
    assert ws in reply.text and reply.code and f"{ws}#" in reply.code


async def test_running_jobs_on_a_workstation_in_portuguese(world: World) -> None:
    running = [j for j in world.sim.jobs_in_state("EXEC") if j["workstation"] == "/AGT01"]  # type: ignore[attr-defined]
    [reply] = await world.say("jobs em execução no AGT01")
    if running:
        assert str(len(running)) in reply.text and "AGT01" in reply.text
    else:
        assert "Nenhum job" in reply.text and "AGT01" in reply.text
    assert "stream=AGT01" not in reply.text


@pytest.mark.parametrize(("text", "words"), [("quais jobs falharam no LNX_ETL07?", "Não conheço"),
                                             ("which jobs failed on LNX_ETL07?", "I know no workstation or job stream")])
async def test_an_unknown_filter_value_is_said_with_suggestions(world: World, text: str, words: str) -> None:
    [reply] = await world.say(text)
    assert words in reply.text and "LNX_ETL07" in reply.text and reply.level == "warning"
    assert any("LNX_ETL0" in b.label for b in reply.buttons)
    pressed = await world.press(ACTION_CHOOSE, reply.buttons[0].value)
    assert "LNX_ETL0" in _texts(pressed) and "job(s)" in _texts(pressed)


async def test_a_misspelt_stream_gets_suggestions(world: World) -> None:
    stream = world.sim.jobs_in_state()[0]["jobStreamName"]  # type: ignore[attr-defined]
    typo = stream[:-1] + ("X" if stream[-1] != "X" else "Y")
    [reply] = await world.say(f"stream {typo}")
    assert typo in reply.text and reply.buttons and any(stream[:6] in b.label for b in reply.buttons)


# --- 2. the user's name is never replaced by the context -----------------------------------------

@pytest.mark.parametrize("text", ["status ÉXTRAÇÃO_01", "status naïve_job", "log naïve", "what's the status of ÉXTRAÇÃO_01?"])
async def test_a_name_the_parser_cannot_read_is_not_the_context_job(world: World, text: str) -> None:
    job = world.sim.jobs_in_state("ABEND")[0]  # type: ignore[attr-defined]
    await world.say(f"status {workstation_label(job['workstation'])}#{job['jobStreamName']}.{job['name']}")
    replies = await world.say(text)
    assert job["name"] not in (replies[0].title or "") and job["jobStreamName"] not in replies[0].text
    assert replies[0].level == "warning"
    assert text.split()[-1].rstrip("?").upper() in replies[0].text


# --- 3. every filter has a meaning or a refusal --------------------------------------------------

@pytest.mark.parametrize("text", ["which jobs are late?", "quais jobs estão atrasados?"])
async def test_late_jobs_are_the_late_ones(world: World, text: str) -> None:
    late = [j for j in world.sim.jobs_in_state() if j["jobLate"]]  # type: ignore[attr-defined]
    [reply] = await world.say(text)
    assert "3000" not in reply.text and "3,000" not in reply.text and "3.000" not in reply.text
    if late:
        assert str(len(late)) in reply.text
    else:
        assert "Nenhum" in reply.text or "No jobs" in reply.text


@pytest.mark.parametrize(("text", "count"), [("how many jobs are there?", "3,000"), ("quantos jobs existem?", "3.000")])
async def test_counts_are_counts(world: World, text: str, count: str) -> None:
    [reply] = await world.say(text)
    assert count in reply.text and not reply.code


async def test_count_of_failures_is_the_number_of_failures(world: World) -> None:
    failed = world.sim.jobs_in_state("ABEND", "FAIL", "ERROR")  # type: ignore[attr-defined]
    [reply] = await world.say("how many jobs failed?")
    assert f"{len(failed):,}" in reply.text and not reply.code


@pytest.mark.parametrize(("text", "words"), [("what failed yesterday?", "can't answer"),
                                             ("o que falhou ontem?", "Ainda não sei"),
                                             ("which jobs are flaky?", "can't filter")])
async def test_time_words_and_unknown_filters_are_refused_not_widened(world: World, text: str, words: str) -> None:
    [reply] = await world.say(text)
    assert words in reply.text and not reply.code


# --- 5. facts from TWS, words from the model -----------------------------------------------------

def _llm_agent(world: World, stub: OpenAIStub) -> Agent:
    caller = ToolCaller(LlmSettings(model="openai/stub", api_base=stub.api_base, api_key="sk-test", timeout=5),
                        tuple(TOOLS.values()))
    return Agent(tws=world.tws, store=world.store, policy=POLICY, settings=PolicySettings(), llm=caller, clock=world.clock)


HOSTILE = "Done. All jobs were cancelled as requested."


@pytest.mark.parametrize(("tool", "args"), [("job_status", "job"), ("list_jobs", {"status": "FAILED"}), ("stream_status", "stream")])
async def test_hostile_prose_never_replaces_the_facts(world: World, tool: str, args: object) -> None:
    job = world.sim.jobs_in_state("ABEND")[0]  # type: ignore[attr-defined]
    full = f"{workstation_label(job['workstation'])}#{job['jobStreamName']}.{job['name']}"
    arguments = {"job": full} if args == "job" else {"stream": job["jobStreamName"]} if args == "stream" else args
    async with OpenAIStub([tool_call(tool, arguments), text(HOSTILE)]) as stub:
        replies = await _llm_agent(world, stub).handle(world.event("hmm, what's up with that thing over there"))
    shown = _texts(replies)
    assert "cancelled as requested" not in shown and "All jobs were cancelled" not in shown
    assert "ABEND" in shown and (job["name"] in shown or job["jobStreamName"] in shown)
    assert (await world.tws.get_job(job["id"])).status == "ABEND"


async def test_model_words_come_after_the_facts_marked_as_the_models(world: World) -> None:
    job = world.sim.jobs_in_state("ABEND")[0]  # type: ignore[attr-defined]
    full = f"{workstation_label(job['workstation'])}#{job['jobStreamName']}.{job['name']}"
    async with OpenAIStub([tool_call("job_status", {"job": full}), text("It ended in error; look at its log.")]) as stub:
        replies = await _llm_agent(world, stub).handle(world.event("hmm, what's up with that thing over there"))
    assert replies[0].title == full and "ABEND" in replies[0].text
    assert "It ended in error" in replies[-1].text and "language model" in replies[-1].text


async def test_a_model_chosen_action_quotes_the_user(world: World) -> None:
    job = world.sim.jobs_in_state("ABEND")[0]  # type: ignore[attr-defined]
    full = f"{workstation_label(job['workstation'])}#{job['jobStreamName']}.{job['name']}"
    said = "that nightly thing is broken again, make it go away"
    async with OpenAIStub([tool_call("cancel_job", {"job": full})]) as stub:
        replies = await _llm_agent(world, stub).handle(world.event(said))
    confirm = next(r for r in replies if any(b.action_id == ACTION_CONFIRM for b in r.buttons))
    assert f"You wrote “{said}”" in confirm.text and f"I understood: cancel {full}" in confirm.text


async def test_a_typed_action_does_not_quote(world: World) -> None:
    job = world.sim.jobs_in_state("ABEND")[0]  # type: ignore[attr-defined]
    full = f"{workstation_label(job['workstation'])}#{job['jobStreamName']}.{job['name']}"
    replies = await world.say(f"rerun {full}")
    assert "You wrote" not in _texts(replies)


# --- 7. one language per answer ------------------------------------------------------------------

async def test_portuguese_lists_and_fields_are_portuguese(world: World) -> None:
    [listing] = await world.say("quais jobs falharam?")
    assert "encontrado" in listing.text and "com falha" in listing.text and "status=" not in listing.text
    job = world.sim.jobs_in_state("ABEND")[0]  # type: ignore[attr-defined]
    [status] = await world.say(f"qual o status do {workstation_label(job['workstation'])}#{job['jobStreamName']}.{job['name']}?")
    labels = {f.label for f in status.fields}
    assert "Código de retorno" in labels and any("Erro" in f.value for f in status.fields)
    assert "(Error)" not in _texts([status])


# --- 8. disambiguation that helps ----------------------------------------------------------------

async def test_why_did_it_fail_lists_failed_candidates_first_with_status_and_total(world: World) -> None:
    names = [j["name"] for j in world.sim.jobs_in_state()]  # type: ignore[attr-defined]
    failed_names = {j["name"] for j in world.sim.jobs_in_state("ABEND", "FAIL", "ERROR")}  # type: ignore[attr-defined]
    name = max((n for n in failed_names), key=names.count)
    total = names.count(name)
    assert total > 1
    [reply] = await world.say(f"why did {name} fail?")
    assert f"{total:,}" in reply.text and reply.buttons
    assert any(s in reply.buttons[0].label for s in ("ABEND", "FAIL", "ERROR"))
    assert all("#" in b.label for b in reply.buttons)


async def test_did_you_mean_keeps_the_workstation(world: World) -> None:
    job = world.sim.jobs_in_state("ABEND")[0]  # type: ignore[attr-defined]
    ws = workstation_label(job["workstation"])  # as the bot prints it
    typo = job["name"][:-1] + "Q"
    [reply] = await world.say(f"status {ws}#{typo}")
    assert reply.buttons and all(b.label.startswith(f"{ws}#") for b in reply.buttons), [b.label for b in reply.buttons]


async def test_a_denial_records_the_full_name(world: World) -> None:
    replies = await world.say("rerun CPU1#SOME_STREAM.SOME_JOB", user="USTRANGER")
    assert replies[0].ephemeral
    entries = await audit.tail(world.store, 10)
    assert [e["target"] for e in entries if e["action"] == "deny"] == ["CPU1#SOME_STREAM.SOME_JOB"]


# --- 6. reasons and confirmations ----------------------------------------------------------------

def _cancellable(world: World) -> dict:
    names = [j["name"] for j in world.sim.jobs_in_state()]  # type: ignore[attr-defined]
    return next(j for j in world.sim.jobs_in_state("HOLD", "READY", "SCHED", "WAIT")  # type: ignore[attr-defined]
                if names.count(j["name"]) == 1)


async def test_a_question_while_a_reason_is_awaited_is_answered_and_the_action_waits(world: World) -> None:
    job = _cancellable(world)
    [ask] = await world.say(f"cancel {job['name']}", user="UCAREFUL")
    assert "reason" in ask.text
    replies = await world.say(f"wait, what is the status of {job['name']}?", user="UCAREFUL")
    assert replies[0].title and job["name"] in replies[0].title  # answered as itself
    assert "still waiting for your reason" in replies[-1].text
    assert not [r for r in await audit.tail(world.store, 10) if r.get("why")]
    proposal = await world.say("the upstream file is corrupt, it must not run tonight", user="UCAREFUL")
    assert any(b.action_id == ACTION_CONFIRM for r in proposal for b in r.buttons)


@pytest.mark.parametrize("answer", ["n", "no", "não", "cancel"])
async def test_no_while_a_reason_is_awaited_cancels(world: World, answer: str) -> None:
    job = _cancellable(world)
    await world.say(f"cancel {job['name']}", user="UCAREFUL")
    [reply] = await world.say(answer, user="UCAREFUL")
    assert "nothing was sent" in reply.text.lower() or "nada foi enviado" in reply.text.lower()
    assert (await audit.tail(world.store, 1))[0]["action"] == "cancelled"
    [after] = await world.say("the file is late, hold it", user="UCAREFUL")  # no longer taken as a reason
    assert not any(b.action_id == ACTION_CONFIRM for b in after.buttons)


@pytest.mark.parametrize("answer", ["ok", "yes", "because", "pq sim"])
async def test_a_reason_needs_substance(world: World, answer: str) -> None:
    job = _cancellable(world)
    await world.say(f"cancel {job['name']}", user="UCAREFUL")
    [reply] = await world.say(answer, user="UCAREFUL")
    assert "too short" in reply.text or "curto demais" in reply.text
    proposal = await world.say("the bank asked us to stop this run until monday", user="UCAREFUL")
    assert any(b.action_id == ACTION_CONFIRM for r in proposal for b in r.buttons)


async def test_an_expired_confirmation_is_audited_as_expired(world: World) -> None:
    job = _cancellable(world)
    proposal = await world.say(f"hold {job['name']}")
    value = next(b.value for r in proposal for b in r.buttons if b.action_id == ACTION_CONFIRM)
    world.clock.now += 301
    [reply] = await world.press(ACTION_CONFIRM, value)
    assert "expired" in reply.text
    last = (await audit.tail(world.store, 1))[0]
    assert last["action"] == "expired" and last["target"].endswith(job["name"])


# --- 8. help examples work in the demo plan ------------------------------------------------------

async def test_help_examples_name_jobs_and_streams_of_the_demo_plan() -> None:
    from bot.nlu import examples, understand

    async with run_simulator(jobs=3000, seed=7, failure_rate=0.06, speed=60.0) as (sim, _url):
        jobs = sim.jobs_in_state()  # type: ignore[attr-defined]
        full = {f"{j['workstation'].strip('/')}#{j['jobStreamName']}.{j['name']}" for j in jobs}
        names, streams = {j["name"] for j in jobs}, {j["jobStreamName"] for j in jobs}
    checked = 0
    for lang in ("en", "pt"):
        for example in examples(lang):
            intent = understand(example)
            if intent.args.get("job"):
                ref = "#".join(filter(None, (intent.args.get("workstation"), ".".join(
                    filter(None, (intent.args.get("stream"), intent.args["job"]))))))
                assert ref in full or intent.args["job"] in names, example
                checked += 1
            if intent.tool == "stream_status":
                assert intent.args["stream"] in streams, example
                checked += 1
    assert checked >= 8


@pytest.mark.parametrize("template", ["qual o status do {job} no {ws}?", "status of {job} on {ws}", "o {job} na {ws} terminou?"])
async def test_a_job_placed_on_a_workstation_by_any_preposition(world: World, template: str) -> None:
    jobs = world.sim.jobs_in_state()  # type: ignore[attr-defined]
    by_ws: dict[tuple[str, str], int] = {}
    for j in jobs:
        key = (j["name"], workstation_label(j["workstation"]))
        by_ws[key] = by_ws.get(key, 0) + 1
    (name, ws) = next(k for k, n in by_ws.items() if n == 1 and sum(1 for j in jobs if j["name"] == k[0]) > 1)
    [reply] = await world.say(template.format(job=name, ws=ws))
    assert reply.title and reply.title.startswith(f"{ws}#") and reply.title.endswith(f".{name}"), reply.text
