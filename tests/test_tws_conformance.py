"""Wire conformance: every client operation against the simulator in every wire variant.

The simulator serves the documented wire by default and each alternative shape the client
tolerates as a variant (docs/tws-wire.md). Expected answers come from the simulator's plan
itself (its objects, its own stdlist renderer), never from the client's mapping. After each test
every request the simulator recorded is checked against the "Client requests" list of
docs/tws-wire.md: a path, query parameter, OQL field or header the document does not list fails.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from bot.config import TwsSettings
from bot.errors import (
    AmbiguousJob, BadResponse, InvalidState, JobNotFound, LogNotReady, OutcomeUnknown, TwsAuthError, TwsForbidden,
    TwsUnavailable,
)
from bot.simulator import Simulator, run_simulator
from bot.simulator import stdlist
from bot.simulator.catalog import workstation_path
from bot.simulator.plan import job_state
from bot.simulator.views import run_view
from bot.tws.client import TwsClient
from bot.tws.names import parse_job_ref

DOC = Path(__file__).resolve().parent.parent / "docs" / "tws-wire.md"
VARIANTS = ["documented", "bare-names", "json-log", "run-id", "v1-log", "no-dep-ids", "bare-names,json-log,no-dep-ids"]
#: Headers any HTTP client sends on its own; the document lists only what Resync adds.
TRANSPORT_HEADERS = {"Host", "User-Agent", "Accept-Encoding", "Content-Length", "Connection"}


@dataclass(frozen=True, slots=True, kw_only=True)
class Documented:
    routes: tuple[tuple[str, re.Pattern[str], frozenset[str]], ...]
    oql_fields: frozenset[str]
    headers: frozenset[str]

    def problems(self, requests: list[dict[str, Any]]) -> list[str]:
        """What the client sent that the document does not list."""
        found = []
        for r in requests:
            listed = [params for method, path, params in self.routes
                      if method == r["method"] and path.fullmatch(r["path"])]
            if not listed:
                found.append(f"{r['method']} {r['path']}: path not in docs/tws-wire.md")
                continue
            route = max(listed, key=lambda params: len(set(r["params"]) & params))  # /job/joblog, not /job/{id}
            if extra := set(r["params"]) - route:
                found.append(f"{r['method']} {r['path']}: query parameters {sorted(extra)} not listed")
            if extra := set(r["oql_fields"]) - self.oql_fields:
                found.append(f"{r['method']} {r['path']}: OQL fields {sorted(extra)} not listed")
            if extra := set(r["headers"]) - self.headers - TRANSPORT_HEADERS:
                found.append(f"{r['method']} {r['path']}: headers {sorted(extra)} not listed")
        return found


def documented() -> Documented:
    """The ```requests block of docs/tws-wire.md."""
    block = re.search(r"```requests\n(.*?)```", DOC.read_text(), re.S)
    assert block, "docs/tws-wire.md has no ```requests block"
    routes, fields, headers = [], frozenset[str](), frozenset[str]()
    for line in block.group(1).splitlines():
        words = line.split()
        if not words:
            continue
        if words[0] == "oql-fields:":
            fields = frozenset(words[1:])
        elif words[0] == "headers:":
            headers = frozenset(words[1:])
        else:
            pattern = re.compile(re.sub(r"\\\{\w+\\\}", "[^/]+", re.escape(words[1])))
            routes.append((words[0], pattern, frozenset(words[2:])))
    return Documented(routes=tuple(routes), oql_fields=fields, headers=headers)


def client(url: str, **overrides: Any) -> TwsClient:
    values: dict[str, Any] = dict(urls=(url,), user="resync", password="resync", timeout=2.0, retries=1,
                                  breaker_fail_max=50, breaker_reset=0.3)
    return TwsClient(TwsSettings(**{**values, **overrides}), backoff=0.01)


@dataclass
class Wired:
    sim: Simulator
    tws: TwsClient
    url: str

    def job(self, job_id: str) -> Any:
        return self.sim.plan.job(job_id)

    def requests_to(self, kind: str) -> int:
        return self.sim.stats["kinds"].get(kind, {}).get("requests", 0)

    def log_requests(self) -> int:
        return sum(v["requests"] for k, v in self.sim.stats["kinds"].items() if "log" in k) + self.unmatched()

    def unmatched(self) -> int:
        return self.sim.stats["kinds"].get("unknown", {}).get("requests", 0)


@pytest.fixture(params=VARIANTS)
async def wired(request: pytest.FixtureRequest) -> AsyncIterator[Wired]:
    async with run_simulator(jobs=600, seed=3, failure_rate=0.1, speed=0, wire=request.param) as (sim, url):
        async with client(url) as tws:
            yield Wired(sim=sim, tws=tws, url=url)
        assert documented().problems(list(sim.requests)) == []


def _name(job: Any) -> str:
    return job.stream.workstation  # the bare name, as an operator types it


def _failed(sim: Simulator) -> list[Any]:
    now = sim.now()
    return [j for j in sim.plan.jobs if job_state(j, now) in {"ABEND", "FAIL", "ERROR"}]


def _on(sim: Simulator, *, folder: bool) -> Any:
    """A failed job on a workstation in a folder (or in the root folder)."""
    return next(j for j in _failed(sim) if (workstation_path(j.stream.workstation).count("/") > 1) == folder)


# --- queries --------------------------------------------------------------------------------------

async def test_queries_with_every_filter(wired: Wired) -> None:
    sim, tws, now = wired.sim, wired.tws, wired.sim.now()
    foldered = _on(sim, folder=True)
    rooted = _on(sim, folder=False)
    cases: list[tuple[dict[str, Any], Any]] = [
        ({"workstation": _name(rooted)}, lambda j: j.stream.workstation == _name(rooted)),
        ({"workstation": "/" + _name(rooted)}, lambda j: j.stream.workstation == _name(rooted)),
        ({"workstation": _name(foldered).lower()}, lambda j: j.stream.workstation == _name(foldered)),
        ({"workstation": _name(foldered)[:-1] + "@"}, lambda j: j.stream.workstation.startswith(_name(foldered)[:-1])),
        ({"name": rooted.name}, lambda j: j.name == rooted.name),
        ({"name": rooted.name[:4] + "@"}, lambda j: j.name.startswith(rooted.name[:4])),
        ({"stream": rooted.stream.name}, lambda j: j.stream is rooted.stream),
        ({"status": "FAILED"}, lambda j: job_state(j, now) in {"ABEND", "FAIL", "ERROR"}),
        ({"status": ["HOLD", "READY"], "workstation": _name(foldered)},
         lambda j: job_state(j, now) in {"HOLD", "READY"} and j.stream.workstation == _name(foldered)),
    ]
    limit = datetime.fromtimestamp(int(now) + 3600, timezone.utc)  # the plan's time limits [I], an hour from now
    cases.append(({"status": ["HOLD", "READY", "SCHED"], "overdue": limit},
                  lambda j: job_state(j, now) in {"HOLD", "READY", "SCHED"} and any(
                      t is not None and t < limit.timestamp() for t in (j.latest_start, j.deadline))))
    # A folder path as a user types it: exact where the server has folders; by its last segment
    # where the server's names carry none (bare-names), in the OQL sent and in the client's check.
    path = workstation_path(_name(foldered))
    cases += [({"workstation": path}, lambda j: j.stream.workstation == _name(foldered)),
              ({"workstation": path.lstrip("/")}, lambda j: j.stream.workstation == _name(foldered)),
              ({"workstation": path, "status": "FAILED"},
               lambda j: j.stream.workstation == _name(foldered) and job_state(j, now) in {"ABEND", "FAIL", "ERROR"})]
    if not sim.wire.bare_names:
        cases.append(({"workstation": "/" + _name(foldered)}, lambda j: False))  # not in the root folder
    for filters, keep in cases:
        expected = {sim.plan.job_id(j) for j in sim.plan.jobs if keep(j)}
        assert {j.id for j in await tws.query_jobs(**filters)} == expected, filters
        if not any("@" in str(v) for v in filters.values()):
            assert await tws.count_jobs(**filters) == len(expected), filters


async def test_every_printed_name_pastes_back_to_the_same_instance(wired: Wired) -> None:
    sim, tws = wired.sim, wired.tws
    printed = await tws.query_jobs(status="FAILED")
    assert printed
    for job in printed[:25]:
        assert (await tws.resolve_job(parse_job_ref(job.full_name))).id == job.id, job.full_name
        assert (await tws.resolve_job(parse_job_ref(job.qualified_name))).id == job.id, job.qualified_name
    foldered = _on(sim, folder=True)
    job_id = sim.plan.job_id(foldered)
    ws, stream, name = _name(foldered), foldered.stream.name, foldered.name
    forms = [f"{ws}#{stream}.{name}", f"{ws.lower()}#{stream.lower()}.{name.lower()}", f"{stream}.{name}",
             f"{workstation_path(ws)}#{stream}.{name}", f"{workstation_path(ws).lstrip('/')}#{stream}.{name}"]
    for form in forms:
        assert (await tws.resolve_job(parse_job_ref(form))).id == job_id, form
    with pytest.raises(JobNotFound):
        await tws.resolve_job(parse_job_ref(f"/{ws}#{stream}.{name}" if not sim.wire.bare_names else f"NOPE#{stream}.{name}"))
    shared = next(j.name for j in sim.plan.jobs if sum(1 for k in sim.plan.jobs if k.name == j.name) > 1)
    with pytest.raises(AmbiguousJob) as ambiguous:
        await tws.resolve_job(parse_job_ref(shared))
    for candidate in ambiguous.value.candidates[:5]:  # each candidate's printed form is unambiguous
        assert (await tws.resolve_job(parse_job_ref(candidate.qualified_name))).id == candidate.id
        assert (await tws.resolve_job(parse_job_ref(candidate.instance_name))).id == candidate.id
    # job streams: WS#STREAM, printed and pasted back
    streams = await tws.query_streams(name=stream)
    assert [s.id for s in streams] == [sim.plan.stream_id(foldered.stream)]
    ws_part, _, stream_part = streams[0].full_name.rpartition("#")
    assert [s.id for s in await tws.query_streams(name=stream_part, workstation=ws_part)] == [streams[0].id]


# --- logs -----------------------------------------------------------------------------------------

def _stdlist(sim: Simulator, job: Any) -> list[str]:
    """The log as the simulator writes it, straight from the plan."""
    return stdlist.render(run_view(sim.plan, job, job.current_run(), sim.now()))


async def test_logs_in_every_body_form_and_one_request_in_steady_state(wired: Wired) -> None:
    sim, tws = wired.sim, wired.tws
    first, second = _failed(sim)[:2]
    for job in (first, second):
        raw = await tws.get_job(sim.plan.job_id(job))
        sim.reset_stats()
        tail = await tws.job_log(raw.id, tail=15, run_id=raw.run_id)
        assert tail.text.split("\n") == _stdlist(sim, job)[-15:]
    assert wired.log_requests() == 1  # the second job: the form learnt on the first, one request
    whole = await tws.job_log(sim.plan.job_id(second), tail=None, run_id=(await tws.get_job(sim.plan.job_id(second))).run_id)
    assert whole.text.split("\n") == _stdlist(sim, second) and whole.total_lines == len(_stdlist(sim, second))
    assert not whole.truncated
    assert tail.truncated or tail.maybe_truncated
    if tail.total_lines is not None:  # said only when the server said it
        assert tail.total_lines == len(_stdlist(sim, second))
    waiting = next(j for j in sim.plan.jobs if job_state(j, sim.now()) == "SCHED")
    raw = await tws.get_job(sim.plan.job_id(waiting))
    empty = await tws.job_log(raw.id, tail=15, run_id=raw.run_id)
    assert empty.text == "" and _stdlist(sim, waiting) == []  # "empty" only when it truly is
    with pytest.raises(JobNotFound):
        await tws.job_log("0f0f0f0f-0000-4000-8000-000000000000", tail=5)


@pytest.mark.parametrize("variant", ["documented", "json-log", "run-id", "v1-log"])
async def test_a_log_not_retrieved_yet_is_said_so_then_fetched(variant: str) -> None:
    async with run_simulator(jobs=300, seed=3, speed=0, wire=variant, log_delay=120) as (sim, url):
        async with client(url) as tws:
            job = next(j for j in sim.plan.jobs if job_state(j, sim.now()) == "SCHED")
            job_id = sim.plan.job_id(job)
            sim.force_fail(job_id, 8)
            raw = await tws.get_job(job_id)
            with pytest.raises(LogNotReady, match="EQQM637I"):
                await tws.job_log(job_id, tail=10, run_id=raw.run_id)
            sim.advance(121)
            tail = await tws.job_log(job_id, tail=10, run_id=raw.run_id)
            assert tail.text.split("\n") == _stdlist(sim, job)[-10:] and "Exit Status : 8" in tail.text
        assert documented().problems(list(sim.requests)) == []


# --- successors -----------------------------------------------------------------------------------

async def test_successors_from_the_documented_query(wired: Wired) -> None:
    sim, tws = wired.sim, wired.tws
    failed = [j for j in _failed(sim) if j.succs][:45] + [j for j in _failed(sim) if not j.succs][:2]
    jobs = [await tws.get_job(sim.plan.job_id(j)) for j in failed]
    found = await tws.successors_of(jobs)
    assert {k: {s.id for s in v} for k, v in found.items()} == {
        sim.plan.job_id(j): {sim.plan.job_id(s) for s in j.succs} for j in failed}
    assert [r for r in sim.requests if "dependencies.jobId" in r["oql_fields"]] == []


# --- actions --------------------------------------------------------------------------------------

async def test_actions(wired: Wired) -> None:
    sim, tws = wired.sim, wired.tws
    now = sim.now()
    failed = sim.plan.job_id(_failed(sim)[0])
    result = await tws.rerun(failed)
    assert result.target_id == failed and result.messages[0].startswith("AWSBHU")
    assert (result.new_run_id is not None) == sim.wire.run_id
    assert (await tws.get_job(failed)).rerun_count == 1
    waiting = [sim.plan.job_id(j) for j in sim.plan.jobs if job_state(j, now) == "SCHED"][:2]
    await tws.hold(waiting[0])
    assert (await tws.get_job(waiting[0])).status == "HOLD"
    await tws.release(waiting[0])
    await tws.cancel(waiting[1])
    assert (await tws.get_job(waiting[1])).status == "CANCL"
    running = sim.plan.job_id(next(j for j in sim.plan.jobs if job_state(j, now) == "EXEC"))
    await tws.kill(running)
    assert (await tws.get_job(running)).status == "ABEND"
    await tws.confirm_succ(running)
    assert (await tws.get_job(running)).status == "SUCC"
    with pytest.raises(InvalidState, match="AWSBIN076E"):
        await tws.release(running)
    with pytest.raises(JobNotFound, match="AWSBIO006E"):
        await tws.hold("0f0f0f0f-0000-4000-8000-000000000000")
    stream = next(s for s in await tws.query_streams(status="READY"))
    await tws.stream_action(stream.id, "hold")
    assert (await tws.get_stream(stream.id)).status == "HOLD"
    await tws.stream_action(stream.id, "release")


# --- error shapes ---------------------------------------------------------------------------------

async def test_error_shapes_from_the_simulator(wired: Wired) -> None:
    sim, tws = wired.sim, wired.tws
    job_id = sim.plan.job_id(_failed(sim)[0])
    sim.set_faults(outage=True)
    with pytest.raises(TwsUnavailable, match="^TWS answered: AWSJCO005E") as down:
        await tws.rerun(job_id)
    assert not isinstance(down.value, OutcomeUnknown)
    sim.set_faults(auth_fail=True)
    with pytest.raises(TwsAuthError, match="^TWS refused the credentials"):
        await tws.engine_info()
    sim.set_faults(drop_rate=1.0)
    with pytest.raises(OutcomeUnknown):  # nothing came back: only then is the outcome unknown
        await tws.rerun(job_id)
    sim.clear_faults()
    assert (await tws.get_job(job_id)).rerun_count == 0


@pytest.mark.parametrize(("status", "body", "error", "said"), [
    (503, {"messages": ["AWSJCO005E The engine is not available."], "exceptionName": "X"}, TwsUnavailable,
     "^TWS answered: AWSJCO005E"),
    (500, {"messages": "AWSJCO999E Internal error."}, TwsUnavailable, "^TWS answered: AWSJCO999E"),
    (401, {"messages": ["AWSWEB001E The user is not authorized."]}, TwsAuthError, "^TWS refused the credentials"),
    (403, {"messages": ["AWSWEB003E Not allowed."]}, TwsForbidden, "AWSWEB003E"),
    (400, {"messages": ["AWSBIN076E Not in that state."]}, InvalidState, "AWSBIN076E"),
    (404, {"messages": ["AWSBIO006E Not found."]}, JobNotFound, "AWSBIO006E"),
    (400, {"message": "OQL_FILTER_SYNTAX_ERROR bad"}, BadResponse, "OQL_FILTER_SYNTAX_ERROR"),
    (502, "<html>Bad gateway</html>", OutcomeUnknown, "without a TWS message"),
    (429, {}, TwsUnavailable, "throttling.*not applied"),
])
async def test_every_error_shape_on_an_action(status: int, body: Any, error: type, said: str) -> None:
    """Shapes the simulator has no fault for, from a loopback server answering exactly them."""
    async with _answering("PUT", "/twsd/api/v2/plan/job/{id}/action/{action}", status, body) as base:
        async with client(base) as tws:
            with pytest.raises(error, match=said) as raised:
                await tws.rerun("0f0f0f0f-0000-4000-8000-000000000000")
    if error is not OutcomeUnknown:
        assert not isinstance(raised.value, OutcomeUnknown)


@asynccontextmanager
async def _answering(method: str, path: str, status: int, body: Any,
                     headers: dict[str, str] | None = None) -> AsyncIterator[str]:
    """A loopback server answering ``method path`` with exactly this status, body (JSON, or a str
    as HTML) and headers; yields the TWS base URL to point the client at."""
    async def answer(request: web.Request) -> web.Response:
        if isinstance(body, str):
            return web.Response(status=status, text=body, content_type="text/html", headers=headers)
        return web.json_response(body, status=status, headers=headers)

    app = web.Application()
    app.router.add_route(method, path, answer)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}/twsd"
    finally:
        await runner.cleanup()


@pytest.mark.parametrize(("status", "body", "headers", "answer"), [
    (503, {"messages": ["AWSJCO005E The engine is not available."]}, {}, "AWSJCO005E The engine is not available."),
    (502, "<html>Bad gateway</html>", {}, "HTTP 502 Bad Gateway, with no TWS message"),
    (504, "", {}, "HTTP 504 Gateway Timeout, with no TWS message"),
    (500, {"exceptionName": "X"}, {}, "HTTP 500 Internal Server Error, with no TWS message"),
    (429, {}, {"Retry-After": "12"}, "HTTP 429 Too Many Requests (retry after 12 s)"),
    (429, "", {"Retry-After": "soon"}, "HTTP 429 Too Many Requests"),
])
async def test_every_answer_that_is_not_served_is_kept_on_a_read(status: int, body: Any, headers: dict[str, str],
                                                                answer: str) -> None:
    """Something answered (TWS or a gateway before it): the error carries what, never "unreachable"."""
    async with _answering("GET", "/twsd/api/v2/engine/info", status, body, headers) as base:
        async with client(base, retries=0) as tws:
            with pytest.raises(TwsUnavailable) as raised:
                await tws.engine_info()
    assert raised.value.answer == answer and "unreachable" not in str(raised.value)


def test_the_check_catches_what_the_document_does_not_list() -> None:
    doc = documented()
    ok = {"method": "GET", "path": "/api/v2/plan/job", "params": ["limit", "offset", "oql"],
          "oql_fields": ["workstation"], "headers": ["Accept", "Authorization", "Host", "Request-Id"]}
    assert doc.problems([ok]) == []
    assert doc.problems([{**ok, "oql_fields": ["dependencies.jobId"]}])
    assert doc.problems([{**ok, "params": ["runId"]}])
    assert doc.problems([{**ok, "path": "/api/v2/plan/job/abc/joblog"}])
    assert doc.problems([{**ok, "headers": ["X-Correlation-Id"]}])
    assert doc.problems([{**ok, "method": "POST"}])


# --- what alerts say when TWS could not answer ----------------------------------------------------

async def test_an_alert_says_unknown_never_zero_when_tws_cannot_say() -> None:
    from bot.alerts import compose

    async with run_simulator(jobs=200, seed=3, failure_rate=0.1, speed=0) as (sim, url), client(url) as tws:
        job = await tws.get_job(sim.plan.job_id(_failed(sim)[0]))
    snap = compose.snapshot(job)
    base = {"job_id": job.id, "thread": job.id, "targets": ["slack:C1"], "kind": "failed", "state": "open",
            "job": snap, "failure": snap, "runs": [snap["run"]], "failures": 1, "runbook": None}
    unknown = compose.job_root({**base, "errors": [], "blocked": None, "log_note": {"kind": "not_ready"}})
    fields = {f.label: f.value for f in unknown.fields}
    assert fields["Blocked successors"] == "unknown" and "Successors unknown" in unknown.text
    assert "not available yet" in unknown.text and "0 successor" not in unknown.text
    failed = compose.job_root({**base, "errors": [], "blocked": None,
                               "log_note": {"kind": "unavailable", "reason": "TWS answered: AWSJCO005E down"}}, lang="pt")
    assert "AWSJCO005E" in failed.text and "desconhecid" in failed.text
    known = compose.job_root({**base, "errors": ["ORA-00060: deadlock"], "blocked": 0, "log_note": None})
    assert {f.label: f.value for f in known.fields}["Blocked successors"] == "0" and "unknown" not in known.text


# --- confirmations: successors counted, or said unknown -------------------------------------------

async def test_a_confirmation_counts_successors_or_says_unknown(tmp_path: Path) -> None:
    """Through a loopback proxy that lets the successors query fail (503 with a TWS message), as a
    server that cannot answer it would."""
    import aiohttp

    from bot.agent import Agent
    from bot.config import PolicySettings, StoreSettings
    from bot.store import open_store
    from tests.test_agent import POLICY, Clock, World

    refuse = {"on": False}
    async with run_simulator(jobs=600, seed=11, failure_rate=0.15, speed=0) as (sim, url), aiohttp.ClientSession() as up:
        async def forward(request: web.Request) -> web.Response:
            if refuse["on"] and "dependencies." in request.query.get("oql", ""):
                return web.json_response({"messages": ["AWSJCO005E The engine is not available."]}, status=503)
            async with up.request(request.method, url.removesuffix("/twsd") + request.path_qs, headers=request.headers,
                                  data=await request.read()) as answer:
                return web.Response(status=answer.status, body=await answer.read(),
                                    content_type=answer.content_type)

        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", forward)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        try:
            proxy = f"http://127.0.0.1:{runner.addresses[0][1]}/twsd"
            async with client(proxy, retries=0) as tws, open_store(StoreSettings(data_dir=tmp_path)) as store:
                agent = Agent(tws=tws, store=store, policy=POLICY, settings=PolicySettings(confirm_ttl=300), clock=Clock())
                world = World(sim=sim, tws=tws, store=store, agent=agent, clock=Clock())
                job = next(j for j in _failed(sim) if j.succs)
                name = f"{job.stream.name}.{job.name}"
                [card] = await world.say(f"rerun {name}")
                fields = {f.label: f.value for f in card.fields}
                assert fields["Successors"].startswith(f"{len(job.succs)} (")
                refuse["on"] = True
                [card] = await world.say(f"rerun {name}")
                assert {f.label: f.value for f in card.fields}["Successors"].startswith("unknown")
        finally:
            await runner.cleanup()


async def test_two_instances_of_one_stream_are_told_apart_by_conman_instance_syntax() -> None:
    """A stream scheduled twice in one plan (the simulator's plan has unique stream names)."""
    jobs = [{"id": f"job-{n}", "name": "LOAD", "jobStreamName": "DW_HOURLY", "jobStreamId": f"s-{n}",
             "jobStreamSchedTime": f"2026-11-21T{hour}:00:00Z", "workstation": "/ETL/LNX_ETL01",
             "internalStatus": "ABEND"} for n, hour in ((1, "06"), (2, "18"))]

    async def query(request: web.Request) -> web.Response:
        return web.json_response({"count": len(jobs), "results": jobs})

    app = web.Application()
    app.router.add_get("/twsd/api/v2/plan/job", query)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        async with client(f"http://127.0.0.1:{runner.addresses[0][1]}/twsd") as tws:
            with pytest.raises(AmbiguousJob) as ambiguous:
                await tws.resolve_job(parse_job_ref("LNX_ETL01#DW_HOURLY.LOAD"))
            printed = [c.instance_name for c in ambiguous.value.candidates]
            assert printed == ["/ETL/LNX_ETL01#DW_HOURLY(0600 11/21/26).LOAD", "/ETL/LNX_ETL01#DW_HOURLY(1800 11/21/26).LOAD"]
            assert [(await tws.resolve_job(parse_job_ref(p))).id for p in printed] == ["job-1", "job-2"]
            assert (await tws.resolve_job(parse_job_ref("LNX_ETL01#DW_HOURLY(1800).LOAD"))).id == "job-2"
            with pytest.raises(JobNotFound):
                await tws.resolve_job(parse_job_ref("LNX_ETL01#DW_HOURLY(1200 11/21/26).LOAD"))
    finally:
        await runner.cleanup()
