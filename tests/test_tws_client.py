"""The TWS client against the real simulator over HTTP (and, for wire variants the simulator does
not produce, a loopback fake speaking the same protocol): every operation and every fault."""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import socket
import ssl
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from structlog.testing import capture_logs

from bot.config import TwsSettings
from bot.errors import (
    AmbiguousJob, InvalidState, JobNotFound, OutcomeUnknown, TwsAuthError, TwsError, TwsUnavailable,
)
from bot.simulator import Simulator, run_simulator
from bot.tws import names, wire
from bot.tws.client import TwsClient
from bot.tws.names import JobRef
from tests.fakes.tws_proxy import TwsProxy

PASSWORD = "resync"  # the simulator's default, only ever used against loopback
API_KEY = f"key-{uuid.uuid4().hex}"
Sim = tuple[Simulator, str]


@pytest.fixture
async def sim() -> AsyncIterator[Sim]:
    async with run_simulator(jobs=1200, seed=11, speed=0, api_key=API_KEY) as pair:
        yield pair


def settings(*urls: str, **overrides: Any) -> TwsSettings:
    values: dict[str, Any] = dict(urls=urls, user="resync", password=PASSWORD, timeout=2.0, retries=2,
                                  breaker_fail_max=3, breaker_reset=0.3)
    return TwsSettings(**{**values, **overrides})


def client(*urls: str, observe: Any = None, **overrides: Any) -> TwsClient:
    return TwsClient(settings(*urls, **overrides), backoff=0.01, observe=observe)


def requests(sim: Simulator, kind: str) -> int:
    return sim.stats["kinds"].get(kind, {}).get("requests", 0)


def raw_jobs(sim: Simulator, *states: str) -> list[dict[str, Any]]:
    return sim.jobs_in_state(*states)


def ids(items: Any) -> set[str]:
    return {i.id if hasattr(i, "id") else i["id"] for i in items}


def dead_url() -> str:
    """A loopback port nobody listens on: connections are refused before anything is sent."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/twsd"


# --- queries ----------------------------------------------------------------------------------

async def test_query_follows_every_page(sim: Sim) -> None:
    simulator, url = sim
    async with client(url) as tws:
        jobs = await tws.query_jobs(page_size=100)
    assert len(jobs) == 1200
    assert ids(jobs) == ids(raw_jobs(simulator))
    assert requests(simulator, "job_query") == 12


@pytest.mark.parametrize(("filters", "keep"), [
    ({"name": "crm_publish"}, lambda j: j["name"] == "CRM_PUBLISH"),
    ({"name": "CRM@"}, lambda j: j["name"].startswith("CRM")),
    ({"name": "*_02"}, lambda j: j["name"].endswith("_02")),
    ({"workstation": "AGT02"}, lambda j: j["workstation"] == "/AGT02"),
    ({"workstation": "/AGT02", "status": "SUCC"}, lambda j: j["workstation"] == "/AGT02" and j["internalStatus"] == "SUCC"),
    ({"workstation": "lnx_etl01"}, lambda j: j["workstation"] == "/ETL/LNX_ETL01"),  # a foldered one, by its name
    ({"workstation": "/ETL/LNX_ETL01"}, lambda j: j["workstation"] == "/ETL/LNX_ETL01"),
    ({"workstation": "ETL/LNX_ETL01"}, lambda j: j["workstation"] == "/ETL/LNX_ETL01"),  # the slash lost on the way
    ({"workstation": "/BR/SP/AGT03"}, lambda j: j["workstation"] == "/BR/SP/AGT03"),
    ({"workstation": "LNX_ETL@"}, lambda j: j["workstation"].startswith("/ETL/LNX_ETL")),
    ({"status": "FAILED"}, lambda j: j["internalStatus"] in {"ABEND", "FAIL", "ERROR"}),
    ({"status": "failed"}, lambda j: j["internalStatus"] in {"ABEND", "FAIL", "ERROR"}),
    ({"status": ["HOLD", "READY"]}, lambda j: j["internalStatus"] in {"HOLD", "READY"}),
])
async def test_filters_match_the_plan(sim: Sim, filters: dict[str, Any], keep: Any) -> None:
    simulator, url = sim
    expected = {j["id"] for j in raw_jobs(simulator) if keep(j)}
    assert expected
    async with client(url) as tws:
        assert ids(await tws.query_jobs(**filters)) == expected
        assert await tws.count_jobs(**filters) == len(expected)


async def test_stream_filter_and_models(sim: Sim) -> None:
    simulator, url = sim
    sample = next(j for j in raw_jobs(simulator, "ABEND") if j["dependencies"])
    async with client(url) as tws:
        jobs = await tws.query_jobs(stream=sample["jobStreamName"])
        job = next(j for j in jobs if j.id == sample["id"])
    assert ids(jobs) == {j["id"] for j in raw_jobs(simulator) if j["jobStreamName"] == sample["jobStreamName"]}
    assert job.workstation_path == sample["workstation"] and job.workstation == names.workstation_label(sample["workstation"])
    assert job.status == "ABEND" and job.failed and job.coarse_status == "Error"
    assert job.return_code == sample["returnCode"] and job.run_id is None and "runId" not in sample  # not documented
    assert job.start is not None and job.start.tzinfo is not None and job.end is not None
    assert job.dependencies[0].job_id == sample["dependencies"][0]["jobId"]
    assert job.dependencies[0].stream_id == sample["dependencies"][0]["jobStreamId"]
    assert job.full_name == f"{job.workstation}#{job.stream}.{job.name}"


async def test_get_job_and_unknown_ids(sim: Sim) -> None:
    simulator, url = sim
    sample = raw_jobs(simulator, "SUCC")[0]
    async with client(url) as tws:
        job = await tws.get_job(sample["id"])
        assert (job.id, job.name, job.status) == (sample["id"], sample["name"], "SUCC")
        with pytest.raises(JobNotFound, match="AWSBIO006E"):
            await tws.get_job(str(uuid.uuid4()))
        before = simulator.stats["requests"]
        with pytest.raises(JobNotFound):
            await tws.get_job("../engine/info")  # never reaches another path
        assert simulator.stats["requests"] == before


async def test_job_log_tail_costs_one_request(sim: Sim) -> None:
    simulator, url = sim
    sample = raw_jobs(simulator, "ABEND")[0]
    async with client(url) as tws:
        whole = await tws.job_log(sample["id"], tail=None)
        simulator.reset_stats()
        tail = await tws.job_log(sample["id"], tail=10)  # by job id: no job read first
        assert simulator.stats["requests"] == 1 and requests(simulator, "job_log") == 1
        default = await tws.job_log(sample["id"])
    lines = whole.text.split("\n")
    assert whole.total_lines == len(lines) > 10 and not whole.truncated and whole.source == wire.LOG_BY_FILTER
    assert "Exit Status" in whole.text and lines[0].startswith("=")
    assert tail.text.split("\n") == lines[-10:]
    # text/plain says nothing about the lines before the tail: unknown, not made up
    assert tail.first_line is None and tail.total_lines is None and tail.maybe_truncated and not tail.truncated
    assert default.text.split("\n") == lines[-200:]


async def test_job_log_errors_and_no_run(sim: Sim) -> None:
    _, url = sim
    async with client(url) as tws:
        with pytest.raises(JobNotFound):
            await tws.job_log(str(uuid.uuid4()), run_id=str(uuid.uuid4()))
        with pytest.raises(JobNotFound):
            await tws.job_log(str(uuid.uuid4()))


async def test_successors(sim: Sim) -> None:
    simulator, url = sim
    everything = raw_jobs(simulator)
    fan_in = Counter(d["jobId"] for j in everything for d in j["dependencies"])
    pred_id = next(i for i, n in fan_in.items() if n >= 2)
    expected = {j["id"] for j in everything if any(d["jobId"] == pred_id for d in j["dependencies"])}
    async with client(url) as tws:
        pred = await tws.get_job(pred_id)
        assert ids(await tws.successors(pred)) == expected
    oql = [r["oql_fields"] for r in simulator.requests if r["path"] == "/api/v2/plan/job" and r["oql_fields"]]
    assert oql == [["dependencies.jobStreamId"]]  # the documented query, never dependencies.jobId


async def test_successors_of_many_jobs_in_one_query_per_40(sim: Sim) -> None:
    simulator, url = sim
    everything = raw_jobs(simulator)
    by_id = {j["id"]: j for j in everything}
    expected: dict[str, set[str]] = {j["id"]: set() for j in everything}
    for job in everything:
        for dep in job["dependencies"]:
            expected[dep["jobId"]].add(job["id"])
    # A successor of two of them, whose predecessors land in different chunks of 40.
    shared = next(j for j in everything if len({d["jobId"] for d in j["dependencies"]}) >= 2)
    first, second = list(dict.fromkeys(d["jobId"] for d in shared["dependencies"]))[:2]
    lonely = next(i for i, found in expected.items() if not found and i not in (first, second))
    others = [i for i, found in expected.items() if found and i not in (first, second)][:60]
    wanted = [first, *others[:39], second, *others[39:], lonely]
    async with client(url) as tws:
        jobs = [await tws.get_job(job_id) for job_id in wanted]
        streams = {job.stream_id for job in jobs}
        simulator.reset_stats()
        found = await tws.successors_of([*jobs, jobs[0]])  # a job asked twice is looked up once
        queries = -(-len(streams) // 40)
        assert requests(simulator, "job_query") == queries < len(wanted) // 10
        assert await tws.successors_of([]) == {} and simulator.stats["requests"] == queries
    assert list(found) == wanted
    assert {job_id: ids(succ) for job_id, succ in found.items()} == {job_id: expected[job_id] for job_id in wanted}
    assert all(len(succ) == len(ids(succ)) for succ in found.values())  # each successor once per job
    assert shared["id"] in ids(found[first]) & ids(found[second]) and found[lonely] == []
    assert all(s.status == by_id[s.id]["internalStatus"] for succ in found.values() for s in succ)
    assert wire.successors_of_filter(["a", "o'k"]) == "(dependencies.jobStreamId = 'a' OR dependencies.jobStreamId = 'o''k')"


async def test_streams(sim: Sim) -> None:
    simulator, url = sim
    async with client(url) as tws:
        streams = await tws.query_streams()
        assert len(streams) == len(simulator.plan.streams)
        one = streams[0]
        assert [s.id for s in await tws.query_streams(name=one.name)] == [one.id]
        on_ws = await tws.query_streams(workstation=one.workstation, status=one.status)
        assert one.id in ids(on_ws) and {(s.workstation, s.status) for s in on_ws} == {(one.workstation, one.status)}
        assert await tws.get_stream(one.id) == one
        with pytest.raises(JobNotFound):
            await tws.get_stream(str(uuid.uuid4()))
        ready = next(s for s in streams if s.status == "READY")
        held = await tws.stream_action(ready.id, "hold")
        assert held.target_id == ready.id and held.messages[0].startswith("AWSBHU")
        assert (await tws.get_stream(ready.id)).status == "HOLD"
        await tws.stream_action(ready.id, "release")
        with pytest.raises(InvalidState, match="AWSBIN076E"):
            await tws.stream_action(ready.id, "release")
        with pytest.raises(ValueError):
            await tws.stream_action(ready.id, "rerun")


async def test_engine_info(sim: Sim) -> None:
    _, url = sim
    async with client(url) as tws:
        info = await tws.engine_info()
    assert (info.version, info.engine_type, info.timezone, info.master) == ("10.2.3", "DISTRIBUTED", "UTC", url)
    assert info.plan_start is not None and info.plan_end is not None and info.plan_start < info.plan_end


async def test_resolve_job(sim: Sim) -> None:
    simulator, url = sim
    everything = raw_jobs(simulator)
    by_name = Counter(j["name"] for j in everything)
    unique = next(j for j in everything if by_name[j["name"]] == 1)
    shared = next(n for n, c in by_name.items() if c > 1)
    in_one_stream = next(j for j in everything if j["name"] == shared)
    async with client(url) as tws:
        assert (await tws.resolve_job(JobRef(job=unique["name"]))).id == unique["id"]
        exact = await tws.resolve_job(JobRef(job=shared, stream=in_one_stream["jobStreamName"],
                                             workstation=in_one_stream["workstation"].lstrip("/")))
        assert exact.id == in_one_stream["id"]
        with pytest.raises(AmbiguousJob) as ambiguous:
            await tws.resolve_job(JobRef(job=shared))
        assert ids(ambiguous.value.candidates) == {j["id"] for j in everything if j["name"] == shared}
        with pytest.raises(JobNotFound, match="NO_SUCH_JOB"):
            await tws.resolve_job(JobRef(job="NO_SUCH_JOB"))
        with pytest.raises(JobNotFound):
            await tws.resolve_job(JobRef(job=unique["name"], stream="NOT_ITS_STREAM"))
        similar = await tws.similar_job_names(unique["name"][:-1] + "Q")
    assert unique["name"] in similar and len(similar) <= 5


# --- actions ----------------------------------------------------------------------------------

async def test_rerun_and_confirm(sim: Sim) -> None:
    simulator, url = sim
    failed, other = raw_jobs(simulator, "ABEND")[:2]
    async with client(url) as tws:
        result = await tws.rerun(failed["id"])
        assert (result.action, result.target_id) == ("rerun", failed["id"])
        assert result.new_run_id is None  # the documented answer carries no run id
        after = await tws.get_job(failed["id"])
        assert after.rerun_count == failed["rerunCount"] + 1 and after.run_id is None
        confirmed = await tws.job_action(other["id"], "confirm-succ")
        assert confirmed.new_run_id is None and "AWSBHU616I" in confirmed.messages[0]
        assert (await tws.get_job(other["id"])).status == "SUCC"


async def test_hold_release_cancel_kill(sim: Sim) -> None:
    simulator, url = sim
    waiting, doomed = raw_jobs(simulator, "SCHED")[:2]
    running = raw_jobs(simulator, "EXEC")[0]
    async with client(url) as tws:
        await tws.hold(waiting["id"])
        assert (await tws.get_job(waiting["id"])).status == "HOLD"
        await tws.release(waiting["id"])
        assert (await tws.get_job(waiting["id"])).status != "HOLD"
        await tws.cancel(doomed["id"])
        assert (await tws.get_job(doomed["id"])).status == "CANCL"
        await tws.kill(running["id"])
        assert (await tws.get_job(running["id"])).status == "ABEND"


async def test_action_in_wrong_state_and_unknown_job(sim: Sim) -> None:
    simulator, url = sim
    done = raw_jobs(simulator, "SUCC")[0]
    async with client(url) as tws:
        with pytest.raises(InvalidState, match="AWSBIN076E.*SUCC"):
            await tws.hold(done["id"])
        with pytest.raises(JobNotFound, match="AWSBIO006E"):
            await tws.rerun(str(uuid.uuid4()))
        with pytest.raises(ValueError):
            await tws.job_action(done["id"], "delete")
        assert tws.breaker_state == "closed"


# --- faults -----------------------------------------------------------------------------------

async def test_latency_beyond_timeout_fails_a_read_after_retries(sim: Sim) -> None:
    simulator, url = sim
    simulator.set_faults(latency_ms=800)
    async with client(url, timeout=0.2, retries=1) as tws:
        started = time.monotonic()
        with pytest.raises(TwsUnavailable, match="timed out"):
            await tws.engine_info()
    assert time.monotonic() - started < 1.0
    assert simulator.stats["injected"]["latency"] == 2


async def test_lost_answer_to_an_action_is_outcome_unknown_and_not_retried(sim: Sim) -> None:
    simulator, url = sim
    failed = raw_jobs(simulator, "ABEND")[0]
    simulator.set_faults(latency_ms=500)
    async with client(url, timeout=0.2, retries=3) as tws:
        with pytest.raises(OutcomeUnknown, match="check the current state"):
            await tws.rerun(failed["id"])
        assert simulator.stats["injected"]["latency"] == 1
        await asyncio.sleep(0.5)  # the server finishes what it was sent
        simulator.clear_faults()
        # This is why the caller must check: the rerun did happen, exactly once.
        assert (await tws.get_job(failed["id"])).rerun_count == failed["rerunCount"] + 1
    assert requests(simulator, "job_action") == 1


async def test_5xx_is_retried_until_a_read_succeeds(sim: Sim) -> None:
    simulator, url = sim
    sample = raw_jobs(simulator)[0]
    simulator.set_faults(error_rate=0.5)
    seen: list[tuple[str, str, float, str | None]] = []
    async with client(url, retries=12, observe=lambda *a: seen.append(a)) as tws:
        for _ in range(10):
            assert (await tws.get_job(sample["id"])).id == sample["id"]
    errors = simulator.stats["injected"]["errors"]
    assert errors > 0
    assert requests(simulator, "job_get") == 10 + errors
    assert [(op, method, error) for op, method, _, error in seen] == [("get_job", "GET", None)] * 10


async def test_5xx_exhausting_retries(sim: Sim) -> None:
    simulator, url = sim
    simulator.set_faults(error_rate=1.0, error_status=500)
    async with client(url, retries=2) as tws:
        with capture_logs() as logs, pytest.raises(TwsUnavailable, match="^TWS answered: AWSJCO005E"):
            await tws.engine_info()
    assert requests(simulator, "engine") == 3
    retries = [e for e in logs if e["event"] == "tws_retry"]
    assert [e["attempt"] for e in retries] == [1, 2]
    # each attempt its own Request-Id, all tied to the first by the correlation id
    sent = [r for r in simulator.requests if r["path"] == "/api/v2/engine/info"]
    assert len(sent) == 3 and len({e["request_id"] for e in retries}) == 2
    assert {e["correlation_id"] for e in retries} == {next(e for e in logs if e["event"] == "tws_request")["request_id"]}


async def test_5xx_with_a_tws_message_on_an_action_is_an_answer_sent_once(sim: Sim) -> None:
    simulator, url = sim
    failed = raw_jobs(simulator, "ABEND")[0]
    simulator.set_faults(error_rate=1.0)
    async with client(url, retries=3) as tws:
        with pytest.raises(TwsUnavailable, match="^TWS answered: AWSJCO005E") as refused:
            await tws.rerun(failed["id"])
    assert not isinstance(refused.value, OutcomeUnknown) and "lost" not in str(refused.value)
    assert requests(simulator, "job_action") == 1


async def test_dropped_connections(sim: Sim) -> None:
    simulator, url = sim
    failed = raw_jobs(simulator, "ABEND")[0]
    simulator.set_faults(drop_rate=1.0)
    async with client(url, retries=2) as tws:
        with pytest.raises(TwsUnavailable):
            await tws.get_job(failed["id"])
        # exactly retries + 1: aiohttp's own hidden resend is switched off
        assert requests(simulator, "job_get") == 3
        with pytest.raises(OutcomeUnknown):
            await tws.rerun(failed["id"])
        assert requests(simulator, "job_action") == 1
        assert simulator.stats["injected"]["drops"] == 4
    simulator.set_faults(drop_rate=0.5)
    async with client(url, retries=10) as tws:
        for _ in range(5):
            # the dropped PUT never reached the handler: nothing was rerun
            assert (await tws.get_job(failed["id"])).rerun_count == failed["rerunCount"]
    assert simulator.stats["injected"]["drops"] > 4


async def test_outage_opens_the_breaker_which_recovers(sim: Sim) -> None:
    simulator, url = sim
    simulator.set_faults(outage=True)
    async with client(url, retries=0, breaker_fail_max=2, breaker_reset=0.3) as tws:
        for _ in range(2):
            with pytest.raises(TwsUnavailable, match="AWSJCO005E"):
                await tws.engine_info()
        assert tws.breaker_state == "open"
        sent = simulator.stats["requests"]
        started = time.monotonic()
        with pytest.raises(TwsUnavailable, match="circuit open"):
            await tws.engine_info()
        assert time.monotonic() - started < 0.05 and simulator.stats["requests"] == sent
        await asyncio.sleep(0.35)
        with pytest.raises(TwsUnavailable, match="AWSJCO005E"):  # the half-open probe fails: open again
            await tws.engine_info()
        assert tws.breaker_state == "open" and simulator.stats["requests"] == sent + 1
        simulator.clear_faults()
        with pytest.raises(TwsUnavailable, match="circuit open"):
            await tws.engine_info()
        await asyncio.sleep(0.35)
        assert (await tws.engine_info()).version
        assert tws.breaker_state == "closed"


OUTAGE = "AWSJCO005E The engine is not available (simulated outage)."


async def test_an_open_breaker_keeps_what_tws_said_and_is_unreachable_only_after_silence(sim: Sim) -> None:
    simulator, url = sim
    simulator.set_faults(outage=True)  # 503 with TWS's own message
    async with client(url, retries=0, breaker_fail_max=2, breaker_reset=0.3) as tws:
        poller = tws.uncached()  # the alert poller's view shares the breaker, and what TWS said
        for _ in range(2):
            with pytest.raises(TwsUnavailable, match="AWSJCO005E"):
                await tws.engine_info()
        sent = simulator.stats["requests"]
        for caller in (tws, poller):
            with pytest.raises(TwsUnavailable, match=r"^TWS answered with errors \(circuit open") as held:
                await caller.engine_info()
            assert held.value.answer == OUTAGE and 0 < held.value.held_for <= 0.3
        assert simulator.stats["requests"] == sent  # failed fast: TWS was not asked
        await asyncio.sleep(0.35)
        simulator.set_faults(drop_rate=1.0)  # now nothing answers: the failed probe alone reopens it
        with pytest.raises(TwsUnavailable, match="did not answer") as silent:
            await tws.engine_info()
        assert silent.value.answer is None and tws.breaker_state == "open"
        with pytest.raises(TwsUnavailable, match=r"^TWS is unavailable \(circuit open") as held:
            await poller.engine_info()
        assert held.value.answer is None and held.value.held_for is not None
        simulator.clear_faults()
        await asyncio.sleep(0.35)
        assert (await tws.engine_info()).version and tws.breaker_state == "closed"
        simulator.set_faults(drop_rate=1.0)  # silence from the start: unreachable, as before
        for _ in range(2):
            with pytest.raises(TwsUnavailable):
                await tws.engine_info()
        with pytest.raises(TwsUnavailable, match=r"^TWS is unavailable \(circuit open") as held:
            await tws.engine_info()
        assert held.value.answer is None


async def test_an_answer_anywhere_in_the_failures_that_opened_the_breaker_is_kept(sim: Sim) -> None:
    simulator, url = sim
    async with client(url, retries=0, breaker_fail_max=3, breaker_reset=5) as tws:
        simulator.set_faults(outage=True)
        with pytest.raises(TwsUnavailable):
            await tws.engine_info()
        simulator.set_faults(drop_rate=1.0)
        for _ in range(2):
            with pytest.raises(TwsUnavailable, match="did not answer"):
                await tws.engine_info()
        assert tws.breaker_state == "open"
        with pytest.raises(TwsUnavailable, match="circuit open") as held:
            await tws.rerun(raw_jobs(simulator, "ABEND")[0]["id"])
        assert held.value.answer == OUTAGE  # TWS was answering when the trouble began: never "unreachable"


@pytest.fixture
async def proxied(sim: Sim) -> AsyncIterator[tuple[Simulator, TwsProxy]]:
    """The simulator behind a gateway, which answers 429s and bare 5xx when told to."""
    async with TwsProxy(sim[1]) as proxy:
        yield sim[0], proxy


async def test_throttling_is_an_answer_quoted_with_its_retry_hint(proxied: tuple[Simulator, TwsProxy]) -> None:
    simulator, proxy = proxied
    failed = raw_jobs(simulator, "ABEND")[0]
    proxy.answer(429, headers={"Retry-After": "30"})
    async with client(proxy.url, retries=1, breaker_fail_max=2, breaker_reset=5) as tws:
        with pytest.raises(TwsUnavailable, match="^TWS is throttling requests: HTTP 429") as read:
            await tws.get_job(failed["id"])
        assert read.value.answer == "HTTP 429 Too Many Requests (retry after 30 s)" and proxy.answered == 2
        with pytest.raises(TwsUnavailable, match="the action was not applied$") as action:
            await tws.rerun(failed["id"])
        assert action.value.answer == "HTTP 429 Too Many Requests (retry after 30 s)"
        assert not isinstance(action.value, OutcomeUnknown) and proxy.answered == 3  # sent once
        assert requests(simulator, "job_action") == 0
        with pytest.raises(TwsUnavailable, match="circuit open") as held:  # two throttled calls opened it
            await tws.get_job(failed["id"])
        assert held.value.answer == "HTTP 429 Too Many Requests (retry after 30 s)" and proxy.answered == 3
    proxy.answer(429, json={"messages": ["AWSJCO429W Too many requests."]},
                 headers={"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"})  # a date in the past: no wait
    async with client(proxy.url, retries=0) as tws:
        with pytest.raises(TwsUnavailable) as dated:
            await tws.engine_info()
    assert dated.value.answer == "HTTP 429 Too Many Requests: AWSJCO429W Too many requests. (retry after 0 s)"
    proxy.forward()
    async with client(proxy.url) as tws:
        assert (await tws.get_job(failed["id"])).id == failed["id"]


async def test_a_bare_5xx_is_an_answer_on_a_read_and_an_unknown_outcome_on_an_action(
        proxied: tuple[Simulator, TwsProxy]) -> None:
    simulator, proxy = proxied
    failed = raw_jobs(simulator, "ABEND")[0]
    proxy.answer(502, text="<html><body>Bad gateway</body></html>")
    async with client(proxy.url, retries=2, breaker_fail_max=2, breaker_reset=5) as tws:
        with pytest.raises(TwsUnavailable, match="^TWS did not serve the request: HTTP 502") as read:
            await tws.engine_info()
        assert read.value.answer == "HTTP 502 Bad Gateway, with no TWS message" and proxy.answered == 3
        # The gateway may have passed the rerun on and lost TWS's answer: only a state check can tell.
        with pytest.raises(OutcomeUnknown, match="without a TWS message"):
            await tws.rerun(failed["id"])
        assert proxy.answered == 4
        with pytest.raises(TwsUnavailable, match="circuit open") as held:
            await tws.engine_info()
        assert held.value.answer == "HTTP 502 Bad Gateway, with no TWS message"  # the read's, not silence
    proxy.answer(599)
    async with client(proxy.url, retries=0) as tws:
        with pytest.raises(TwsUnavailable) as odd:
            await tws.engine_info()
    assert odd.value.answer == "HTTP 599, with no TWS message"


async def test_answers_from_tws_do_not_open_the_breaker(sim: Sim) -> None:
    simulator, url = sim
    async with client(url, breaker_fail_max=2) as tws:
        for _ in range(4):
            with pytest.raises(JobNotFound):
                await tws.get_job(str(uuid.uuid4()))
        simulator.set_faults(auth_fail=True)
        for _ in range(3):
            with pytest.raises(TwsAuthError):
                await tws.engine_info()
        assert tws.breaker_state == "closed"


async def test_half_open_lets_one_probe_through(sim: Sim) -> None:
    simulator, url = sim
    simulator.set_faults(outage=True)
    async with client(url, retries=0, breaker_fail_max=1, breaker_reset=0.2) as tws:
        with pytest.raises(TwsUnavailable):
            await tws.engine_info()
        await asyncio.sleep(0.25)
        simulator.set_faults(latency_ms=200)
        probe = asyncio.create_task(tws.engine_info())
        await asyncio.sleep(0.05)
        assert tws.breaker_state == "half-open"
        with pytest.raises(TwsUnavailable, match="probe"):
            await tws.engine_info()
        assert (await probe).version and tws.breaker_state == "closed"


async def test_authentication(sim: Sim) -> None:
    simulator, url = sim
    async with TwsClient(settings(url, password="wrong-password")) as tws:
        with pytest.raises(TwsAuthError, match="^TWS refused the credentials"):
            await tws.engine_info()
    async with TwsClient(settings(url, user=None, password=None, api_key=API_KEY)) as tws:
        assert (await tws.engine_info()).version
    async with TwsClient(settings(url, user=None, password=None, api_key="not-the-key")) as tws:
        with pytest.raises(TwsAuthError):
            await tws.engine_info()
    simulator.set_faults(auth_fail=True)
    async with client(url) as tws:
        with pytest.raises(TwsAuthError):
            await tws.get_job(raw_jobs(simulator)[0]["id"])
    assert simulator.stats["statuses"]["401"] == 3


async def test_failover_from_a_dead_master(sim: Sim) -> None:
    simulator, url = sim
    dead = dead_url()
    failed = raw_jobs(simulator, "ABEND")[0]
    async with client(dead, url) as tws:
        assert tws.active_url == dead
        with capture_logs() as logs:
            info = await tws.engine_info()
            await tws.engine_info()
        assert info.master == url and tws.active_url == url
        assert [e["event"] for e in logs if e["log_level"] == "warning"] == ["tws_url_unreachable", "tws_failover"]
        assert next(e for e in logs if e["event"] == "tws_failover")["from_url"] == dead
    async with client(dead, url) as tws:
        # refused before anything was sent: an action may safely go to the backup, once
        await tws.rerun(failed["id"])
    assert requests(simulator, "job_action") == 1
    async with client(dead, dead_url(), retries=1) as tws:
        with capture_logs() as logs, pytest.raises(TwsUnavailable, match="unreachable") as nobody:
            await tws.rerun(failed["id"])
        assert dead in str(nobody.value)
        # an action gets one pass over the URLs, no retry round
        assert [e["event"] for e in logs if e["log_level"] != "debug"] == ["tws_url_unreachable"] * 2
        with pytest.raises(TwsUnavailable):
            await tws.engine_info()


async def test_secrets_never_reach_logs_or_errors(sim: Sim) -> None:
    simulator, url = sim
    secret_password = f"pw-{uuid.uuid4().hex}"
    failed = raw_jobs(simulator, "ABEND")[0]
    errors: list[BaseException] = []
    with capture_logs() as logs:
        quick = {"timeout": 0.3, "retries": 1, "breaker_fail_max": 100}
        for tws in (client(dead_url(), url, password=secret_password, **quick),
                    client(dead_url(), url, user=None, password=None, api_key=API_KEY, **quick),
                    client(url, user=None, password=None, api_key=API_KEY + "x", **quick)):
            async with tws:
                for fault in ({}, {"outage": True}, {"drop_rate": 1.0}, {"latency_ms": 500}):
                    simulator.set_faults(**fault)
                    for call in (tws.engine_info(), tws.rerun(failed["id"])):
                        try:
                            await call
                        except TwsError as exc:
                            errors.append(exc)
                simulator.clear_faults()
    assert {type(e).__name__ for e in errors} >= {"TwsAuthError", "TwsUnavailable", "OutcomeUnknown"}
    assert any("timed out" in str(e) for e in errors)
    assert any(e["event"] == "tws_request" for e in logs)  # debug entries were captured too
    texts = [repr(e) for e in logs] + [f"{e!s} {e!r} {e.__cause__!r}" for e in errors]
    for secret in (secret_password, API_KEY):
        assert not [t for t in texts if secret in t]
    assert not [t for t in texts if "Authorization" in t or "Basic " in t or "Bearer " in t]


async def test_observe_hook_sees_every_operation(sim: Sim) -> None:
    simulator, url = sim
    seen: list[tuple[str, str, float, str | None]] = []
    async with client(url, retries=0, observe=lambda *a: seen.append(a)) as tws:
        await tws.query_jobs(status="FAILED")
        with pytest.raises(JobNotFound):
            await tws.get_job(str(uuid.uuid4()))
        simulator.set_faults(outage=True)
        with pytest.raises(TwsUnavailable):
            await tws.hold(raw_jobs(simulator, "SCHED")[0]["id"])
    assert [(op, method, error) for op, method, _, error in seen] == [
        ("iter_jobs", "GET", None), ("get_job", "GET", "JobNotFound"), ("job_hold", "PUT", "TwsUnavailable")]
    assert all(seconds > 0 for _, _, seconds, _ in seen)


async def test_passed_in_session_is_left_open(sim: Sim) -> None:
    _, url = sim
    async with aiohttp.ClientSession() as session:
        async with TwsClient(settings(url), session=session) as tws:
            assert (await tws.engine_info()).version
        assert not session.closed


# --- wire variants the simulator does not produce -----------------------------------------------

@pytest.fixture
async def fake_tws() -> AsyncIterator[tuple[str, list[dict[str, Any]]]]:
    """Pages without ``next`` (offset only) and start-aligned log pages, recording every request."""
    seen: list[dict[str, Any]] = []
    jobs = [{"id": f"job-{i:04d}", "name": f"J{i}", "jobStreamName": "S", "jobStreamId": "s-1",
             "workstation": "/AGT01", "internalStatus": "SUCC"} for i in range(250)]
    log_lines = [f"line {n}" for n in range(1, 2501)]

    async def query(request: web.Request) -> web.Response:
        seen.append({"path": request.path, "query": dict(request.query), "headers": dict(request.headers)})
        limit, offset = int(request.query["limit"]), int(request.query["offset"])
        return web.json_response({"count": len(jobs), "results": jobs[offset:offset + limit]})

    async def joblog(request: web.Request) -> web.Response:
        seen.append({"path": request.path, "query": dict(request.query), "headers": dict(request.headers)})
        size = int(request.query.get("Lines", len(log_lines)))  # paging is optional [C]
        number = int(request.query.get("pageNumber", 1))
        pages = -(-len(log_lines) // size)
        number = number if number > 0 else pages + 1 + number
        first = (number - 1) * size
        return web.json_response({"jobId": "job-0001", "runId": "run-1", "totalLines": len(log_lines),
                                  "pageNumber": number, "pageCount": pages, "firstLine": first + 1,
                                  "log": "\n".join(log_lines[first:first + size])})

    app = web.Application()
    app.router.add_get("/twsd/api/v2/plan/job", query)
    app.router.add_get("/twsd/api/v2/plan/job/run/{run}/joblog", joblog)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    yield f"http://127.0.0.1:{runner.addresses[0][1]}/twsd", seen
    await runner.cleanup()


async def test_offset_paging_without_next_and_request_headers(fake_tws: tuple[str, list[dict[str, Any]]]) -> None:
    url, seen = fake_tws
    async with client(url) as tws:
        jobs = await tws.query_jobs(page_size=100)
    assert [j.id for j in jobs] == [f"job-{i:04d}" for i in range(250)]
    assert [r["query"]["offset"] for r in seen] == ["0", "100", "200"]
    request_ids = [uuid.UUID(r["headers"]["Request-Id"]) for r in seen]
    assert len(set(request_ids)) == 3
    assert all(r["headers"]["Authorization"].startswith("Basic ") for r in seen)
    assert all(r["headers"]["Accept"] == "application/json" for r in seen)


async def test_log_tail_and_whole_log_over_start_aligned_pages(fake_tws: tuple[str, list[dict[str, Any]]]) -> None:
    url, seen = fake_tws
    async with client(url) as tws:
        tail = await tws.job_log("job-0001", tail=700, run_id="run-1")
        assert len(seen) == 2  # the last page held 500 lines: one more request for the rest
        whole = await tws.job_log("job-0001", tail=None, run_id="run-1")
    assert tail.text.split("\n") == [f"line {n}" for n in range(1801, 2501)]
    assert tail.first_line == 1801 and tail.total_lines == 2500 and tail.source == wire.LOG_BY_RUN
    assert whole.text.split("\n") == [f"line {n}" for n in range(1, 2501)]
    assert len(seen) == 3 and "pageNumber" not in seen[2]["query"]  # the whole log, unpaged


# --- TLS --------------------------------------------------------------------------------------

def _self_signed(tmp_path: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "tws.test")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(hours=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = tmp_path / "tws.pem", tmp_path / "tws.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


async def test_tls_ca_bundle_and_verification(tmp_path: Path) -> None:
    cert_path, key_path = _self_signed(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_path, key_path)
    runner = web.AppRunner(Simulator(jobs=20, seed=1, speed=0).app(), access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context).start()
        url = f"https://127.0.0.1:{runner.addresses[0][1]}/twsd"
        async with client(url, ca_bundle=str(cert_path)) as tws:
            assert (await tws.engine_info()).version
        async with client(url, retries=0) as tws:
            with pytest.raises(TwsUnavailable, match="Certificate"):
                await tws.engine_info()
        with capture_logs() as logs:
            insecure = client(url, verify_tls=False)
        assert [e["event"] for e in logs if e["log_level"] == "warning"] == ["tws_tls_verification_disabled"]
        async with insecure as tws:
            assert (await tws.engine_info()).version
    finally:
        await runner.cleanup()

