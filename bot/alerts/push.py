"""``POST /api/tws/events``: TWS pushes a job's state change, Resync alerts within a second.

HWA event rules can run a command when a job changes state (tws-api.md section 9), for example
``curl`` to this endpoint (README, "Push from TWS"). The event is only a hint: the job is looked
up in TWS and handled as TWS shows it now, so a forged or stale event cannot raise an alert for
a job that did not fail. Polling keeps running and reconciles anything a push missed.

    POST /api/tws/events
    Authorization: Bearer <RESYNC_EVENTS_TOKEN>
    {"job": "AGT01#PAYROLL_DAILY.EXTRACT01", "status": "ABEND"}     or  {"id": "<job id>", "status": "ABEND"}

Answers: 202 ``{"accepted": true, "job", "status", "outcome"}``; 401 without the right token; 400
for a malformed event, an unknown or ambiguous job, or a status TWS contradicts (nothing is
alerted); 404 when ``RESYNC_EVENTS_TOKEN`` is not set (the endpoint is off); 503 when TWS cannot
be asked (polling alerts it once TWS answers).
"""

from __future__ import annotations

import hmac
import json
import re
from dataclasses import dataclass
from typing import Any, Protocol

from bot.errors import AmbiguousJob, JobNotFound, TwsError, TwsUnavailable
from bot.tws.models import JOB_STATES, Job
from bot.tws.names import parse_job_ref

MAX_BODY = 8 * 1024
_ID = re.compile(r"[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}")
_NAME = re.compile(r"[A-Za-z0-9_/#.\-]{1,300}")  # no wildcards: an event names one job


class Jobs(Protocol):
    """What the endpoint needs of the TWS client."""

    async def get_job(self, job_id: str) -> Job: ...

    async def resolve_job(self, ref: Any) -> Job: ...


class Watch(Protocol):
    async def on_push(self, job: Job) -> str: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class Answer:
    status: int
    body: dict[str, Any]


def _error(status: int, message: str) -> Answer:
    return Answer(status=status, body={"error": message})


def authorized(token: str, header: str) -> bool:
    return hmac.compare_digest(header.encode("utf-8", "replace"), f"Bearer {token}".encode())


def parse_event(raw: bytes) -> tuple[dict[str, str] | None, str]:
    """(``{"id"|"job": ..., "status": ...}``, "") or (None, why it is not an event)."""
    if len(raw) > MAX_BODY:
        return None, f"the event is larger than {MAX_BODY} bytes"
    try:
        body = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None, "the body must be a JSON object"
    if not isinstance(body, dict):
        return None, "the body must be a JSON object"
    status, job_id, job = body.get("status"), body.get("id", body.get("job_id")), body.get("job")
    if not isinstance(status, str) or status.strip().upper() not in JOB_STATES:
        return None, "'status' must be a TWS job status such as ABEND, FAIL, PEND, EXEC or SUCC"
    if job_id is not None:
        if not isinstance(job_id, str) or not _ID.fullmatch(job_id.strip()):
            return None, "'id' must be a TWS job id"
        return {"id": job_id.strip(), "status": status.strip().upper()}, ""
    if not isinstance(job, str) or not _NAME.fullmatch(job.strip()):
        return None, "name the job: 'job' (WS#STREAM.JOB or its id) or 'id'"
    job = job.strip()
    key = "id" if _ID.fullmatch(job) else "job"
    return {key: job if key == "id" else job.upper(), "status": status.strip().upper()}, ""


async def handle(raw: bytes, *, authorization: str, token: str | None, tws: Jobs, watch: Watch | None) -> Answer:
    if not token:
        return _error(404, "the TWS events endpoint is off: set RESYNC_EVENTS_TOKEN")
    if not authorized(token, authorization):
        return _error(401, "missing or invalid bearer token")
    if watch is None:
        return _error(404, "alerts are off (RESYNC_ALERTS=false): nothing to do with TWS events")
    event, why = parse_event(raw)
    if event is None:
        return _error(400, why)
    ref = None
    if "job" in event:
        try:
            ref = parse_job_ref(event["job"])
        except JobNotFound:
            ref = None
        if ref is None or not ref.stream or not ref.workstation:
            return _error(400, "name the job as WS#STREAM.JOB (or send its id)")
    try:
        job = await (tws.resolve_job(ref) if ref is not None else tws.get_job(event["id"]))
    except JobNotFound:
        return _error(400, "TWS has no such job in the current plan: nothing alerted")
    except AmbiguousJob:
        return _error(400, "the name matches several jobs in the plan: send the job's id")
    except TwsUnavailable:
        return _error(503, "TWS cannot be reached to check the event; polling will alert it once TWS answers")
    except TwsError as exc:
        return _error(503, f"TWS could not check the event ({type(exc).__name__})")
    if job.status != event["status"]:
        return _error(400, f"TWS reports {job.status} for {job.full_name}, not {event['status']}: nothing alerted")
    outcome = await watch.on_push(job)
    return Answer(status=202, body={"accepted": True, "job": job.full_name, "status": job.status, "outcome": outcome})
