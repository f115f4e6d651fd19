"""Every uncertain choice about the TWS V2 wire, in one module.

Much of the V2 API is known only from third-party notes ([C]) or inferred ([I]) (see
docs/tws-wire.md and shared/tws-api.md). Paths, query parameters, paging, field names, the
API-key header, message codes, the OQL we emit and the JSON -> model mapping all live here, so
that checking them against a real server changes this file and nothing else. The client
(``client.py``) owns the HTTP behaviour: retries, failover, breaker, error translation.
"""

from __future__ import annotations

import base64
import json
import re
import time
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import parse_qsl, urljoin, urlsplit

from bot.errors import BadResponse, JobNotFound, LogNotReady
from bot.tws import names
from bot.tws.models import FAILED_STATES, ActionResult, Dependency, EngineInfo, Job, JobLog, JobStream

# --- paths (relative to the base URL, which ends in /twsd) ----------------------------------
JOBS = "/api/v2/plan/job"  # [A]/[C]
JOB_COUNT = "/api/v2/plan/job/count"  # [C]
STREAMS = "/api/v2/plan/jobstream"  # [A]/[C]
ENGINE_INFO = "/api/v2/engine/info"  # [C]


def job_path(job_id: str) -> str:
    return f"{JOBS}/{_segment(job_id)}"


def job_action_path(job_id: str, action: str) -> str:
    return f"{JOBS}/{_segment(job_id)}/action/{action}"  # [C], from the product's OpenAPI file


def stream_path(stream_id: str) -> str:
    return f"{STREAMS}/{_segment(stream_id)}"


def stream_action_path(stream_id: str, action: str) -> str:
    return f"{STREAMS}/{_segment(stream_id)}/action/{action}"


def joblog_path(run_id: str) -> str:
    return f"{JOBS}/run/{_segment(run_id)}/joblog"  # [C]


JOBLOG_BY_FILTER = "/api/v2/plan/job/joblog"  # [C]: "GET .../plan/job/joblog?..."; the filter is [I]


def v1_joblog_path(job_id: str) -> str:
    return f"/plan/current/job/{_segment(job_id)}/joblog"  # [B], the V1 z/OS sample; {"log": "..."}


def _segment(value: str) -> str:
    """Ids are UUIDs; refuse anything that could walk to another path."""
    if not value or any(c in value for c in "/?#%\\") or value in {".", ".."}:
        raise JobNotFound(f"'{value[:60]}' is not a TWS id")
    return value


# --- headers and authentication --------------------------------------------------------------
BASE_HEADERS: Mapping[str, str] = {"Accept": "application/json", "Content-Type": "application/json"}
REQUEST_ID_HEADER = "Request-Id"  # [B]: the official client sends a uuid4
#: [I] No TWS source documents HTTP 429 or ``Retry-After``; a gateway or proxy in front of TWS may
#: throttle, and HTTP gives the hint as delay-seconds or an HTTP-date (RFC 9110, 10.2.3).
RETRY_AFTER_HEADER = "Retry-After"


def retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds a ``Retry-After`` value asks to wait (never negative); None when absent or unreadable."""
    text = (value or "").strip()
    if text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # an HTTP-date is GMT by definition
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def authorization(*, user: str | None, password: str | None, api_key: str | None) -> str:
    """Basic with a WA user [B]; an API key goes as Bearer [C] and wins when both are set."""
    if api_key:
        return f"Bearer {api_key}"
    token = base64.b64encode(f"{user or ''}:{password or ''}".encode()).decode("ascii")
    return f"Basic {token}"


# --- message codes -----------------------------------------------------------------------------
NOT_FOUND_CODE = "AWSBIO006E"  # unknown id [C]
INVALID_STATE_CODE = "AWSBIN076E"  # action not allowed in the job's state [C]


#: "The log is not retrieved yet": the z/OS sample retries after 10 s [B]. Equivalents go here.
LOG_NOT_READY_CODES = ("EQQM637I",)
#: How many times the client asks again (after a short pause) before saying "not available yet" [I].
LOG_NOT_READY_RETRIES = 1


def error_body(raw: bytes) -> tuple[tuple[str, ...], str | None]:
    """(``messages``, ``exceptionName``) of an error body ``{"messages": [...], "exceptionName": ...}``
    [B][C]; a lone ``message`` string is read too [I]. ((), None) when the body is not that shape."""
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return (), None
    if not isinstance(body, dict):
        return (), None
    messages = body.get("messages", body.get("message"))
    exception = body.get("exceptionName")
    exception = str(exception) if isinstance(exception, str) and exception else None
    if isinstance(messages, str):
        return ((messages,) if messages else ()), exception
    if isinstance(messages, list):
        return tuple(str(m) for m in messages if m not in (None, "")), exception
    return (), exception


def error_messages(raw: bytes) -> tuple[str, ...]:
    """The ``messages`` of an error body; () if none."""
    return error_body(raw)[0]


def has_code(messages: Iterable[str], code: str) -> bool:
    return any(m.startswith(code) or f" {code}" in m for m in messages)


# --- paging ----------------------------------------------------------------------------------
PAGE_LIMIT_MAX = 1000  # [I]


def page_params(limit: int, offset: int) -> dict[str, str]:
    return {"limit": str(max(1, min(limit, PAGE_LIMIT_MAX))), "offset": str(max(0, offset))}


def envelope(body: Any) -> tuple[list[Any], int | None, str | None]:
    """(results, total count, next link) of a ``{count, results, next}`` page."""
    if not isinstance(body, dict) or not isinstance(body.get("results"), list):
        raise BadResponse("TWS answered a query without a 'results' list")
    count, link = body.get("count"), body.get("next")
    return body["results"], count if isinstance(count, int) else None, link if isinstance(link, str) and link else None


def follow_next(link: str, *, base_url: str, current_path: str) -> tuple[str, dict[str, str]]:
    """(path below the base URL, query params) of a ``next`` link, absolute or relative.

    Only the path and query are kept, so the next page goes through failover like any request.
    """
    absolute = urlsplit(urljoin(base_url + current_path, link))
    base_path = urlsplit(base_url).path.rstrip("/")
    if not absolute.path.startswith(base_path + "/"):
        raise BadResponse("TWS sent a 'next' page link outside its API")
    return absolute.path[len(base_path):], dict(parse_qsl(absolute.query, keep_blank_values=True))


# --- job log [B]/[C]/[I] ----------------------------------------------------------------------
#: The documented ways to fetch a stdlist, in the order the client tries them; the first that
#: answers is remembered per server (a steady state costs one request).
LOG_BY_FILTER = "filter"  # GET /api/v2/plan/job/joblog?oql=id = '<job id>' [C] path, [I] filter
LOG_BY_RUN = "run"  # GET /api/v2/plan/job/run/{runId}/joblog [C]; only for a job that carries a run id
LOG_V1 = "v1"  # GET /plan/current/job/{id}/joblog -> {"log": "..."} [B]
LOG_FORMS = (LOG_BY_FILTER, LOG_BY_RUN, LOG_V1)
LOG_PAGE_LINES = 1000
#: The stdlist header line ``= JOB : WS#JS[...].JOB`` [A]: seen at the top, the slice is the whole log.
_LOG_HEADER = re.compile(r"^=\s*JOB\s*:")


def log_params(*, lines: int, page: int) -> dict[str, str]:
    """``Lines`` and ``pageNumber`` [C]; 1-based, a negative number counts from the end [I]."""
    return {"Lines": str(max(1, lines)), "pageNumber": str(page)}


def log_request(form: str, *, job_id: str, run_id: str | None, lines: int | None,
                page: int | None) -> tuple[str, dict[str, str]]:
    """(path, params) of one log request in ``form``; no paging params when ``lines`` is None."""
    paging = log_params(lines=lines, page=page or 1) if lines else {}
    if form == LOG_BY_FILTER:
        return JOBLOG_BY_FILTER, {"oql": f"id = {quote(job_id)}", **paging}
    if form == LOG_BY_RUN:
        if not run_id:
            raise ValueError("the run form needs a run id")
        return joblog_path(run_id), paging
    return v1_joblog_path(job_id), {}  # V1 documents no paging: the whole log


def log_not_ready(messages: Iterable[str]) -> bool:
    return any(has_code(messages, code) for code in LOG_NOT_READY_CODES)


def log_answer(raw: bytes, content_type: str, *, job_id: str, run_id: str | None, source: str,
               paged: bool) -> tuple[JobLog, int | None, int | None]:
    """(the slice, its page number, the page count) of a 2xx joblog answer, ``text/plain`` [C] or
    JSON ``{"log": ...}`` [B] (page metadata read when present [I]). Raises LogNotReady for
    EQQM637I, BadResponse for anything else."""
    if "json" not in content_type.lower():
        text = _log_text(raw.decode("utf-8", errors="replace"))
        if log_not_ready([text[:200]]):
            raise LogNotReady(text[:200])
        return _whole_or_unknown(text, job_id=job_id, run_id=run_id, source=source, paged=paged), None, None
    try:
        body = json.loads(raw) if raw.strip() else {}
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadResponse("TWS answered a job log as JSON that does not parse") from exc
    if isinstance(body, str):
        return _whole_or_unknown(_log_text(body), job_id=job_id, run_id=run_id, source=source, paged=paged), None, None
    if not isinstance(body, dict):
        raise BadResponse("TWS sent a job log we cannot read (not an object)")
    messages, _ = error_body(raw)
    if log_not_ready(messages):
        raise LogNotReady("; ".join(messages)[:300])
    text = body.get("log")
    if text is None and messages:
        raise BadResponse("TWS answered the job log request with: " + "; ".join(messages)[:300])
    if not isinstance(text, (str, type(None))):
        raise BadResponse("TWS sent a job log we cannot read (log is not text)")
    text = _log_text(text or "")
    try:
        total = _opt_int(body.get("totalLines"))
        first = _opt_int(body.get("firstLine"))
        number, pages = _opt_int(body.get("pageNumber")), _opt_int(body.get("pageCount"))
    except (TypeError, ValueError) as exc:
        raise BadResponse(f"TWS sent job log page numbers we cannot read ({type(exc).__name__})") from exc
    job = _opt_text(body.get("jobId")) or job_id
    run = _opt_text(body.get("runId")) or run_id
    if total is None and first is None:  # no metadata: the V1 shape, the whole log [B]
        return _whole_or_unknown(text, job_id=job, run_id=run, source=source, paged=paged), number, pages
    count = len(_split(text))
    return JobLog(job_id=job, run_id=run, text=text, total_lines=total if total is not None else None,
                  first_line=first if first is not None else (1 if total == count else None), source=source), number, pages


def _log_text(text: str) -> str:
    text = text.replace("\r\n", "\n")
    return text[:-1] if text.endswith("\n") else text


def _split(text: str) -> list[str]:
    return text.split("\n") if text else []


def _whole_or_unknown(text: str, *, job_id: str, run_id: str | None, source: str, paged: bool) -> JobLog:
    """A log without page metadata: whole when nothing was paged or its header is at the top."""
    lines = _split(text)
    whole = not paged or not lines or any(_LOG_HEADER.match(line) for line in lines[:3])
    return JobLog(job_id=job_id, run_id=run_id, text=text, total_lines=len(lines) if whole else None,
                  first_line=1 if whole else None, source=source)


def log_tail(log: JobLog, tail: int) -> JobLog:
    """The last ``tail`` lines of a slice (a server that ignored ``Lines`` sent more)."""
    lines = _split(log.text)
    if len(lines) <= tail:
        return log
    first = None if log.first_line is None else log.first_line + len(lines) - tail
    total = log.total_lines if log.total_lines is not None else (len(lines) if log.first_line == 1 else None)
    return JobLog(job_id=log.job_id, run_id=log.run_id, text="\n".join(lines[-tail:]), total_lines=total,
                  first_line=first, source=log.source)


# --- OQL ---------------------------------------------------------------------------------------
FAILED_GROUP = "FAILED"
# The order docs/tws-wire.md spells the group in; any state added to FAILED_STATES follows.
_FAILED_IN_ORDER = ("ABEND", "FAIL", "ERROR", *sorted(FAILED_STATES - {"ABEND", "FAIL", "ERROR"}))
_WILDCARDS = ("@", "*")


def quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def name_term(field: str, value: str) -> str:
    """``field = 'V'``, or ``field LIKE 'V@'`` when the value holds a TWS wildcard."""
    value = value.strip().upper()
    if any(w in value for w in _WILDCARDS):
        return f"{field} LIKE {quote(value.replace('*', '@'))}"
    return f"{field} = {quote(value)}"


def workstation_term(workstation: str) -> str:
    """OQL for a workstation as an operator typed it, matching every form a server may use.

    V2 names workstations by folder path (``/AGT01``, ``/FOLDER/AGT01``) [A]; some servers answer
    bare names [I]. So ``AGT01`` asks for the bare name or that name in any folder, ``/AGT01`` for
    the root path or the bare name, ``/FOLDER/AGT01`` for exactly that path or, from a server whose
    names carry no folder, its last segment (a foldered server has no bare names, so that part of
    the term matches nothing there). That ``LIKE '@/X'``
    works on ``workstation`` is [I]; the client checks every answer with
    ``names.workstation_matches`` anyway, so a broader server match is harmless.
    """
    key = names.workstation_key(workstation)
    if not key.startswith("/"):
        return "(" + name_term("workstation", key) + " OR workstation LIKE " + quote("@/" + key.replace("*", "@")) + ")"
    return "(" + name_term("workstation", key) + " OR " + name_term("workstation", key.rsplit("/", 1)[-1]) + ")"


def statuses(status: str | Iterable[str]) -> tuple[str, ...]:
    """"FAILED" expands to the failure group; anything else is taken as internal states."""
    items = [status] if isinstance(status, str) else list(status)
    out: list[str] = []
    for item in items:
        item = item.strip().upper()
        out.extend(_FAILED_IN_ORDER if item == FAILED_GROUP else [item])
    return tuple(dict.fromkeys(s for s in out if s))


def any_of(field: str, values: Iterable[str]) -> str:
    terms = [f"{field} = {quote(v)}" for v in values]
    return terms[0] if len(terms) == 1 else "(" + " OR ".join(terms) + ")"


def job_filter(*, name: str | None = None, stream: str | None = None, workstation: str | None = None,
               status: str | Iterable[str] | None = None, late: bool = False,
               overdue: datetime | None = None) -> str | None:
    """The OQL for the usual job filters, or None for the whole plan (``late``: ``jobLate`` set;
    ``overdue``: its latest start or its deadline is before that instant)."""
    terms = []
    if name:
        terms.append(name_term("name", name))
    if stream:
        terms.append(name_term("jobStreamName", stream))
    if workstation:
        terms.append(workstation_term(workstation))
    if status is not None and (wanted := statuses(status)):
        terms.append(any_of("internalStatus", wanted))
    if late:
        terms.append("jobLate = true")
    if overdue is not None:
        terms.append(overdue_term(overdue))
    return " AND ".join(terms) or None


#: The plan's time limits of a job: not documented for V2. We read and filter on ``latestStart``
#: and ``deadline`` [I] (the names the Dynamic Workload Console shows, "Latest start" and
#: "Deadline"), ISO-8601 instants like ``actualStart``; a server without them sends neither.
LATEST_START_FIELD = "latestStart"  # [I]
DEADLINE_FIELD = "deadline"  # [I]


def overdue_term(now: datetime) -> str:
    """Jobs whose latest start or deadline has passed at ``now`` [I]."""
    at = quote(now.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"))
    return f"({LATEST_START_FIELD} < {at} OR {DEADLINE_FIELD} < {at})"


def stream_filter(*, name: str | None = None, workstation: str | None = None, status: str | None = None) -> str | None:
    terms = []
    if name:
        terms.append(name_term("name", name))
    if workstation:
        terms.append(workstation_term(workstation))
    if status:
        terms.append(any_of("status", statuses(status)))
    return " AND ".join(terms) or None


def successors_filter(stream_id: str) -> str:
    """The documented successors query: jobs depending on (a job of) the job stream ``stream_id`` [A].

    There is no documented ``dependencies.jobId`` field: the client narrows the answer to one job
    with the dependency objects themselves (``depends_on``).
    """
    return f"dependencies.jobStreamId = {quote(stream_id)}"


#: Stream ids per successors query: 40 terms make about 2.5 KB of OQL (3.5 KB URL-encoded), well
#: below the 8 KB request line that common HTTP front ends accept [I].
SUCCESSORS_CHUNK = 40


def successors_of_filter(stream_ids: Iterable[str]) -> str:
    """``(dependencies.jobStreamId = 'a' OR ...)``: the successors of several streams in one scan."""
    return any_of("dependencies.jobStreamId", stream_ids)


def depends_on(dependency: Dependency, job: Job) -> bool:
    """Whether a dependency object waits for ``job``: by ``jobId`` when the server gives it [A], else
    by job and stream names [A], else (a dependency on the whole stream) by the stream id [A].
    """
    if dependency.job_id:
        return dependency.job_id == job.id
    if dependency.job_name:
        same_stream = (dependency.stream_id == job.stream_id if dependency.stream_id
                       else (dependency.stream_name or "").upper() == job.stream.upper())
        return same_stream and dependency.job_name.upper() == job.name.upper()
    return bool(dependency.stream_id) and dependency.stream_id == job.stream_id


def oql_params(oql: str | None) -> dict[str, str]:
    return {"oql": oql} if oql else {}


# --- JSON -> models ----------------------------------------------------------------------------
def job(raw: Any) -> Job:
    try:
        return Job(
            id=_text(raw["id"]),
            name=_text(raw["name"]),
            stream=_text(raw.get("jobStreamName") or ""),
            stream_id=_text(raw.get("jobStreamId") or ""),
            workstation=names.workstation_label(_text(raw.get("workstation") or "")),
            workstation_path=_text(raw.get("workstation") or ""),
            status=_text(raw.get("internalStatus") or "").upper(),
            coarse_status=_text(raw.get("status") or ""),
            run_id=_opt_text(raw.get("runId")),  # not documented [I]: used when a server sends it
            return_code=_opt_int(raw.get("returnCode")),  # [I]
            job_number=_opt_int(raw.get("jobNumber")),
            priority=_opt_int(raw.get("priority")),
            sched_time=instant(raw.get("jobStreamSchedTime")),
            start=instant(raw.get("actualStart")),  # [I]
            end=instant(raw.get("actualEnd")),  # [I]
            rerun_count=_opt_int(raw.get("rerunCount")) or 0,
            late=bool(raw.get("jobLate", False)),
            requires_confirmation=bool(raw.get("requiredConfirmation", False)),
            dependencies=tuple(_dependency(d) for d in raw.get("dependencies") or ()),
            plan_id=_opt_text(raw.get("planId")),
            deadline=instant(raw.get(DEADLINE_FIELD)),  # [I]
            latest_start=instant(raw.get(LATEST_START_FIELD)),  # [I]
            estimated_duration=_seconds(raw.get("estimatedDuration")),  # [I]
        )
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise BadResponse(f"TWS sent a job we cannot read ({type(exc).__name__}: {str(exc)[:80]})") from exc


def _dependency(raw: Mapping[str, Any]) -> Dependency:
    return Dependency(job_id=_opt_text(raw.get("jobId")), job_name=_opt_text(raw.get("jobName")),
                      stream_name=_opt_text(raw.get("jobStreamName")), stream_id=_opt_text(raw.get("jobStreamId")),
                      satisfied=bool(raw.get("satisfied", False)))


def stream(raw: Any) -> JobStream:
    try:
        return JobStream(
            id=_text(raw["id"]),
            name=_text(raw["name"]),
            workstation=names.workstation_label(_text(raw.get("workstation") or "")),
            workstation_path=_text(raw.get("workstation") or ""),
            status=_text(raw.get("status") or "").upper(),
            sched_time=instant(raw.get("schedTime")),
            start=instant(raw.get("actualStart")),
            end=instant(raw.get("actualEnd")),
            job_count=_opt_int(raw.get("jobCount")),
        )
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise BadResponse(f"TWS sent a job stream we cannot read ({type(exc).__name__})") from exc


def engine(raw: Any, *, answered_by: str) -> EngineInfo:
    try:
        return EngineInfo(
            version=_text(raw["engineVersion"]),
            engine_type=_text(raw.get("engineType") or ""),
            timezone=_text(raw.get("timezone") or "UTC"),
            license_type=_opt_text(raw.get("licenseType")),
            plan_start=instant(raw.get("planStart")),
            plan_end=instant(raw.get("planEnd")),
            plan_id=_opt_text(raw.get("planId")),  # [I]
            master=answered_by,
        )
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise BadResponse(f"TWS sent engine information we cannot read ({type(exc).__name__})") from exc


def action_result(raw: Any, *, action: str, target_id: str) -> ActionResult:
    body = raw if isinstance(raw, dict) else {}
    messages = body.get("messages") or ()
    return ActionResult(action=action, target_id=_opt_text(body.get("id")) or target_id,
                        messages=tuple(str(m) for m in ([messages] if isinstance(messages, str) else messages)),
                        new_run_id=_opt_text(body.get("runId")) if action == "rerun" else None)


def count(raw: Any) -> int:
    if isinstance(raw, dict) and isinstance(raw.get("count"), int):
        return raw["count"]
    raise BadResponse("TWS answered a count without a 'count' number")


def instant(value: Any) -> datetime | None:
    """UTC ISO-8601 with ``Z`` [C]; Python 3.11 parses the ``Z`` itself."""
    if value in (None, ""):
        return None
    return datetime.fromisoformat(str(value))


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected text, got {type(value).__name__}")
    return value


def _opt_text(value: Any) -> str | None:
    return None if value in (None, "") else str(value)


def _opt_int(value: Any) -> int | None:
    return None if value in (None, "") else int(value)


def _seconds(value: Any) -> float | None:
    """A duration [I]: a number of seconds, or ISO-8601 ``PT1H2M3S`` as OQL writes durations."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        return float(value) if value >= 0 else None
    match = _ISO_DURATION.fullmatch(str(value).strip().upper())
    if not match or not any(match.groups()):
        return None
    hours, minutes, secs = (float(g) if g else 0.0 for g in match.groups())
    return hours * 3600 + minutes * 60 + secs


_ISO_DURATION = re.compile(r"PT(?:(\d+(?:\.\d+)?)H)?(?:(\d+(?:\.\d+)?)M)?(?:(\d+(?:\.\d+)?)S)?")
