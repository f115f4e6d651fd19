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
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl, urljoin, urlsplit

from bot.errors import BadResponse, JobNotFound
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


def _segment(value: str) -> str:
    """Ids are UUIDs; refuse anything that could walk to another path."""
    if not value or any(c in value for c in "/?#%\\") or value in {".", ".."}:
        raise JobNotFound(f"'{value[:60]}' is not a TWS id")
    return value


# --- headers and authentication --------------------------------------------------------------
BASE_HEADERS: Mapping[str, str] = {"Accept": "application/json", "Content-Type": "application/json"}
REQUEST_ID_HEADER = "Request-Id"  # [B]: the official client sends a uuid4


def authorization(*, user: str | None, password: str | None, api_key: str | None) -> str:
    """Basic with a WA user [B]; an API key goes as Bearer [C] and wins when both are set."""
    if api_key:
        return f"Bearer {api_key}"
    token = base64.b64encode(f"{user or ''}:{password or ''}".encode()).decode("ascii")
    return f"Basic {token}"


# --- message codes -----------------------------------------------------------------------------
NOT_FOUND_CODE = "AWSBIO006E"  # unknown id [C]
INVALID_STATE_CODE = "AWSBIN076E"  # action not allowed in the job's state [C]


def error_messages(raw: bytes) -> tuple[str, ...]:
    """The ``messages`` of an error body ``{"messages": [...], "exceptionName": ...}``; () if none."""
    try:
        body = json.loads(raw)
    except ValueError:
        return ()
    messages = body.get("messages") if isinstance(body, dict) else None
    if isinstance(messages, str):
        return (messages,)
    if isinstance(messages, list):
        return tuple(str(m) for m in messages)
    return ()


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


# --- job log paging [C]/[I] ------------------------------------------------------------------
LOG_PAGE_LINES = 1000


def log_params(*, lines: int, page: int) -> dict[str, str]:
    """``pageNumber`` is 1-based; a negative number counts from the end (-1 = the last page)."""
    return {"Lines": str(max(1, lines)), "pageNumber": str(page)}


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


def workstation_value(workstation: str) -> str:
    """Operators write ``AGT01``; we send the name as they wrote it, without a folder slash [I]."""
    return workstation.strip().strip("/")


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
               status: str | Iterable[str] | None = None, late: bool = False) -> str | None:
    """The OQL for the usual job filters, or None for the whole plan (``late``: ``jobLate`` set)."""
    terms = []
    if name:
        terms.append(name_term("name", name))
    if stream:
        terms.append(name_term("jobStreamName", stream))
    if workstation:
        terms.append(name_term("workstation", workstation_value(workstation)))
    if status is not None and (wanted := statuses(status)):
        terms.append(any_of("internalStatus", wanted))
    if late:
        terms.append("jobLate = true")
    return " AND ".join(terms) or None


def stream_filter(*, name: str | None = None, workstation: str | None = None, status: str | None = None) -> str | None:
    terms = []
    if name:
        terms.append(name_term("name", name))
    if workstation:
        terms.append(name_term("workstation", workstation_value(workstation)))
    if status:
        terms.append(any_of("status", statuses(status)))
    return " AND ".join(terms) or None


def successors_filter(job_id: str) -> str:
    return f"dependencies.jobId = {quote(job_id)}"


#: Ids per successors query: 40 terms make about 2.5 KB of OQL (3.5 KB URL-encoded), well below
#: the 8 KB request line that common HTTP front ends accept [I].
SUCCESSORS_CHUNK = 40


def successors_of_filter(job_ids: Iterable[str]) -> str:
    """``(dependencies.jobId = 'a' OR dependencies.jobId = 'b' ...)``: the successors of several jobs
    in one plan scan instead of one scan each."""
    return any_of("dependencies.jobId", job_ids)


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
            workstation=_workstation(raw.get("workstation")),
            status=_text(raw.get("internalStatus") or "").upper(),
            coarse_status=_text(raw.get("status") or ""),
            run_id=_opt_text(raw.get("runId")),
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
            deadline=instant(raw.get("deadline")),  # [I]
            latest_start=instant(raw.get("latestStart")),  # [I]
            estimated_duration=_seconds(raw.get("estimatedDuration")),  # [I]
        )
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise BadResponse(f"TWS sent a job we cannot read ({type(exc).__name__}: {str(exc)[:80]})") from exc


def _dependency(raw: Mapping[str, Any]) -> Dependency:
    return Dependency(job_id=_opt_text(raw.get("jobId")), job_name=_opt_text(raw.get("jobName")),
                      stream_name=_opt_text(raw.get("jobStreamName")), satisfied=bool(raw.get("satisfied", False)))


def stream(raw: Any) -> JobStream:
    try:
        return JobStream(
            id=_text(raw["id"]),
            name=_text(raw["name"]),
            workstation=_workstation(raw.get("workstation")),
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


def log_page(raw: Any, *, job_id: str) -> tuple[JobLog, int, int]:
    """(the slice, its page number, the page count) of one joblog answer."""
    try:
        text = raw.get("log") or ""
        if not isinstance(text, str):
            raise TypeError("log is not text")
        page = JobLog(job_id=_text(raw.get("jobId") or job_id), run_id=_opt_text(raw.get("runId")), text=text,
                      total_lines=int(raw.get("totalLines", text.count("\n") + 1 if text else 0)),
                      first_line=int(raw.get("firstLine", 1)))
        return page, int(raw.get("pageNumber", 1)), int(raw.get("pageCount", 1))
    except (TypeError, ValueError, AttributeError) as exc:
        raise BadResponse(f"TWS sent a job log we cannot read ({type(exc).__name__})") from exc


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


def _workstation(value: Any) -> str:
    """V2 gives workstations as folder paths, ``/AGT01``; operators say ``AGT01``."""
    return str(value or "").lstrip("/")


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
