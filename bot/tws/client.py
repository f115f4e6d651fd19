"""The resilient TWS client: one pooled aiohttp session, the V2 API, typed results.

Every request goes through ``_request``, the one edge where aiohttp errors and HTTP statuses
become ``bot.errors`` exceptions:

    connection refused / DNS / TLS   -> next URL (nothing was sent); all failed -> TwsUnavailable
    timeout, dropped connection, 5xx -> GET: retried with backoff, then TwsUnavailable
                                        PUT: OutcomeUnknown (it may have been applied)
    5xx with a TWS error body        -> TwsUnavailable("TWS answered: <message>"): an answer, so an
                                        action is known NOT applied (never OutcomeUnknown)
    429, or a 5xx without a message  -> TwsUnavailable whose ``answer`` is the status line ("HTTP 429
                                        Too Many Requests (retry after 30 s)", "HTTP 502 Bad Gateway,
                                        with no TWS message"): something answered, so never
                                        "unreachable"; an action after a bare 5xx is still
                                        OutcomeUnknown (a proxy may have lost TWS's answer)
    401 TwsAuthError, 403 TwsForbidden, 404 / AWSBIO006E JobNotFound, AWSBIN076E InvalidState,
    EQQM637I LogNotReady, unreadable body or unexpected status -> BadResponse

Each attempt carries its own ``Request-Id``; the first one is logged with every attempt as
``correlation_id``. Idempotent reads go through a ``ReadCache`` (coalesced while in flight, reused
for ``TWS_READ_CACHE_TTL`` seconds); a job read by id and actions never do, and an action empties it.

Unavailability (not 4xx answers) feeds a pybreaker circuit breaker; while it is open every call
fails fast with TwsUnavailable(``held_for``=seconds left), carrying the ``answer`` of the failures
that opened it: a breaker opened by TWS's error answers still says what TWS said, and only one
opened by silence (refused, timed out, dropped) reads as unreachable. Wire details (paths,
fields, OQL) live in ``wire.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import difflib
import json
import math
import random
import ssl
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from datetime import datetime
from http import HTTPStatus
from typing import Any

import aiohttp
import pybreaker
import structlog

from bot.config import TwsSettings
from bot.errors import (
    AmbiguousJob,
    BadResponse,
    ConfigError,
    InvalidState,
    JobNotFound,
    LogNotReady,
    OutcomeUnknown,
    TwsAuthError,
    TwsError,
    TwsForbidden,
    TwsUnavailable,
)
from bot.tws import wire
from bot.tws.cache import ReadCache
from bot.tws.models import ActionResult, EngineInfo, Job, JobLog, JobStream
from bot.tws.names import JobRef, sched_matches, workstation_matches

log = structlog.get_logger(__name__)

JOB_ACTIONS = ("rerun", "hold", "release", "cancel", "kill", "confirm-succ")
STREAM_ACTIONS = ("hold", "release", "cancel")

#: (operation, HTTP method, seconds, error class name or None): how the web layer gets metrics.
Observe = Callable[[str, str, float, str | None], None]

_RESOLVE_LIMIT = 50  # candidates shown when a name is ambiguous
_BACKOFF_CAP = 10.0
#: Reads whose answers may be shared and reused (ReadCache); ``get_job`` is the state check: never.
_CACHED = frozenset({"iter_jobs", "count_jobs", "resolve_job", "similar_job_names", "successors",
                     "query_streams", "get_stream", "job_log"})


class _NoSuchForm(BadResponse):
    """This server does not serve that way of asking (404 without a TWS body, 405, 501)."""


class _MaybeSent(aiohttp.ClientError):
    """The connection dropped after the request went out; the server may have acted on it."""


async def _no_resend(request: aiohttp.ClientRequest, handler: Any) -> aiohttp.ClientResponse:
    """aiohttp silently resends PUT (and GET) once when a connection drops; we decide instead.

    Re-raising as a plain ClientError takes the error out of aiohttp's retry path, so a rerun is
    never sent twice behind our back and every GET retry is counted, backed off and logged.
    """
    try:
        return await handler(request)
    except (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError) as exc:
        if isinstance(exc, aiohttp.ClientConnectorError):
            raise
        raise _MaybeSent(f"connection dropped ({type(exc).__name__})") from exc


class _NotSent(Exception):
    """Nothing reached this URL (refused, DNS, TLS handshake): safe to try the next one."""


class _BreakerWatch(pybreaker.CircuitBreakerListener):
    """Remembers when the breaker opened (our fail-fast clock) and what TWS said to the failures that
    opened it, and logs every transition. One per breaker: ``uncached()`` views share it."""

    def __init__(self) -> None:
        self.opened_at = 0.0
        #: The newest answer among the failures since the last success (a failed half-open probe
        #: starts over: it alone reopened the breaker); None when none of them was answered.
        self.answer: str | None = None

    def failed(self, error: TwsError, *, probe: bool) -> None:
        said = getattr(error, "answer", None)  # OutcomeUnknown carries none: nothing came back
        self.answer = said if probe else (said or self.answer)

    def succeeded(self) -> None:
        self.answer = None

    def state_change(self, cb: pybreaker.CircuitBreaker, old_state: Any, new_state: Any) -> None:
        if new_state.name == pybreaker.STATE_OPEN:
            self.opened_at = time.monotonic()
        log.warning("tws_breaker_state", state=new_state.name, previous=getattr(old_state, "name", None))


class TwsClient:
    """Talks to one TWS master (with backups), translating every failure into bot.errors."""

    def __init__(self, settings: TwsSettings, *, session: aiohttp.ClientSession | None = None,
                 observe: Observe | None = None, backoff: float = 0.5) -> None:
        if not settings.urls:
            raise ConfigError("TWS_URL is required")
        if not settings.api_key and not (settings.user and settings.password):
            raise ConfigError("TWS_USER and TWS_PASSWORD (or TWS_API_KEY) are required")
        self._settings = settings
        self._urls = tuple(u.rstrip("/") for u in settings.urls)
        self._active = 0
        self._session = session
        self._owns_session = session is None
        self._observe = observe
        self._backoff = backoff
        self._timeout = aiohttp.ClientTimeout(total=settings.timeout)
        self._auth = wire.authorization(user=settings.user, password=settings.password, api_key=settings.api_key)
        self._ssl = _ssl_option(settings)
        self._watch = _BreakerWatch()
        self._breaker = pybreaker.CircuitBreaker(fail_max=settings.breaker_fail_max,
                                                 reset_timeout=settings.breaker_reset, listeners=[self._watch])
        self._probing = False
        self._cache = ReadCache(settings.read_cache_ttl)
        self._log_form: str | None = None  # the documented log form this server answered (wire.LOG_FORMS)

    async def __aenter__(self) -> TwsClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the session only when this client created it."""
        if self._owns_session and self._session is not None:
            await self._session.close()
            self._session = None

    def uncached(self) -> TwsClient:
        """This client without the read cache, for a reader that must see every change at once (the
        alert poller). It shares the session and the circuit breaker; closing it closes nothing."""
        view = copy.copy(self)
        view._cache = ReadCache(0)
        view._owns_session = False
        if view._session is None:  # share one session from the first request on
            self._session = view._session = aiohttp.ClientSession()
        return view

    @property
    def breaker_state(self) -> str:
        """"closed", "open" or "half-open"."""
        return self._breaker.current_state

    @property
    def active_url(self) -> str:
        """The base URL that answered last (master or a backup)."""
        return self._urls[self._active]

    # --- reads (retried with backoff + full jitter) -----------------------------------------
    async def iter_jobs(self, *, name: str | None = None, stream: str | None = None,
                        workstation: str | None = None, status: str | Iterable[str] | None = None,
                        late: bool = False, overdue: datetime | None = None,
                        page_size: int = 500) -> AsyncIterator[Job]:
        """Every matching job in the plan, page by page. ``status`` may be "FAILED" (the group),
        one internal status, or several; ``late`` keeps jobs TWS marks late; ``overdue`` keeps jobs
        whose latest start or deadline is before that instant. Names may use ``@`` or ``*`` wildcards."""
        oql = wire.job_filter(name=name, stream=stream, workstation=workstation, status=status, late=late,
                              overdue=overdue)
        async for raw in self._pages("iter_jobs", wire.JOBS, oql, page_size):
            job = wire.job(raw)
            if workstation is None or workstation_matches(workstation, job.workstation_path):
                yield job

    async def query_jobs(self, **filters: Any) -> list[Job]:
        """``iter_jobs`` collected into a list (same filters)."""
        return [job async for job in self.iter_jobs(**filters)]

    async def count_jobs(self, **filters: Any) -> int:
        oql = wire.job_filter(**filters)
        return wire.count(await self._get("count_jobs", wire.JOB_COUNT, wire.oql_params(oql)))

    async def get_job(self, job_id: str) -> Job:
        return wire.job(await self._get("get_job", wire.job_path(job_id)))

    async def job_log(self, job_id: str, *, tail: int | None = 200, run_id: str | None = None) -> JobLog:
        """The last ``tail`` lines of the current run's stdlist (None: the whole log).

        The documented forms are tried in ``wire.LOG_FORMS`` order, starting with the one this
        server answered last, so a steady state costs one request (no job read first). The run-id
        form needs ``run_id`` (``Job.run_id``, when the server sends one). Raises LogNotReady when
        TWS has not retrieved the log yet (after ``wire.LOG_NOT_READY_RETRIES`` pauses), JobNotFound,
        or the error of the last form tried when none could answer.
        """
        remembered = self._log_form
        errors: list[TwsError] = []
        looked_up = False
        for form in dict.fromkeys(([remembered] if remembered else []) + list(wire.LOG_FORMS)):
            if form == wire.LOG_BY_RUN and run_id is None and not looked_up:
                looked_up = True  # only reached when the forms before could not answer
                run_id = (await self.get_job(job_id)).run_id
            if form == wire.LOG_BY_RUN and run_id is None:
                continue
            try:
                found = await self._log_in_form(form, job_id, run_id, tail)
            except (BadResponse, JobNotFound) as exc:
                # A server without this endpoint may read its path as a job id ("joblog" not
                # found): while discovering, that is no verdict; from the form it answers, it is.
                if form == remembered and not isinstance(exc, _NoSuchForm):
                    raise
                log.info("tws_log_form_unavailable", form=form, reason=str(exc)[:200])
                errors.append(exc)
                continue
            if self._log_form != form:
                log.debug("tws_log_form", form=form)
                self._log_form = form
            return found
        not_found = [e for e in errors if isinstance(e, JobNotFound)]
        if not_found and all(isinstance(e, (JobNotFound, _NoSuchForm)) for e in errors):
            raise not_found[0]
        reasons = "; ".join(dict.fromkeys(str(e) for e in errors))[:400]
        raise BadResponse(f"TWS answered none of the documented job log requests ({reasons or 'no form applies'})")

    async def _log_in_form(self, form: str, job_id: str, run_id: str | None, tail: int | None) -> JobLog:
        for attempt in range(wire.LOG_NOT_READY_RETRIES + 1):
            try:
                if tail is None:
                    return await self._whole_log(form, job_id, run_id)
                return await self._log_tail(form, job_id, run_id, max(1, tail))
            except LogNotReady:
                if attempt >= wire.LOG_NOT_READY_RETRIES:
                    raise
                log.info("tws_log_not_ready", job_id=job_id, attempt=attempt + 1)
                await asyncio.sleep(self._backoff * 4)
        raise AssertionError("unreachable")  # pragma: no cover

    async def successors(self, job: Job) -> list[Job]:
        """Jobs in the plan that depend on ``job`` (for the downstream impact of a failure)."""
        return (await self.successors_of([job]))[job.id]

    async def successors_of(self, jobs: Sequence[Job]) -> dict[str, list[Job]]:
        """The successors of many jobs, keyed by each job's id (every id present, [] for none).

        The documented query is by job stream (``dependencies.jobStreamId``), one query per
        ``wire.SUCCESSORS_CHUNK`` streams; each successor's dependency objects then say which of
        the jobs it waits for (``wire.depends_on``). A successor of several jobs is listed under each.
        Raises TwsError when TWS cannot answer: callers say "unknown", never 0.
        """
        by_id = {job.id: job for job in jobs}
        found: dict[str, list[Job]] = {job_id: [] for job_id in by_id}
        streams = list(dict.fromkeys(job.stream_id for job in by_id.values() if job.stream_id))
        if len(streams) < len({job.stream_id for job in by_id.values()}):
            raise BadResponse("TWS sent a job without a job stream id: its successors cannot be asked for")
        for start in range(0, len(streams), wire.SUCCESSORS_CHUNK):
            chunk = streams[start:start + wire.SUCCESSORS_CHUNK]
            mine = [job for job in by_id.values() if job.stream_id in chunk]
            seen: set[tuple[str, str]] = set()
            async for raw in self._pages("successors", wire.JOBS, wire.successors_of_filter(chunk), 500):
                successor = wire.job(raw)
                for job in mine:
                    if (job.id, successor.id) not in seen and successor.id != job.id and any(
                            wire.depends_on(d, job) for d in successor.dependencies):
                        seen.add((job.id, successor.id))
                        found[job.id].append(successor)
        return found

    async def query_streams(self, *, name: str | None = None, workstation: str | None = None,
                            status: str | None = None) -> list[JobStream]:
        oql = wire.stream_filter(name=name, workstation=workstation, status=status)
        streams = [wire.stream(raw) async for raw in self._pages("query_streams", wire.STREAMS, oql, 500)]
        return [s for s in streams if workstation is None or workstation_matches(workstation, s.workstation_path)]

    async def get_stream(self, stream_id: str) -> JobStream:
        return wire.stream(await self._get("get_stream", wire.stream_path(stream_id)))

    async def engine_info(self) -> EngineInfo:
        body = await self._get("engine_info", wire.ENGINE_INFO)
        return wire.engine(body, answered_by=self.active_url)

    async def resolve_job(self, ref: JobRef) -> Job:
        """Exactly one plan instance for ``ref``; JobNotFound or AmbiguousJob(candidates) otherwise."""
        oql = wire.job_filter(name=ref.job, stream=ref.stream, workstation=ref.workstation)
        body = await self._get("resolve_job", wire.JOBS, {**wire.oql_params(oql), **wire.page_params(_RESOLVE_LIMIT, 0)})
        results, total, _ = wire.envelope(body)
        jobs = [wire.job(raw) for raw in results]
        if ref.workstation:
            jobs = [job for job in jobs if workstation_matches(ref.workstation, job.workstation_path)]
        if ref.sched:  # conman's instance syntax: STREAM(0600 11/21/26)
            jobs = [job for job in jobs if sched_matches(ref.sched, job.sched_time)]
        total = max(total or 0, len(jobs)) if len(jobs) == len(results) else len(jobs)
        if not jobs:
            raise JobNotFound(f"No job {ref} in the current plan")
        if total > 1:
            raise AmbiguousJob(f"{total} jobs in the current plan match {ref}", jobs)
        return jobs[0]

    async def similar_job_names(self, name: str, limit: int = 5) -> list[str]:
        """Plan job names sharing ``name``'s first letters, closest first (for "did you mean")."""
        name = name.strip().upper()
        if len(name) < 2:
            return []
        oql = wire.name_term("name", name[:3] + "@")
        body = await self._get("similar_job_names", wire.JOBS, {"oql": oql, **wire.page_params(wire.PAGE_LIMIT_MAX, 0)})
        names = {str(raw.get("name", "")).upper() for raw in wire.envelope(body)[0] if isinstance(raw, dict)}
        return difflib.get_close_matches(name, sorted(names - {""}), n=limit, cutoff=0.0)

    # --- actions (never retried blindly: OutcomeUnknown when the result is lost) ----------------
    async def job_action(self, job_id: str, action: str) -> ActionResult:
        """One of JOB_ACTIONS on a job instance."""
        if action not in JOB_ACTIONS:
            raise ValueError(f"unknown job action {action!r}; expected one of {JOB_ACTIONS}")
        self._cache.invalidate()
        try:
            body = await self._put(f"job_{action}", wire.job_action_path(job_id, action))
        finally:
            self._cache.invalidate()  # whatever the answer, what was read about the job may be stale
        log.info("tws_job_action", action=action, job_id=job_id)
        return wire.action_result(body, action=action, target_id=job_id)

    async def rerun(self, job_id: str) -> ActionResult:
        return await self.job_action(job_id, "rerun")

    async def hold(self, job_id: str) -> ActionResult:
        return await self.job_action(job_id, "hold")

    async def release(self, job_id: str) -> ActionResult:
        return await self.job_action(job_id, "release")

    async def cancel(self, job_id: str) -> ActionResult:
        return await self.job_action(job_id, "cancel")

    async def kill(self, job_id: str) -> ActionResult:
        return await self.job_action(job_id, "kill")

    async def confirm_succ(self, job_id: str) -> ActionResult:
        return await self.job_action(job_id, "confirm-succ")

    async def stream_action(self, stream_id: str, action: str) -> ActionResult:
        if action not in STREAM_ACTIONS:
            raise ValueError(f"unknown job stream action {action!r}; expected one of {STREAM_ACTIONS}")
        self._cache.invalidate()
        try:
            body = await self._put(f"stream_{action}", wire.stream_action_path(stream_id, action))
        finally:
            self._cache.invalidate()
        log.info("tws_stream_action", action=action, stream_id=stream_id)
        return wire.action_result(body, action=action, target_id=stream_id)

    # --- paging ---------------------------------------------------------------------------------
    async def _pages(self, operation: str, path: str, oql: str | None, page_size: int) -> AsyncIterator[Any]:
        """Every result of a query: follow ``next`` when given, else step ``offset`` up to ``count``.

        The plan changes while we page, so an instance may shift across a page boundary: ids
        already yielded are skipped.
        """
        limit = max(1, min(page_size, wire.PAGE_LIMIT_MAX))
        params: dict[str, str] = {**wire.oql_params(oql), **wire.page_params(limit, 0)}
        seen: set[str] = set()
        offset = 0
        while True:
            results, total, link = wire.envelope(await self._get(operation, path, params))
            for raw in results:
                key = raw.get("id") if isinstance(raw, dict) else None
                if key is None or key not in seen:
                    seen.add(key)
                    yield raw
            offset += len(results)
            if not results:
                return
            if link:
                path, params = wire.follow_next(link, base_url=self.active_url, current_path=path)
            elif total is not None and offset < total:
                params = {**params, **wire.page_params(limit, offset)}
            else:
                return

    async def _log_tail(self, form: str, job_id: str, run_id: str | None, tail: int) -> JobLog:
        """One request for the last page; a second only if a paged answer is a short remainder."""
        last, number, pages = await self._log_page(form, job_id, run_id, lines=tail, page=-1)
        got = _lines(last.text)
        if len(got) >= tail or number is None or pages is None or pages <= 1 or not last.truncated:
            return wire.log_tail(last, tail)
        previous_number = (number if number > 0 else pages) - 1
        previous, _, _ = await self._log_page(form, job_id, run_id, lines=tail, page=previous_number)
        merged = (_lines(previous.text) + got)[-tail:]
        first = None if last.first_line is None else last.first_line + len(got) - len(merged)
        return JobLog(job_id=last.job_id, run_id=last.run_id, text="\n".join(merged),
                      total_lines=last.total_lines, first_line=first, source=form)

    async def _whole_log(self, form: str, job_id: str, run_id: str | None) -> JobLog:
        first, _, pages = await self._log_page(form, job_id, run_id, lines=None, page=None)
        if not pages or pages <= 1:
            return first
        parts = [first.text]
        for number in range(2, pages + 1):
            page, _, _ = await self._log_page(form, job_id, run_id, lines=wire.LOG_PAGE_LINES, page=number)
            parts.append(page.text)
        text = "\n".join(p for p in parts if p)
        return JobLog(job_id=first.job_id, run_id=first.run_id, text=text, total_lines=first.total_lines,
                      first_line=1, source=form)

    async def _log_page(self, form: str, job_id: str, run_id: str | None, *, lines: int | None,
                        page: int | None) -> tuple[JobLog, int | None, int | None]:
        path, params = wire.log_request(form, job_id=job_id, run_id=run_id, lines=lines, page=page)

        def decode(method: str, path: str, status: int, headers: Mapping[str, str], raw: bytes) -> Any:
            # Read inside the request, so "not retrieved yet" (EQQM637I) is an error the cache never keeps.
            content_type, raw = _raw(method, path, status, headers, raw)
            return wire.log_answer(raw, content_type, job_id=job_id, run_id=run_id, source=form,
                                   paged=bool(params.get("Lines")))

        return await self._request("job_log", "GET", path, params, decode=decode)

    # --- the edge: one request, with breaker, retries and failover --------------------------------
    async def _get(self, operation: str, path: str, params: dict[str, str] | None = None) -> Any:
        return await self._request(operation, "GET", path, params)

    async def _put(self, operation: str, path: str) -> Any:
        return await self._request(operation, "PUT", path, None, body={})

    async def _request(self, operation: str, method: str, path: str, params: dict[str, str] | None,
                       *, body: Any = None, decode: Decode | None = None) -> Any:
        decode = decode or _decode
        if method == "GET" and operation in _CACHED:
            key = (operation, path, tuple(sorted((params or {}).items())))  # the path names the decoding too
            return await self._cache.read(key, lambda: self._observed(operation, method, path, params, body, decode))
        return await self._observed(operation, method, path, params, body, decode)

    async def _observed(self, operation: str, method: str, path: str, params: dict[str, str] | None, body: Any,
                        decode: Decode) -> Any:
        started, error = time.perf_counter(), None
        try:
            return await self._guarded(method, path, params, body, decode)
        except BaseException as exc:
            error = type(exc).__name__
            raise
        finally:
            if self._observe is not None:
                self._observe(operation, method, time.perf_counter() - started, error)

    async def _guarded(self, method: str, path: str, params: dict[str, str] | None, body: Any,
                       decode: Decode) -> Any:
        probe = self._admit()
        try:
            result = await self._with_retries(method, path, params, body, decode)
        except (TwsUnavailable, OutcomeUnknown) as exc:
            self._record(exc, probe=probe)
            raise
        except TwsError:
            self._record(None, probe=probe)  # TWS answered: it is up, even if it said no
            raise
        finally:
            if probe:
                self._probing = False
        self._record(None, probe=probe)
        return result

    def _admit(self) -> bool:
        """Fail fast while the breaker is open; let one probe through once reset_timeout passed."""
        state = self._breaker.current_state
        if state == pybreaker.STATE_CLOSED:
            return False
        if state == pybreaker.STATE_OPEN:
            wait = self._watch.opened_at + self._breaker.reset_timeout - time.monotonic()
            if wait > 0:
                raise self._held(f"circuit open after repeated failures; next try in {wait:.0f}s", wait)
            self._breaker.half_open()
        if self._probing:  # the probe answers within the timeout
            raise self._held("circuit half-open: a probe request is in flight", self._settings.timeout)
        self._probing = True
        return True

    def _held(self, state: str, wait: float) -> TwsUnavailable:
        """The fail-fast error: the breaker's state, and what TWS said to the failures behind it."""
        answer = self._watch.answer
        if answer is None:
            return TwsUnavailable(f"TWS is unavailable ({state})", held_for=wait)
        return TwsUnavailable(f"TWS answered with errors ({state}): {answer}", answer=answer, held_for=wait)

    def _record(self, error: TwsError | None, *, probe: bool) -> None:
        """Feed pybreaker's state machine through its sync ``call`` (its call_async needs tornado)."""
        if error is None:
            self._watch.succeeded()
        else:
            self._watch.failed(error, probe=probe)
        with contextlib.suppress(pybreaker.CircuitBreakerError, TwsError):
            if error is None:
                self._breaker.call(_succeed)
            else:
                self._breaker.call(_fail, error)

    async def _with_retries(self, method: str, path: str, params: dict[str, str] | None, body: Any,
                            decode: Decode) -> Any:
        correlation_id = str(uuid.uuid4())  # the first attempt's Request-Id, kept in every attempt's logs
        attempts = self._settings.retries + 1 if method == "GET" else 1
        for attempt in range(1, attempts + 1):
            request_id = correlation_id if attempt == 1 else str(uuid.uuid4())
            try:
                return await self._any_url(method, path, params, body, request_id, correlation_id, attempt, decode)
            except TwsUnavailable as exc:
                if attempt >= attempts:
                    raise
                delay = random.uniform(0, min(_BACKOFF_CAP, self._backoff * 2 ** (attempt - 1)))
                log.info("tws_retry", method=method, path=path, attempt=attempt, delay=round(delay, 3),
                         reason=str(exc), request_id=request_id, correlation_id=correlation_id)
                await asyncio.sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _any_url(self, method: str, path: str, params: dict[str, str] | None, body: Any,
                       request_id: str, correlation_id: str, attempt: int, decode: Decode) -> Any:
        """Try the active URL, then the others in order, moving on only when nothing was sent."""
        reasons = []
        for index in [(self._active + i) % len(self._urls) for i in range(len(self._urls))]:
            url = self._urls[index]
            try:
                result = await self._send(url, method, path, params, body, request_id, correlation_id, attempt,
                                          decode)
            except _NotSent as exc:
                reasons.append(f"{url} ({exc})")
                log.warning("tws_url_unreachable", url=url, reason=str(exc), request_id=request_id,
                            correlation_id=correlation_id)
                continue
            if index != self._active:
                log.warning("tws_failover", from_url=self.active_url, to_url=url)
                self._active = index
            return result
        raise TwsUnavailable("TWS is unreachable: " + "; ".join(reasons))

    async def _send(self, base: str, method: str, path: str, params: dict[str, str] | None, body: Any,
                    request_id: str, correlation_id: str, attempt: int, decode: Decode) -> Any:
        headers = {**wire.BASE_HEADERS, "Authorization": self._auth, wire.REQUEST_ID_HEADER: request_id}
        log.debug("tws_request", method=method, url=base, path=path, params=params, attempt=attempt,
                  request_id=request_id, correlation_id=correlation_id)
        try:
            async with self._client().request(method, base + path, params=params, json=body, headers=headers,
                                              ssl=self._ssl, timeout=self._timeout,
                                              middlewares=(_no_resend,)) as response:
                raw = await response.read()
                status = response.status
                headers = response.headers
        except (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError) as exc:
            raise _NotSent(type(exc).__name__) from exc
        except (asyncio.TimeoutError, aiohttp.ClientError) as exc:
            what = "timed out" if isinstance(exc, asyncio.TimeoutError) else f"failed ({type(exc).__name__})"
            raise _lost(method, path, f"the request {what}") from exc
        log.debug("tws_response", status=status, bytes=len(raw), request_id=request_id)
        return decode(method, path, status, headers, raw)

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        return self._session


def _lost(method: str, path: str, what: str) -> TwsError:
    """A reply that never came: harmless for a read, unknown outcome for an action."""
    if method == "GET":
        return TwsUnavailable(f"TWS did not answer: {what}")
    return OutcomeUnknown(f"TWS did not confirm {method} {path}: {what}. The action may or may not have "
                          f"been applied; check the current state before trying again.")


#: (method, path, status, response headers, body) -> the decoded answer, or raises what it stands for.
Decode = Callable[[str, str, int, Mapping[str, str], bytes], Any]


def _decode(method: str, path: str, status: int, headers: Mapping[str, str], raw: bytes) -> Any:
    """A 2xx JSON body, or the error it stands for."""
    if 200 <= status < 300:
        try:
            return json.loads(raw) if raw.strip() else {}
        except ValueError as exc:
            raise BadResponse(f"TWS answered {status} with a body that is not JSON") from exc
    raise _error(method, path, status, raw, headers)


def _raw(method: str, path: str, status: int, headers: Mapping[str, str], raw: bytes) -> tuple[str, bytes]:
    """A 2xx body as it came, with its content type (a job log may be text/plain), or the error it stands for."""
    if 200 <= status < 300:
        return headers.get("Content-Type", ""), raw
    raise _error(method, path, status, raw, headers)


def _error(method: str, path: str, status: int, raw: bytes, headers: Mapping[str, str]) -> TwsError:
    """Every documented error shape (``messages`` with AWS* codes, ``exceptionName``) to its exception."""
    messages, exception = wire.error_body(raw)
    text = "; ".join(messages)[:300]
    if status == 401:
        return TwsAuthError("TWS refused the credentials (HTTP 401" + (f": {text})" if text else ")"))
    if status == 403:
        return TwsForbidden(f"The TWS user may not do this: {text or 'HTTP 403'}")
    if wire.log_not_ready(messages):
        return LogNotReady(text)
    if wire.has_code(messages, wire.INVALID_STATE_CODE):
        return InvalidState(text)
    if wire.has_code(messages, wire.NOT_FOUND_CODE) or (status == 404 and messages):
        return JobNotFound(f"Not in the current plan: {text}")
    if status in (404, 405, 501) and not messages:
        return _NoSuchForm(f"TWS answered HTTP {status} to {method} {path} (no such endpoint here)")
    if status == 429:  # throttled: the request was refused, so an action is known not applied
        answer = _status_line(status, text, wire.retry_after(headers.get(wire.RETRY_AFTER_HEADER)))
        applied = "" if method == "GET" else "; the action was not applied"
        return TwsUnavailable(f"TWS is throttling requests: {answer}{applied}", answer=answer)
    if status >= 500 and messages:  # TWS itself answered: for an action, that is a refusal, not a loss
        return TwsUnavailable(f"TWS answered: {text}", answer=text)
    if status >= 500:
        if method != "GET":  # a proxy's 502/504 may hide an action TWS did apply
            return _lost(method, path, f"it answered HTTP {status} without a TWS message")
        answer = _status_line(status, "", None)
        return TwsUnavailable(f"TWS did not serve the request: {answer}", answer=answer)
    detail = text or (exception or f"HTTP {status}")
    return BadResponse(f"TWS answered HTTP {status} to {method} {path}: {detail}")


def _status_line(status: int, text: str, retry: float | None) -> str:
    """What came back, said plainly: "HTTP 429 Too Many Requests (retry after 30 s)", with TWS's own
    message when there is one, else "HTTP 502 Bad Gateway, with no TWS message"."""
    try:
        line = f"HTTP {status} {HTTPStatus(status).phrase}"
    except ValueError:
        line = f"HTTP {status}"
    line += f": {text}" if text else ("" if status == 429 else ", with no TWS message")
    return line + (f" (retry after {math.ceil(retry)} s)" if retry is not None else "")


def _lines(text: str) -> list[str]:
    return text.split("\n") if text else []


def _succeed() -> None:
    return None


def _fail(error: TwsError) -> None:
    raise error


def _ssl_option(settings: TwsSettings) -> ssl.SSLContext | bool:
    if not settings.verify_tls:
        log.warning("tws_tls_verification_disabled", urls=settings.urls,
                    hint="anyone on the network path can impersonate TWS; set TWS_CA_BUNDLE instead")
        return False
    if settings.ca_bundle:
        return ssl.create_default_context(cafile=settings.ca_bundle)
    return True
