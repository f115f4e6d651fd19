"""The plan as TWS shows it: V2 JSON for jobs, job streams and the engine, and the OQL fields.

Kept apart from ``plan.py`` so the state machine never thinks about field names; this module is
where the wire shapes of docs/tws-wire.md live on the simulator's side.
"""

from __future__ import annotations

import math
import time
from typing import Any

from bot.simulator import stdlist
from bot.simulator.catalog import STREAM_FOLDERS, workstation_path
from bot.simulator.oql import Field, boolean, instant, integer
from bot.simulator.plan import (
    FAILED, KIND_JOB, KIND_RUN, KIND_STREAM, PLAN_LENGTH, PLAN_START, Job, Plan, Run, Stream, is_late, job_state,
    release_time, stream_status,
)
from bot.simulator.variants import Wire

DOCUMENTED = Wire()

_COARSE = {
    "SCHED": "Waiting", "HOLD": "Waiting", "READY": "Ready", "EXEC": "Running", "SUCC": "Successful",
    "ABEND": "Error", "FAIL": "Error", "ERROR": "Error", "CANCL": "Canceled", "PEND": "Undecided",
    "SUPPR": "Suppressed",
}


def iso(t: float | None) -> str | None:
    if t is None:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def coarse_status(job: Job, state: str, now: float) -> str:
    """DWC's status: HOLD splits into Held (an operator), Blocked (a failed predecessor), Waiting."""
    if state == "HOLD":
        if job.held:
            return "Held"
        if not job.free and any(p.end <= now and p.outcome in FAILED | {"PEND"} for p in job.preds):
            return "Blocked"
    return _COARSE.get(state, "Undecided")


def _started(job: Job, now: float) -> float | None:
    return job.start if job.start <= now else None


def _ended(job: Job, now: float) -> float | None:
    return job.end if job.start <= now and job.end <= now else None


def workstation(stream: Stream, wire: Wire) -> str:
    """The workstation as this wire names it: a folder path (documented) or a bare name."""
    return stream.workstation if wire.bare_names else workstation_path(stream.workstation)


def folder(stream: Stream) -> str:
    return STREAM_FOLDERS.get(stream.template.name, "/")


def job_json(plan: Plan, job: Job, now: float, wire: Wire = DOCUMENTED) -> dict[str, Any]:
    state = job_state(job, now)
    stream = job.stream
    stream_id = plan.stream_id(stream)
    body = {
        "flowNodeType": "JOB", "id": plan.job_id(job), "planId": plan.plan_id, "name": job.name,
        "jobStreamId": stream_id, "jobStreamName": stream.name, "jobStreamSchedTime": iso(stream.sched),
        "workstation": workstation(stream, wire), "folder": folder(stream), "status": coarse_status(job, state, now),
        "internalStatus": state, "returnCode": job.rc if _ended(job, now) is not None else None,
        "jobNumber": plan.job_number(job, job.run) if job.start <= now else None, "priority": job.priority,
        "actualStart": iso(_started(job, now)), "actualEnd": iso(_ended(job, now)), "rerunCount": job.run,
        "requiredConfirmation": job.confirm, "jobLate": is_late(job, now),
        "estimatedDuration": estimated_duration(job),
        "latestStart": iso(job.latest_start), "deadline": iso(job.deadline),  # [I]: names not documented
        "dependencies": [_dependency(plan, job, pred, now, wire) for pred in job.preds],
    }
    if wire.run_id:
        body["runId"] = plan.run_id(job)
    return body


def estimated_duration(job: Job) -> int | None:
    """What the plan expects a run to take, in seconds [I]: its usual time (a long runner takes 8x)."""
    if math.isinf(job.start) or math.isinf(job.end):
        return None
    return max(1, round((job.end - job.start) / (8 if job.long else 1)))


def _dependency(plan: Plan, job: Job, pred: Job, now: float, wire: Wire) -> dict[str, Any]:
    internal = pred.stream is job.stream
    body: dict[str, Any] = {"dependencyType": "JOB" if internal else "EXTERNAL_JOB"}
    if not wire.no_dep_ids:
        body["jobId"] = plan.job_id(pred)
    body.update({"jobName": pred.name, "jobStreamId": plan.stream_id(pred.stream), "jobStreamName": pred.stream.name,
                 "satisfied": job.free or release_time(pred) <= now})
    return body


def stream_json(plan: Plan, stream: Stream, now: float, wire: Wire = DOCUMENTED) -> dict[str, Any]:
    status = stream_status(stream, now)
    starts = [j.start for j in stream.jobs if j.start <= now]
    done = status in {"SUCC", "ABEND", "CANCL"} and starts
    return {
        "flowNodeType": "JOBSTREAM", "id": plan.stream_id(stream), "planId": plan.plan_id, "name": stream.name,
        "workstation": workstation(stream, wire), "folder": folder(stream), "status": status, "internalStatus": status,
        "schedTime": iso(stream.sched), "actualStart": iso(min(starts)) if starts else None,
        "actualEnd": iso(max(j.end for j in stream.jobs if j.end <= now)) if done else None,
        "jobCount": len(stream.jobs),
    }


def engine_json(plan: Plan) -> dict[str, Any]:
    return {
        "engineVersion": "10.2.3", "engineType": "DISTRIBUTED", "timezone": "UTC", "licenseType": "PERJOB",
        "planId": plan.plan_id, "planStart": iso(PLAN_START), "planEnd": iso(PLAN_START + PLAN_LENGTH),
        "masterDomainManager": "MDM", "simulated": True,
    }


def run_view(plan: Plan, job: Job, run: Run, now: float) -> stdlist.RunView:
    return stdlist.RunView(
        job=job.name, stream=job.stream.name, workstation=job.stream.workstation, kind=job.kind,
        sched=job.stream.sched, job_number=plan.job_number(job, run.number), start=run.start, end=run.end, now=now,
        outcome=run.outcome, rc=run.rc, note=run.note, seed=plan.log_seed(job, run.number),
    )


# --- OQL fields ---------------------------------------------------------------------------------

def _decoded(plan: Plan, kind: int) -> Any:
    """Read an id literal as the index it encodes (-1 when the id is not one of ours)."""
    def parse(text: str) -> int:
        decoded = plan.ids.decode(text)
        return decoded[1] if decoded is not None and decoded[0] == kind else -1
    return parse


def job_fields(plan: Plan, now: float, wire: Wire = DOCUMENTED) -> dict[str, Field]:
    """The OQL fields of a job: the documented ones (docs/tws-wire.md), ``runId`` only when the wire
    has run ids. Workstations compare as this wire names them, never with a slash added or removed."""
    def run_key(text: str) -> tuple[int, int]:
        decoded = plan.ids.decode(text)
        return (decoded[1], decoded[2]) if decoded is not None and decoded[0] == KIND_RUN else (-1, -1)

    fields = {
        "id": Field(get=lambda j: j.index, parse=_decoded(plan, KIND_JOB), text=plan.job_id),
        "name": Field(get=lambda j: j.name),
        "jobStreamName": Field(get=lambda j: j.stream.name),
        "jobStreamId": Field(get=lambda j: j.stream.index, parse=_decoded(plan, KIND_STREAM),
                             text=lambda j: plan.stream_id(j.stream)),
        "workstation": Field(get=lambda j: workstation(j.stream, wire)),  # names are upper case already
        "folder": Field(get=lambda j: folder(j.stream), parse=str.strip),
        "internalStatus": Field(get=lambda j: job_state(j, now)),
        "status": Field(get=lambda j: coarse_status(j, job_state(j, now), now).upper()),
        "returnCode": Field(get=lambda j: j.rc if j.start <= now and j.end <= now else None, parse=integer),
        "priority": Field(get=lambda j: j.priority, parse=integer),
        "rerunCount": Field(get=lambda j: j.run, parse=integer),
        "jobNumber": Field(get=lambda j: plan.job_number(j, j.run) if j.start <= now else None, parse=integer),
        "jobStreamSchedTime": Field(get=lambda j: j.stream.sched, parse=instant),
        "actualStart": Field(get=lambda j: _started(j, now), parse=instant),
        "actualEnd": Field(get=lambda j: _ended(j, now), parse=instant),
        "jobLate": Field(get=lambda j: is_late(j, now), parse=boolean),
        "latestStart": Field(get=lambda j: j.latest_start, parse=instant),  # [I]
        "deadline": Field(get=lambda j: j.deadline, parse=instant),  # [I]
        "requiredConfirmation": Field(get=lambda j: j.confirm, parse=boolean),
        "dependencies.jobName": Field(get=lambda j: tuple(p.name for p in j.preds), many=True),
        "dependencies.jobStreamId": Field(get=lambda j: tuple(p.stream.index for p in j.preds),
                                          parse=_decoded(plan, KIND_STREAM),
                                          text=lambda j: tuple(plan.stream_id(p.stream) for p in j.preds), many=True),
        "dependencies.jobStreamName": Field(get=lambda j: tuple(p.stream.name for p in j.preds), many=True),
    }
    if wire.run_id:
        fields["runId"] = Field(get=lambda j: (j.index, j.run), parse=run_key, text=plan.run_id)
    return fields


def stream_fields(plan: Plan, now: float, wire: Wire = DOCUMENTED) -> dict[str, Field]:
    status = Field(get=lambda s: stream_status(s, now))
    return {
        "id": Field(get=lambda s: s.index, parse=_decoded(plan, KIND_STREAM), text=plan.stream_id),
        "name": Field(get=lambda s: s.name),
        "workstation": Field(get=lambda s: workstation(s, wire)),
        "folder": Field(get=lambda s: folder(s), parse=str.strip),
        "status": status,
        "internalStatus": status,
        "schedTime": Field(get=lambda s: s.sched, parse=instant),
        "jobCount": Field(get=lambda s: len(s.jobs), parse=integer),
    }
