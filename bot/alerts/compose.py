"""What alerts say: failure records in, platform-neutral ``Reply`` values out.

Everything here is a pure function of JSON-able records, so a root message can be rendered again
from the store at delivery time (after a restart, or on another replica) and always shows the
latest state of its failure.
"""

from __future__ import annotations

import re
from dataclasses import asdict
from datetime import datetime, timezone
from typing import Any

from bot.events import (
    ACTION_ALERT_ACK,
    ACTION_ALERT_LOG,
    ACTION_ALERT_RERUN,
    ACTION_ALERT_SNOOZE_1H,
    ACTION_ALERT_SNOOZE_24H,
    Button,
    Field,
    Reply,
)
from bot.tws.models import Job

JSON = dict[str, Any]

MAX_ERROR_LINES = 8
MAX_LINE = 300
MAX_GROUP_LINES = 25

#: Lines of a job log that usually carry the cause of a failure.
_ERROR_LINE = re.compile(
    r"error|exception|traceback|fatal|ORA-\d+|SQL\d+N|SQLSTATE|failed|failure|refused|denied|"
    r"not found|no such|cannot|can't|unable|timed? ?out|killed|abend|Exit Status|return code|\brc\s*=\s*[1-9]",
    re.IGNORECASE,
)
_HEADER = re.compile(r"^=\s*(JOB|TASK|AGENT|Job Number|Environment|Requested|Running|Launched)\b", re.IGNORECASE)

_EMOJI = {"ABEND": "🔴", "FAIL": "🔴", "ERROR": "🔴", "PEND": "🟡", "LATE": "🕒", "RECOVERED": "✅",
          "CANCELLED": "⚪", "RERUNNING": "🔁", "GONE": "⚫"}


# --- records -------------------------------------------------------------------------------

def run_key(job: Job) -> str:
    """What tells two runs of one job apart: the V2 run id, else the rerun count."""
    return job.run_id or f"run{job.rerun_count}"


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ") if value else None


def snapshot(job: Job) -> JSON:
    """The few facts an alert shows, as JSON for the store."""
    return {"id": job.id, "name": job.name, "stream": job.stream, "stream_id": job.stream_id,
            "workstation": job.workstation, "full_name": job.full_name, "status": job.status,
            "rc": job.return_code, "start": _iso(job.start), "end": _iso(job.end),
            "reruns": job.rerun_count, "run": run_key(job), "late": job.late}


def error_lines(log_text: str, limit: int = MAX_ERROR_LINES) -> list[str]:
    """The lines of a log tail that explain a failure: at most ``limit``, cause first.

    When more lines match, the first half and the last half are kept: the first error is usually
    the cause and the last ones the consequence (and the exit status).
    """
    lines = [line.rstrip()[:MAX_LINE] for line in log_text.splitlines()]
    hits = [line for line in lines if line.strip() and not _HEADER.match(line) and _ERROR_LINE.search(line)]
    if not hits:
        return [line for line in lines if line.strip() and not _HEADER.match(line)][-min(limit, 5):]
    if len(hits) > limit:
        head = limit // 2
        hits = hits[:head] + ["…"] + hits[-(limit - head):]
    return hits


def reply_to_json(reply: Reply) -> JSON:
    return asdict(reply)


def reply_from_json(data: JSON) -> Reply:
    fields = tuple(Field(**f) for f in data.get("fields", ()))
    buttons = tuple(Button(**b) for b in data.get("buttons", ()))
    return Reply(**{**data, "fields": fields, "buttons": buttons})


# --- formatting ----------------------------------------------------------------------------

def _when(iso: str | None) -> str:
    return iso.replace("T", " ").replace("Z", " UTC") if iso else "—"


def _clock(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def _label(record: JSON) -> str:
    state, failure = record["state"], record["failure"]
    if state == "open":
        current = record["job"]["status"]
        if current not in {"ABEND", "FAIL", "ERROR", "PEND", "EXEC"} or (
                current == "EXEC" and record["job"]["run"] != failure["run"]):
            return "RERUNNING"
        return "LATE" if record["kind"] == "late" else failure["status"]
    return {"recovered": "RECOVERED", "cancelled": "CANCELLED"}.get(state, "GONE")


def _summary(record: JSON, label: str) -> str:
    f = record["failure"]
    where = f"{f['name']} in stream {f['stream']} on {f['workstation']}"
    if record["kind"] == "pend":
        text = f"{where} completed and is waiting for an operator to confirm it (PEND)."
    elif record["kind"] == "late":
        text = f"{where} is running late (started {_when(f['start'])})."
    else:
        rc = f" with return code {f['rc']}" if f["rc"] is not None else ""
        text = f"{where} ended {f['status']}{rc}."
    if record.get("blocked"):
        text += f" {record['blocked']} successor job(s) are blocked."
    if record.get("failures", 1) > 1:
        text += f" It has failed {record['failures']} times in this plan."
    current = record["job"]
    if label == "RECOVERED":
        text = f"Recovered: run {current['reruns']} ended {current['status']} at {_when(current['end'])}. " + text
    elif label == "RERUNNING":
        text = f"Rerun {current['reruns']} is {current['status']}. " + text
    elif label == "CANCELLED":
        text = "The job was cancelled. " + text
    elif label == "GONE":
        text = "The job is no longer in the current plan. " + text
    if record.get("runbook"):
        text += f"\n📘 Runbook: {record['runbook']}"
    return text


def _fields(record: JSON) -> tuple[Field, ...]:
    f, current = record["failure"], record["job"]
    rows = [("Job", f["full_name"]), ("Stream", f["stream"]), ("Workstation", f["workstation"]),
            ("Status", current["status"]), ("Return code", "—" if f["rc"] is None else str(f["rc"])),
            ("Started", _when(f["start"])), ("Ended", _when(f["end"])), ("Reruns", str(current["reruns"]))]
    if record.get("blocked") is not None:
        rows.append(("Blocked successors", str(record["blocked"])))
    return tuple(Field(label=label, value=value) for label, value in rows)


def _context(record: JSON, ack: JSON | None, snooze: JSON | None, action: JSON | None) -> str | None:
    parts = []
    if ack and ack.get("run") == record["failure"]["run"]:
        parts.append(f"Acknowledged by {ack['by']} at {_clock(ack['at'])}")
    if snooze:
        parts.append(f"Snoozed by {snooze['by']} until {_clock(snooze['until'])}")
    if action:
        parts.append(f"Last action: {action['tool']} by {action['actor']} ({action['outcome']})")
    return " · ".join(parts) or None


def _job_buttons(record: JSON, label: str, acked: bool) -> tuple[Button, ...]:
    job_id, key = record["job_id"], record["thread"]
    log = Button(label="Show log", action_id=ACTION_ALERT_LOG, value=job_id)
    if label in {"RECOVERED", "CANCELLED", "GONE"}:
        return (log,)
    buttons = [log]
    if label in {"ABEND", "FAIL", "ERROR"}:  # TWS refuses a rerun of a PEND, running or rerunning job
        buttons.insert(0, Button(label="Rerun", action_id=ACTION_ALERT_RERUN, value=job_id, style="primary"))
    if not acked:
        buttons.append(Button(label="Acknowledge", action_id=ACTION_ALERT_ACK, value=key))
    buttons += [Button(label="Snooze 1 h", action_id=ACTION_ALERT_SNOOZE_1H, value=key),
                Button(label="Snooze 24 h", action_id=ACTION_ALERT_SNOOZE_24H, value=key)]
    return tuple(buttons)


def _level(label: str) -> str:
    return {"RECOVERED": "success", "CANCELLED": "info", "GONE": "info", "PEND": "warning",
            "LATE": "warning", "RERUNNING": "warning"}.get(label, "error")


# --- messages ------------------------------------------------------------------------------

def job_root(record: JSON, *, ack: JSON | None = None, snooze: JSON | None = None,
             action: JSON | None = None) -> Reply:
    """The root message of one failure, as it should look now."""
    label = _label(record)
    acked = bool(ack and ack.get("run") == record["failure"]["run"])
    errors = record.get("errors") or []
    title = f"{_EMOJI.get(label, '🔴')} {label}: {record['failure']['full_name']}"
    if record["kind"] == "pend" and label == "PEND":
        title += " (needs confirmation)"
    return Reply(text=_summary(record, label), title=title, fields=_fields(record),
                 code="\n".join(errors) or None, code_title="Error lines from the job log" if errors else None,
                 buttons=_job_buttons(record, label, acked), level=_level(label),  # type: ignore[arg-type]
                 context=_context(record, ack, snooze, action))


def group_root(group: JSON, records: list[JSON]) -> Reply:
    """One message for a burst of failures in one job stream."""
    open_count = sum(1 for r in records if r["state"] == "open")
    lines = []
    for r in records[:MAX_GROUP_LINES]:
        label = _label(r)
        rc = f" rc {r['failure']['rc']}" if r["failure"]["rc"] is not None else ""
        lines.append(f"{_EMOJI.get(label, '🔴')} {r['failure']['full_name']} — {label}{rc}")
    if len(records) > MAX_GROUP_LINES:
        lines.append(f"… and {len(records) - MAX_GROUP_LINES} more")
    title = f"{'🔴' if open_count else '✅'} {len(records)} failures in job stream {group['stream']}"
    text = (f"{len(records)} jobs of {group['stream']} failed within a few minutes; they are grouped here to "
            f"cut the noise ({open_count} still open). Recoveries and repeat failures go in this thread.\n"
            + "\n".join(lines))
    key = group["key"]
    buttons = () if not open_count else (
        Button(label="Acknowledge all", action_id=ACTION_ALERT_ACK, value=key),
        Button(label="Snooze 1 h", action_id=ACTION_ALERT_SNOOZE_1H, value=key),
        Button(label="Snooze 24 h", action_id=ACTION_ALERT_SNOOZE_24H, value=key))
    return Reply(text=text, title=title, buttons=buttons, level="error" if open_count else "success",
                 context=f"Acknowledged by {group['ack']['by']}" if group.get("ack") else None)


def repeat_failure(record: JSON) -> Reply:
    f = record["failure"]
    rc = f" with return code {f['rc']}" if f["rc"] is not None else ""
    errors = record.get("errors") or []
    return Reply(text=f"🔴 {f['full_name']} failed again: run {f['reruns']} ended {f['status']}{rc} "
                      f"(failure {record.get('failures', 1)} in this plan).",
                 code="\n".join(errors) or None, level="error")


def new_in_group(record: JSON) -> Reply:
    f = record["failure"]
    rc = f" rc {f['rc']}" if f["rc"] is not None else ""
    return Reply(text=f"🔴 Also failed: {f['full_name']} — {f['status']}{rc}", level="error")


def transition(record: JSON, label: str) -> Reply:
    """A lifecycle step of a failure: rerun started, recovered, cancelled, gone."""
    job, name = record["job"], record["failure"]["full_name"]
    text = {
        "RERUNNING": f"🔁 {name}: rerun {job['reruns']} started ({job['status']}).",
        "RECOVERED": f"✅ {name} recovered: run {job['reruns']} ended {job['status']} at {_when(job['end'])}.",
        "CANCELLED": f"⚪ {name} was cancelled.",
        "GONE": f"⚫ {name} is no longer in the current plan.",
    }[label]
    return Reply(text=text, level="success" if label == "RECOVERED" else "info")


def acknowledged(user: str) -> Reply:
    return Reply(text=f"👍 Acknowledged by {user}", level="info")


def snoozed(user: str, hours: int, until: float) -> Reply:
    return Reply(text=f"😴 Snoozed for {hours} h by {user} (until {_clock(until)}): repeat failures stay quiet.",
                 level="info")


def action_note(*, tool: str, actor: str, outcome: str) -> Reply:
    verb = tool.removesuffix("_job")
    return Reply(text=f"🛠️ {actor} ran {verb}: {outcome}", level="info")


def tws_down(since: float) -> Reply:
    return Reply(title="⚠️ TWS unreachable", level="warning",
                 text=f"Resync cannot reach TWS since {_clock(since)}. Failure alerts are delayed; "
                      "failures that happen meanwhile will be alerted when it is back.")


def tws_up(since: float, now: float) -> Reply:
    minutes = max(1, round((now - since) / 60))
    return Reply(title="✅ TWS reachable again", level="success",
                 text=f"TWS answers again after about {minutes} min. Checking for failures that happened meanwhile.")
