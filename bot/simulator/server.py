"""The simulator as an HTTP server: the TWS V2 surface of docs/tws-wire.md, a V1 subset, and the
``/sim`` control endpoints that let tests and demos inject faults and move time.

It serves the documented wire by default; ``wire`` (``--wire``) switches on the alternative shapes
of ``variants.py``. Every TWS request is recorded (method, path, query keys, OQL fields, headers)
so tests can check that the client asks only for what docs/tws-wire.md lists.

Faults and statistics live in one middleware at the edge, so every TWS route gets them and the
routes themselves stay plain: read the plan at the virtual ``now``, render, answer.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import math
import os
import random
import socket
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass, replace
from hmac import compare_digest
from typing import Any

import structlog
from aiohttp import web

from bot.errors import InvalidState, JobNotFound
from bot.simulator import stdlist
from bot.simulator.oql import OqlError, compile_oql, field_names, like
from bot.simulator.plan import Clock, Job, Plan, Run, job_state
from bot.simulator.variants import Wire, parse_wire
from bot.simulator.views import engine_json, iso, job_fields, job_json, run_view, stream_fields, stream_json

log = structlog.get_logger(__name__)

DEFAULT_USER = "resync"
DEFAULT_PASSWORD = "resync"
DEFAULT_LIMIT = 500
MAX_LIMIT = 1000
#: "The job log is not retrieved yet" [B]: what the server says while a log is being fetched.
NOT_READY = "EQQM637I The job log has not been retrieved yet; try again later."
RECORDED = 5000  # requests kept for tests

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True, slots=True, kw_only=True)
class Faults:
    latency_ms: int = 0
    error_rate: float = 0.0
    error_status: int = 503
    drop_rate: float = 0.0
    outage: bool = False  # every TWS request answers 503
    auth_fail: bool = False  # every TWS request answers 401

    def __post_init__(self) -> None:
        if self.latency_ms < 0:
            raise ValueError("latency_ms must be >= 0")
        if not (0.0 <= self.error_rate <= 1.0 and 0.0 <= self.drop_rate <= 1.0):
            raise ValueError("error_rate and drop_rate must be between 0 and 1")
        if not 400 <= self.error_status <= 599:
            raise ValueError("error_status must be an HTTP error status (400-599)")


def _error(status: int, message: str, exception: str) -> web.Response:
    return web.json_response({"messages": [message], "exceptionName": exception}, status=status)


def _bad_request(message: str) -> web.HTTPBadRequest:
    return web.HTTPBadRequest(text=json.dumps({"messages": [message], "exceptionName": "BadRequestException"}),
                              content_type="application/json")


class Simulator:
    """A TWS master with a generated plan; ``app()`` serves it, the methods steer it from tests."""

    def __init__(self, *, jobs: int = 2000, seed: int = 42, failure_rate: float = 0.05, speed: float = 60.0,
                 user: str = DEFAULT_USER, password: str = DEFAULT_PASSWORD, api_key: str | None = None,
                 wire: Wire | str | None = None, log_delay: float = 0.0) -> None:
        """``wire``: the variants to serve (None: the documented wire). ``log_delay``: virtual seconds
        after a run ends during which its log is "not retrieved yet" (EQQM637I)."""
        started = time.perf_counter()
        self.wire = wire if isinstance(wire, Wire) else parse_wire(wire)
        if log_delay < 0:
            raise ValueError("log_delay must be >= 0")
        self.log_delay = log_delay
        self.requests: deque[dict[str, Any]] = deque(maxlen=RECORDED)
        self.plan = Plan(jobs=jobs, seed=seed, failure_rate=failure_rate)
        self.clock = Clock(speed)
        self._user, self._password, self._api_key = user, password, api_key
        self.faults = Faults()
        self._chance = random.Random(seed)  # which requests a fault hits: reproducible for a seed
        self.stats: dict[str, Any] = {}
        self.reset_stats()
        self.startup_seconds = time.perf_counter() - started
        log.info("simulator_ready", jobs=len(self.plan.jobs), streams=len(self.plan.streams), seed=seed,
                 wire=str(self.wire), seconds=round(self.startup_seconds, 3))

    # --- steering (tests, demos) ------------------------------------------------------------------

    def now(self) -> float:
        """Virtual time, epoch seconds."""
        return self.clock.now()

    def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)

    def force_fail(self, job_id: str, return_code: int = 12) -> None:
        job = self.plan.force_fail(job_id, return_code, self.clock.now())
        log.info("simulator_forced_failure", job=job.label, return_code=return_code)

    def set_faults(self, *, latency_ms: int = 0, error_rate: float = 0.0, error_status: int = 503,
                   drop_rate: float = 0.0, outage: bool = False, auth_fail: bool = False) -> None:
        self.faults = Faults(latency_ms=latency_ms, error_rate=error_rate, error_status=error_status,
                             drop_rate=drop_rate, outage=outage, auth_fail=auth_fail)
        log.info("simulator_faults", **asdict(self.faults))

    def clear_faults(self) -> None:
        self.faults = Faults()

    def reset_stats(self) -> None:
        self.stats = {"requests": 0, "bytes": 0, "kinds": {}, "statuses": {},
                      "injected": {"latency": 0, "errors": 0, "drops": 0, "outage": 0, "auth_fail": 0}}

    def jobs_in_state(self, *states: str) -> list[dict[str, Any]]:
        """V2 JSON of every job in one of ``states`` (every job when none is given)."""
        now = self.clock.now()
        wanted = {s.upper() for s in states}
        return [job_json(self.plan, job, now, self.wire) for job in self.plan.jobs
                if not wanted or job_state(job, now) in wanted]

    # --- the application ------------------------------------------------------------------------

    def app(self) -> web.Application:
        @web.middleware
        async def edge(request: web.Request, handler: Handler) -> web.StreamResponse:
            return await self._edge(request, handler)

        app = web.Application(middlewares=[edge])
        add, v2 = app.router.add_route, "/twsd/api/v2"
        add("GET", f"{v2}/plan/job", self._query_jobs, name="job_query")
        add("GET", f"{v2}/plan/job/count", self._count_jobs, name="job_count")
        wire = self.wire
        if not (wire.run_id or wire.v1_log):
            add("GET", f"{v2}/plan/job/joblog", self._job_log_by_filter, name="job_log")
        if wire.run_id:
            add("GET", f"{v2}/plan/job/run/{{run_id}}/joblog", self._job_log_by_run, name="job_log_run")
        add("GET", f"{v2}/plan/job/{{job_id}}", self._get_job, name="job_get")
        add("PUT", f"{v2}/plan/job/{{job_id}}/action/{{action}}", self._job_action, name="job_action")
        add("GET", f"{v2}/plan/jobstream", self._query_streams, name="stream_query")
        add("GET", f"{v2}/plan/jobstream/{{stream_id}}", self._get_stream, name="stream_get")
        add("PUT", f"{v2}/plan/jobstream/{{stream_id}}/action/{{action}}", self._stream_action, name="stream_action")
        add("GET", f"{v2}/engine/info", self._engine, name="engine")
        add("GET", "/twsd/engine/info", self._engine, name="v1_engine")
        add("POST", "/twsd/plan/current/job/query", self._v1_query, name="v1_query")
        add("PUT", "/twsd/plan/current/job/{job_id}/action/rerun", self._v1_rerun, name="v1_rerun")
        if not wire.run_id:
            add("GET", "/twsd/plan/current/job/{job_id}/joblog", self._v1_job_log, name="v1_job_log")
        for prefix in ("/sim", "/twsd/sim"):
            add("GET", f"{prefix}/stats", self._sim_stats)
            add("GET", f"{prefix}/requests", self._sim_requests)
            add("POST", f"{prefix}/faults", self._sim_set_faults)
            add("DELETE", f"{prefix}/faults", self._sim_clear_faults)
            add("POST", f"{prefix}/advance", self._sim_advance)
            add("POST", f"{prefix}/jobs/{{job_id}}/fail", self._sim_fail)
        return app

    async def _edge(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Faults, authentication, error translation and statistics for every TWS route."""
        if request.path.startswith(("/sim/", "/twsd/sim/")):
            return await handler(request)
        kind = request.match_info.route.name or "unknown"
        self._record(request)
        try:
            response = await self._guarded(request, handler)
        except web.HTTPException as exc:
            self._count(kind, exc)
            raise
        self._count(kind, response)
        return response

    async def _guarded(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        faults, injected = self.faults, self.stats["injected"]
        if faults.latency_ms:
            injected["latency"] += 1
            await asyncio.sleep(faults.latency_ms / 1000)
        if faults.outage:
            injected["outage"] += 1
            return _error(503, "AWSJCO005E The engine is not available (simulated outage).",
                          "EngineUnavailableException")
        if faults.auth_fail:
            injected["auth_fail"] += 1
            return _error(401, "AWSWEB001E The user is not authorized.", "AuthenticationException")
        if faults.drop_rate and self._chance.random() < faults.drop_rate:
            injected["drops"] += 1
            if request.transport is not None:
                request.transport.close()  # the client sees the connection close with no response
            return web.Response(status=503)
        if faults.error_rate and self._chance.random() < faults.error_rate:
            injected["errors"] += 1
            return _error(faults.error_status, f"AWSJCO005E Simulated server error {faults.error_status}.",
                          "SimulatedServerError")
        if not self._authorized(request.headers.get("Authorization", "")):
            return _error(401, "AWSWEB001E The user is not authorized.", "AuthenticationException")
        try:
            return await handler(request)
        except JobNotFound as exc:
            return _error(404, str(exc), "ObjectNotFoundException")
        except InvalidState as exc:
            return _error(400, str(exc), "InvalidActionException")
        except OqlError as exc:
            return _error(400, f"OQL_FILTER_SYNTAX_ERROR {exc}", "OqlSyntaxException")

    def _authorized(self, header: str) -> bool:
        scheme, _, value = header.strip().partition(" ")
        if scheme.lower() == "basic":
            try:
                user, _, password = base64.b64decode(value.strip(), validate=True).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError):
                return False
            return compare_digest(user.encode(), self._user.encode()) & compare_digest(
                password.encode(), self._password.encode())
        if scheme.lower() == "bearer" and self._api_key:
            return compare_digest(value.strip().encode(), self._api_key.encode())
        return False

    def _record(self, request: web.Request) -> None:
        oql = request.query.get("oql", "")
        try:
            fields = sorted(field_names(oql))
        except OqlError:
            fields = []
        self.requests.append({"method": request.method, "path": request.path.removeprefix("/twsd"),
                              "params": sorted(request.query.keys()), "oql_fields": fields,
                              "headers": sorted(request.headers.keys())})

    def _count(self, kind: str, response: web.StreamResponse) -> None:
        size = len(response.body) if isinstance(response, web.Response) and isinstance(response.body, bytes) else 0
        stats = self.stats
        stats["requests"] += 1
        stats["bytes"] += size
        per_kind = stats["kinds"].setdefault(kind, {"requests": 0, "bytes": 0})
        per_kind["requests"] += 1
        per_kind["bytes"] += size
        status = str(response.status)
        stats["statuses"][status] = stats["statuses"].get(status, 0) + 1

    # --- jobs -----------------------------------------------------------------------------------

    async def _query_jobs(self, request: web.Request) -> web.Response:
        now = self.clock.now()
        query = compile_oql(request.query.get("oql", ""), job_fields(self.plan, now, self.wire))
        limit, offset = _paging(request)
        matches = query.sort(self.plan.select_jobs(query.keep))
        page = matches[offset:offset + limit]
        return web.json_response({"count": len(matches), "results": [job_json(self.plan, j, now, self.wire) for j in page],
                                  "next": _next(request, len(matches), limit, offset)})

    async def _count_jobs(self, request: web.Request) -> web.Response:
        now = self.clock.now()
        query = compile_oql(request.query.get("oql", ""), job_fields(self.plan, now, self.wire))
        return web.json_response({"count": sum(1 for job in self.plan.jobs if query.keep(job))})

    async def _get_job(self, request: web.Request) -> web.Response:
        return web.json_response(job_json(self.plan, self.plan.job(request.match_info["job_id"]), self.clock.now(),
                                          self.wire))

    # --- job logs: the V2 filter endpoint (text/plain, or a JSON page with json-log), the run-id
    # endpoint (run-id) and the V1 path ({"log": ...}) -----------------------------------------

    async def _job_log_by_filter(self, request: web.Request) -> web.Response:
        now = self.clock.now()
        query = compile_oql(request.query.get("oql", ""), job_fields(self.plan, now, self.wire))
        jobs = self.plan.select_jobs(query.keep) if request.query.get("oql") else []
        if len(jobs) != 1:
            if not jobs:
                raise JobNotFound("AWSBIO006E No job in the current plan matches the job log filter.")
            raise _bad_request("AWSWEB400E The job log filter must select exactly one job.")
        job = jobs[0]
        run = job.current_run()
        if self.wire.json_log:
            return self._log_page(request, job, run, now)
        if self._not_ready(run, now):
            return web.Response(text=NOT_READY, content_type="text/plain")
        lines = self._lines(job, run, now)
        if "Lines" in request.query or "pageNumber" in request.query:
            first, last = self._slice(request, len(lines))
            lines = lines[first:last]
        return web.Response(text="\n".join(lines), content_type="text/plain", charset="utf-8")

    async def _job_log_by_run(self, request: web.Request) -> web.Response:
        now = self.clock.now()
        job, run = self.plan.run(request.match_info["run_id"])
        return self._log_page(request, job, run, now)

    async def _v1_job_log(self, request: web.Request) -> web.Response:
        now = self.clock.now()
        job = self.plan.job(request.match_info["job_id"])
        run = job.current_run()
        if self._not_ready(run, now):
            return web.json_response({"messages": [NOT_READY]})
        return web.json_response({"log": "\n".join(self._lines(job, run, now))})

    def _log_page(self, request: web.Request, job: Job, run: Run, now: float) -> web.Response:
        """The JSON page of the json-log and run-id variants (our guess before the documentation)."""
        if self._not_ready(run, now):
            return web.json_response({"messages": [NOT_READY], "jobId": self.plan.job_id(job)})
        lines = self._lines(job, run, now)
        first, last = self._slice(request, len(lines))
        size = _int_param(request, ("Lines", "lines"), len(lines) or 1, minimum=1)
        body: dict[str, Any] = {
            "jobId": self.plan.job_id(job), "totalLines": len(lines),
            "pageNumber": _int_param(request, ("pageNumber", "pagenumber"), 1, minimum=None),
            "pageCount": math.ceil(len(lines) / size), "firstLine": first + 1, "log": "\n".join(lines[first:last])}
        if self.wire.run_id:
            body["runId"] = self.plan.run_id(job, run.number)
        return web.json_response(body)

    def _slice(self, request: web.Request, total: int) -> tuple[int, int]:
        size = _int_param(request, ("Lines", "lines"), total or 1, minimum=1)
        number = _int_param(request, ("pageNumber", "pagenumber"), 1, minimum=None)
        if number == 0:
            raise _bad_request("AWSWEB400E pageNumber is 1-based (negative numbers count from the end)")
        return _page(total, size, number)

    def _lines(self, job: Job, run: Run, now: float) -> list[str]:
        return stdlist.render(run_view(self.plan, job, run, now))

    def _not_ready(self, run: Run, now: float) -> bool:
        return self.log_delay > 0 and run.end <= now < run.end + self.log_delay

    async def _job_action(self, request: web.Request) -> web.Response:
        job, message = self.plan.job_action(request.match_info["job_id"], request.match_info["action"],
                                            self.clock.now())
        log.info("simulator_job_action", action=request.match_info["action"], job=job.label, run=job.run)
        return web.json_response(self._action_body(job, message))

    def _action_body(self, job: Job, message: str) -> dict[str, Any]:
        body: dict[str, Any] = {"messages": [message], "id": self.plan.job_id(job)}
        if self.wire.run_id:
            body["runId"] = self.plan.run_id(job)
        return body

    # --- job streams and engine -----------------------------------------------------------------

    async def _query_streams(self, request: web.Request) -> web.Response:
        now = self.clock.now()
        query = compile_oql(request.query.get("oql", ""), stream_fields(self.plan, now, self.wire))
        limit, offset = _paging(request)
        matches = query.sort([s for s in self.plan.streams if query.keep(s)])
        return web.json_response({
            "count": len(matches), "results": [stream_json(self.plan, s, now, self.wire)
                                               for s in matches[offset:offset + limit]],
            "next": _next(request, len(matches), limit, offset)})

    async def _get_stream(self, request: web.Request) -> web.Response:
        stream = self.plan.stream(request.match_info["stream_id"])
        return web.json_response(stream_json(self.plan, stream, self.clock.now(), self.wire))

    async def _stream_action(self, request: web.Request) -> web.Response:
        stream, message = self.plan.stream_action(request.match_info["stream_id"], request.match_info["action"],
                                                  self.clock.now())
        log.info("simulator_stream_action", action=request.match_info["action"], stream=stream.name)
        return web.json_response({"messages": [message], "id": self.plan.stream_id(stream)})

    async def _engine(self, request: web.Request) -> web.Response:
        return web.json_response(engine_json(self.plan))

    # --- V1 subset ------------------------------------------------------------------------------

    async def _v1_query(self, request: web.Request) -> web.Response:
        body = await _json_body(request)
        where = body.get("filters", {}).get("jobInPlanFilter", {}) if isinstance(body.get("filters"), dict) else {}
        if not isinstance(where, dict):
            raise _bad_request("AWSWEB400E filters.jobInPlanFilter must be an object")
        how_many = _int_header(request, "How-Many", DEFAULT_LIMIT)
        names = [(like(str(where.get(key) or "@")), get) for key, get in (
            ("jobName", lambda j: j.name), ("jobStreamName", lambda j: j.stream.name),
            ("workstationName", lambda j: j.stream.workstation))]
        states = {str(s).upper() for s in where.get("status") or ()}
        now = self.clock.now()
        found = []
        for job in self.plan.jobs:
            if all(pattern.fullmatch(get(job)) for pattern, get in names) and (
                    not states or job_state(job, now) in states):
                found.append(job_json(self.plan, job, now, self.wire))
                if len(found) >= how_many:
                    break
        return web.json_response(found)

    async def _v1_rerun(self, request: web.Request) -> web.Response:
        job, message = self.plan.job_action(request.match_info["job_id"], "rerun", self.clock.now())
        log.info("simulator_job_action", action="rerun", job=job.label, run=job.run, api="v1")
        return web.json_response(self._action_body(job, message))

    # --- /sim control ---------------------------------------------------------------------------

    async def _sim_stats(self, request: web.Request) -> web.Response:
        return web.json_response({**self.stats, "now": iso(self.clock.now()), "faults": asdict(self.faults),
                                  "wire": str(self.wire)})

    async def _sim_requests(self, request: web.Request) -> web.Response:
        """The TWS requests received, oldest first (at most the last 5,000)."""
        return web.json_response(list(self.requests))

    async def _sim_set_faults(self, request: web.Request) -> web.Response:
        body = await _json_body(request)
        try:
            self.faults = replace(Faults(), **body)
        except (TypeError, ValueError) as exc:
            raise _bad_request(f"bad faults: {exc}") from exc
        log.info("simulator_faults", **asdict(self.faults))
        return web.json_response(asdict(self.faults))

    async def _sim_clear_faults(self, request: web.Request) -> web.Response:
        self.clear_faults()
        return web.json_response(asdict(self.faults))

    async def _sim_advance(self, request: web.Request) -> web.Response:
        body = await _json_body(request)
        try:
            self.advance(float(body.get("seconds", 0)))
        except (TypeError, ValueError) as exc:
            raise _bad_request(f"bad seconds: {exc}") from exc
        return web.json_response({"now": iso(self.clock.now())})

    async def _sim_fail(self, request: web.Request) -> web.Response:
        body = await _json_body(request)
        try:
            self.force_fail(request.match_info["job_id"], int(body.get("returnCode", 12)))
        except JobNotFound as exc:
            return _error(404, str(exc), "ObjectNotFoundException")
        except (TypeError, ValueError) as exc:
            raise _bad_request(f"bad returnCode: {exc}") from exc
        job = self.plan.job(request.match_info["job_id"])
        return web.json_response(job_json(self.plan, job, self.clock.now(), self.wire))


# --- request parsing ----------------------------------------------------------------------------

async def _json_body(request: web.Request) -> dict[str, Any]:
    if not request.can_read_body:
        return {}
    try:
        body = await request.json()
    except ValueError as exc:
        raise _bad_request("AWSWEB400E the body is not JSON") from exc
    if not isinstance(body, dict):
        raise _bad_request("AWSWEB400E the body must be a JSON object")
    return body


def _int_param(request: web.Request, names: tuple[str, ...], default: int, *, minimum: int | None = 0) -> int:
    raw = next((request.query[n] for n in names if n in request.query), None)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise _bad_request(f"AWSWEB400E {names[0]} must be an integer") from None
    if minimum is not None and value < minimum:
        raise _bad_request(f"AWSWEB400E {names[0]} must be at least {minimum}")
    return value


def _int_header(request: web.Request, name: str, default: int) -> int:
    try:
        return max(1, int(request.headers.get(name, default)))
    except ValueError:
        raise _bad_request(f"AWSWEB400E header {name} must be an integer") from None


def _paging(request: web.Request) -> tuple[int, int]:
    limit = min(_int_param(request, ("limit",), DEFAULT_LIMIT, minimum=1), MAX_LIMIT)
    return limit, _int_param(request, ("offset",), 0)


def _next(request: web.Request, count: int, limit: int, offset: int) -> str | None:
    if offset + limit >= count:
        return None
    return str(request.url.update_query(limit=str(limit), offset=str(offset + limit)))


def _page(total: int, size: int, number: int) -> tuple[int, int]:
    """[first, last) line indexes of a page; negative pages are aligned to the end, so -1 is the tail."""
    if number > 0:
        first = min((number - 1) * size, total)
        return first, min(first + size, total)
    last = max(total - (-number - 1) * size, 0)
    return max(last - size, 0), last


# --- running ------------------------------------------------------------------------------------

@asynccontextmanager
async def run_simulator(**kwargs: Any) -> AsyncIterator[tuple[Simulator, str]]:
    """Start on 127.0.0.1, an ephemeral port; yields (simulator, base_url ending in /twsd)."""
    simulator = await asyncio.to_thread(lambda: Simulator(**kwargs))  # a big plan must not stall the loop
    runner = web.AppRunner(simulator.app(), access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        yield simulator, f"http://127.0.0.1:{port}/twsd"
    finally:
        await runner.cleanup()


def main(*, host: str = "127.0.0.1", port: int = 31116, jobs: int = 2000, seed: int = 42,
         failure_rate: float = 0.05, speed: float = 60.0, wire: str | None = None, log_delay: float = 0.0) -> None:
    """Blocking: the `resync simulator` command. Credentials from TWS_USER/TWS_PASSWORD (defaults
    resync/resync, for local use only), TWS_API_KEY optional. Prints one line with the URL and credentials hint."""
    user = os.environ.get("TWS_USER") or DEFAULT_USER
    password = os.environ.get("TWS_PASSWORD") or DEFAULT_PASSWORD
    api_key = os.environ.get("TWS_API_KEY") or None
    simulator = Simulator(jobs=jobs, seed=seed, failure_rate=failure_rate, speed=speed, user=user,
                          password=password, api_key=api_key, wire=wire, log_delay=log_delay)
    if port == 0:  # an ephemeral port, chosen now so that the banner can say which
        with socket.socket() as probe:
            probe.bind((host, 0))
            port = probe.getsockname()[1]
    secret = "the default password 'resync' (local use only)" if password == DEFAULT_PASSWORD else "TWS_PASSWORD"
    bearer = ", or Bearer TWS_API_KEY" if api_key else ""
    print(f"TWS simulator at http://{host}:{port}/twsd — {jobs} jobs, seed {seed}, {speed:g}x time, "
          f"wire {simulator.wire}, ready in "
          f"{simulator.startup_seconds:.1f}s; log in as {user!r} with {secret}{bearer}", flush=True)
    web.run_app(simulator.app(), host=host, port=port, print=None, access_log=None)
