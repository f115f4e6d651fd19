"""What alerts say: failure records in, platform-neutral ``Reply`` values out.

Everything here is a pure function of JSON-able records, so a root message can be rendered again
from the store at delivery time (after a restart, or on another replica) and always shows the
latest state of its failure.

Wording comes from ``bot.texts`` in the language asked for ("en" or "pt"); records carry no
language, so a record stored before a language change renders in the new one. Internal labels
(``RECOVERED``, ``RERUNNING``...) stay English for the logic and are translated only when shown;
TWS status words (ABEND, SUCC, PEND...) are never translated.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import asdict
from datetime import datetime, timezone
from typing import Any

from bot.events import (
    ACTION_ALERT_ACK,
    ACTION_ALERT_CONFIRM_ABEND,
    ACTION_ALERT_CONFIRM_SUCC,
    ACTION_ALERT_KILL,
    ACTION_ALERT_LOG,
    ACTION_ALERT_RERUN,
    ACTION_ALERT_SNOOZE_1H,
    ACTION_ALERT_SNOOZE_24H,
    Button,
    Field,
    Reply,
)
from bot.policy import ACTIONS, action_of
from bot.texts import MAX_ANSWER, quote_answer, say  # the quote of TWS's words is shared with chat replies
from bot.tws.models import Job

JSON = dict[str, Any]

MAX_ERROR_LINES = 8
MAX_LINE = 300
MAX_GROUP_LINES = 25

#: Lines of a job log that usually carry the cause of a failure.
_ERROR_LINE = re.compile(
    r"error|exception|traceback|fatal|ORA-\d+|SQL\d+N|SQLSTATE|failed|failure|refused|denied|"
    r"not found|no such|cannot|can't|unable|timed? ?out|killed|abend|Exit Status|return code|\brc\s*=\s*[1-9]|"
    # SAP, Windows and FTP say it in other words: "status 51: ... not posted", "does not exist",
    # "ABORTED", "There is not enough space on the disk", "421 Service not available"
    r"not posted|does not exist|abort|cancell?ed|not enough space|no space|not available|unavailable|"
    r"^(?-i:[45]\d\d [A-Z])",
    re.IGNORECASE,
)
_HEADER = re.compile(r"^=\s*(JOB|TASK|AGENT|Job Number|Environment|Requested|Running|Launched)\b", re.IGNORECASE)
#: TWS's own frame around the job's output: the header, the footer (exit status, elapsed time,
#: CPU, memory, timestamp) and the ``=====`` rules. Not the job's words.
_FRAME = re.compile(r"^=(\s|=*$)")
_EXIT = re.compile(r"^=\s*Exit Status\s*:\s*(-?\d+)", re.IGNORECASE)

_EMOJI = {"ABEND": "🔴", "FAIL": "🔴", "ERROR": "🔴", "PEND": "🟡", "LATE": "🕒", "RECOVERED": "✅",
          "CANCELLED": "⚪", "RERUNNING": "🔁", "GONE": "⚫", "LONG": "🐢",
          "NOSTART": "🕒", "DEADLINE": "🕒"}


# --- records -------------------------------------------------------------------------------

def run_key(job: Job) -> str:
    """What tells two runs of one job apart: the V2 run id, else the rerun count."""
    return job.run_id or f"run{job.rerun_count}"


def new_run(before: JSON, after: JSON) -> bool:
    """Whether snapshot ``after`` is a later run than ``before``: a new run id or more reruns.

    A status alone never says so: TWS (or a restarted simulator) can show a failed run back in SCHED
    with the same run id and rerun count, and that is no rerun.
    """
    return after["run"] != before["run"] or after["reruns"] > before["reruns"]


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ") if value else None


def snapshot(job: Job, *, now: float | None = None, factor: float | None = None) -> JSON:
    """The few facts an alert shows, as JSON for the store."""
    snap = {"id": job.id, "name": job.name, "stream": job.stream, "stream_id": job.stream_id,
            "workstation": job.workstation, "full_name": job.full_name, "status": job.status,
            "rc": job.return_code, "start": _iso(job.start), "end": _iso(job.end),
            "reruns": job.rerun_count, "run": run_key(job), "late": job.late}
    if job.deadline is not None:
        snap["deadline"] = _iso(job.deadline)
    if job.latest_start is not None:
        snap["latest_start"] = _iso(job.latest_start)
    if now is not None and (job.deadline is not None or job.latest_start is not None):
        snap["seen_at"] = _iso(datetime.fromtimestamp(now, timezone.utc))  # which limit had passed
    if job.estimated_duration:
        snap["estimate"] = job.estimated_duration
        if now is not None and job.start is not None:
            snap["ran"], snap["factor"] = max(0.0, now - job.start.timestamp()), factor
    return snap


def _span(seconds: float | None) -> str:
    """``1 h 05 min`` / ``12 min`` / ``40 s``."""
    if not seconds:
        return "—"
    minutes = int(seconds // 60)
    if minutes >= 60:
        return f"{minutes // 60} h {minutes % 60:02d} min"
    return f"{minutes} min" if minutes else f"{int(seconds)} s"


def error_lines(log_text: str, limit: int = MAX_ERROR_LINES, *, only_real: bool = False) -> list[str]:
    """The lines of a log tail that explain a failure: at most ``limit``, cause first.

    When more lines match, the first half and the last half are kept: the first error is usually
    the cause and the last ones the consequence (and the exit status).

    The header and footer are TWS's frame, not the job's words: a non-zero ``Exit Status`` follows
    the real error lines (or stands alone when nothing else matched), ``Exit Status : 0`` is never
    shown. A clean run (exit status 0) and ``only_real`` (a PEND or late job: nothing failed) get
    real error lines or none, never the last lines as a fallback.
    """
    lines = [line.rstrip()[:MAX_LINE] for line in log_text.splitlines()]
    output = [line for line in lines if line.strip() and not _FRAME.match(line) and not _HEADER.match(line)]
    exits = [match for line in lines if (match := _EXIT.match(line))]
    failed_exit = [m.string for m in exits[-1:] if int(m.group(1)) != 0]
    hits = [line for line in output if _ERROR_LINE.search(line)]
    if hits:
        hits += failed_exit
    elif only_real or (exits and not failed_exit):
        return []
    else:
        return failed_exit or output[-min(limit, 5):]
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

#: Labels of our own making; the rest (ABEND, FAIL, ERROR, PEND) are TWS's words and shown as is.
_OWN_LABELS = {"RECOVERED", "RERUNNING", "CANCELLED", "GONE", "LATE", "LONG", "NOSTART", "DEADLINE"}


def _when(iso: str | None) -> str:
    return iso.replace("T", " ").replace("Z", " UTC") if iso else "—"


def _clock(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def _label(record: JSON) -> str:
    state, failure = record["state"], record["failure"]
    if state == "open":
        if new_run(failure, record["job"]):  # a status gone back within the failed run is no rerun
            return "RERUNNING"
        if record["kind"] == "late" and failure["status"] != "EXEC" and record["job"]["status"] != "EXEC":
            return "NOSTART" if _not_started_by_latest(failure) else "DEADLINE"
        return {"late": "LATE", "long": "LONG"}.get(record["kind"], failure["status"])
    return {"recovered": "RECOVERED", "cancelled": "CANCELLED"}.get(state, "GONE")


def _not_started_by_latest(failure: JSON) -> bool:
    """A waiting job alerted for its latest start, its deadline not passed yet (else: the deadline)."""
    if failure["status"] == "EXEC" or not failure.get("latest_start"):
        return False
    return not (failure.get("deadline") and failure.get("seen_at") and failure["deadline"] <= failure["seen_at"])


def _shown(label: str, lang: str) -> str:
    return say(lang, f"alert_label_{label.lower()}") if label in _OWN_LABELS else label


def _rc(lang: str, rc: int | None) -> str:
    return say(lang, "alert_rc", rc=rc) if rc is not None else ""


def _summary(record: JSON, label: str, lang: str) -> str:
    f = record["failure"]
    where = say(lang, "alert_where", name=f["name"], stream=f["stream"], workstation=f["workstation"])
    if record["kind"] == "pend":
        text = say(lang, "alert_pend", where=where)
    elif record["kind"] == "late" and _not_started_by_latest(f):
        text = say(lang, "alert_nostart", where=where, status=f["status"], latest=_when(f["latest_start"]))
    elif record["kind"] == "late" and f.get("deadline"):
        text = say(lang, "alert_deadline", where=where, status=f["status"], deadline=_when(f["deadline"]))
    elif record["kind"] == "late":
        text = say(lang, "alert_late", where=where, start=_when(f["start"]))
    elif record["kind"] == "long":
        text = say(lang, "alert_long", where=where, ran=_span(f.get("ran")), factor=f.get("factor") or 0,
                   estimate=_span(f.get("estimate")))
    else:
        text = say(lang, "alert_ended", where=where, status=f["status"], rc=_rc(lang, f["rc"]))
    if record.get("blocked"):
        text += say(lang, "alert_blocked", count=record["blocked"])
    elif record.get("blocked", 0) is None and record["kind"] == "failed":  # TWS could not say: never "0"
        text += say(lang, "alert_blocked_unknown")
    note = record.get("log_note")
    if note and not record.get("errors"):
        text += say(lang, f"alert_log_{note['kind']}", reason=note.get("reason", ""))
    if record.get("failures", 1) > 1:
        text += say(lang, "alert_failed_times", count=record["failures"])
    text = _step_prefix(label, record["job"], lang, gone_why=record.get("gone_why")) + text
    if record.get("runbook"):
        text += say(lang, "alert_runbook", runbook=record["runbook"])
    return text


def _step_prefix(label: str, current: JSON, lang: str, *, gone_why: str | None = None) -> str:
    """Where the failure stands now, said before what happened."""
    if label == "RECOVERED":
        return say(lang, "alert_recovered_prefix", run=current["reruns"], status=current["status"],
                   end=_when(current["end"]))
    if label == "RERUNNING":
        return say(lang, "alert_rerunning_prefix", run=current["reruns"], status=current["status"])
    if label == "GONE" and gone_why == "plan":
        return say(lang, "alert_gone_plan_prefix")
    if label in {"CANCELLED", "GONE"}:
        return say(lang, f"alert_{label.lower()}_prefix")
    return ""


def _fields(record: JSON, lang: str) -> tuple[Field, ...]:
    f, current = record["failure"], record["job"]
    rows = [("alert_f_job", f["full_name"]), ("f_stream", f["stream"]), ("f_ws", f["workstation"]),
            ("f_status", current["status"]), ("f_rc", "—" if f["rc"] is None else str(f["rc"])),
            ("f_start", _when(f["start"])), ("f_end", _when(f["end"])), ("f_reruns", str(current["reruns"]))]
    if record.get("blocked") is not None:
        rows.append(("alert_f_blocked", str(record["blocked"])))
    elif "blocked" in record and record["kind"] == "failed":
        rows.append(("alert_f_blocked", say(lang, "alert_unknown")))
    return tuple(Field(label=say(lang, key), value=value) for key, value in rows)


def _act(lang: str, tool: str) -> str:
    """An action by its noun ("reexecução"); a tool we do not know by its own name."""
    verb = action_of(tool)
    return say(lang, f"alert_act_{verb}") if verb in ACTIONS else verb


def _outcome(lang: str, outcome: str) -> str:
    """The agent's outcome words ("ok", "unknown", "refused: ...", "error: ...") in the alert's language."""
    if outcome in {"ok", "unknown"}:
        return say(lang, f"alert_outcome_{outcome}")
    kind, sep, detail = outcome.partition(": ")
    if sep and kind in {"refused", "error"}:
        return say(lang, f"alert_outcome_{kind}", detail=detail)
    return outcome


def _context(record: JSON, ack: JSON | None, snooze: JSON | None, action: JSON | None, lang: str) -> str | None:
    parts = []
    if ack and ack.get("run") == record["failure"]["run"]:
        parts.append(say(lang, "alert_acked_by_at", user=ack["by"], at=_clock(ack["at"])))
    if snooze:
        parts.append(say(lang, "alert_snoozed_by_until", user=snooze["by"], until=_clock(snooze["until"])))
    if action:
        parts.append(say(lang, "alert_last_action", tool=action["tool"], action=_act(lang, action["tool"]),
                         actor=action["actor"], outcome=_outcome(lang, action["outcome"])))
    return " · ".join(parts) or None


def _snooze_buttons(key: str, lang: str) -> list[Button]:
    return [Button(label=say(lang, "alert_btn_snooze_1h"), action_id=ACTION_ALERT_SNOOZE_1H, value=key),
            Button(label=say(lang, "alert_btn_snooze_24h"), action_id=ACTION_ALERT_SNOOZE_24H, value=key)]


def _job_buttons(record: JSON, label: str, acked: bool, lang: str) -> tuple[Button, ...]:
    job_id, key = record["job_id"], record["thread"]
    log = Button(label=say(lang, "btn_log"), action_id=ACTION_ALERT_LOG, value=job_id)
    if label in {"RECOVERED", "CANCELLED", "GONE"}:
        return (log,)
    buttons = [log]
    if label in {"ABEND", "FAIL", "ERROR"}:  # TWS refuses a rerun of a PEND, running or rerunning job
        buttons.insert(0, Button(label=say(lang, "btn_rerun"), action_id=ACTION_ALERT_RERUN, value=job_id,
                                 style="primary"))
    elif label == "PEND":  # TWS's confirm-succ / confirm-abend, through the policy action "confirm"
        buttons[:0] = [Button(label=say(lang, "alert_btn_confirm_succ"), action_id=ACTION_ALERT_CONFIRM_SUCC,
                              value=job_id, style="primary"),
                       Button(label=say(lang, "alert_btn_confirm_abend"), action_id=ACTION_ALERT_CONFIRM_ABEND,
                              value=job_id)]
    elif record["kind"] == "long" and record["job"]["status"] == "EXEC":  # a kill ends the run ABEND
        buttons.insert(0, Button(label=say(lang, "alert_btn_kill"), action_id=ACTION_ALERT_KILL, value=job_id,
                                 style="danger"))
    if not acked:
        buttons.append(Button(label=say(lang, "alert_btn_ack"), action_id=ACTION_ALERT_ACK, value=key))
    return tuple(buttons + _snooze_buttons(key, lang))


def _level(label: str) -> str:
    return {"RECOVERED": "success", "CANCELLED": "info", "GONE": "info", "PEND": "warning",
            "LATE": "warning", "RERUNNING": "warning"}.get(label, "error")


# --- messages ------------------------------------------------------------------------------

def job_root(record: JSON, *, ack: JSON | None = None, snooze: JSON | None = None,
             action: JSON | None = None, lang: str = "en") -> Reply:
    """The root message of one failure, as it should look now."""
    label = _label(record)
    acked = bool(ack and ack.get("run") == record["failure"]["run"])
    errors = record.get("errors") or []
    title = f"{_EMOJI.get(label, '🔴')} {_shown(label, lang)}: {record['failure']['full_name']}"
    if record["kind"] == "pend" and label == "PEND":
        title += say(lang, "alert_needs_confirmation")
    return Reply(text=_summary(record, label, lang), title=title, fields=_fields(record, lang),
                 code="\n".join(errors) or None, code_title=say(lang, "alert_error_lines") if errors else None,
                 buttons=_job_buttons(record, label, acked, lang), level=_level(label),  # type: ignore[arg-type]
                 context=_context(record, ack, snooze, action, lang))


def group_root(group: JSON, records: list[JSON], *, earlier: Sequence[JSON] = (), lang: str = "en") -> Reply:
    """One message for a burst of failures in one job stream.

    ``earlier`` are failures of the same burst that were alerted one by one before the count
    crossed the threshold: listed and counted so the channel reads one burst, but they keep their
    own threads, so the title, the open count and the buttons cover only ``records``.
    """
    open_count = sum(1 for r in records if r["state"] == "open")
    lines = [_group_line(r, lang, above=True) for r in earlier] + [_group_line(r, lang) for r in records]
    if len(lines) > MAX_GROUP_LINES:
        lines = lines[:MAX_GROUP_LINES] + [say(lang, "alert_group_more", count=len(lines) - MAX_GROUP_LINES)]
    title = f"{'🔴' if open_count else '✅'} " + say(lang, "alert_group_title", count=len(records),
                                                     stream=group["stream"])
    if group.get("kind") == "flood":
        title = f"{'🔴' if open_count else '✅'} " + say(lang, "alert_flood_title", count=len(records))
        intro = say(lang, "alert_flood_text", limit=group.get("limit", "?"), open=open_count,
                    minutes=max(1, round(group.get("window", 300.0) / 60)))
    elif earlier:
        intro = say(lang, "alert_group_text_earlier", total=len(earlier) + len(records), stream=group["stream"],
                    minutes=max(1, round(group.get("window", 300.0) / 60)), earlier=len(earlier),
                    count=len(records), open=open_count)
    else:
        intro = say(lang, "alert_group_text", count=len(records), stream=group["stream"], open=open_count)
    key = group["key"]
    buttons = () if not open_count else (
        Button(label=say(lang, "alert_btn_ack_all"), action_id=ACTION_ALERT_ACK, value=key),
        *_snooze_buttons(key, lang))
    return Reply(text=intro + "\n" + "\n".join(lines), title=title, buttons=buttons,
                 level="error" if open_count else "success",
                 context=say(lang, "alert_acked_by", user=group["ack"]["by"]) if group.get("ack") else None)


def _group_line(record: JSON, lang: str, *, above: bool = False) -> str:
    label = _label(record)
    rc = f" rc {record['failure']['rc']}" if record["failure"]["rc"] is not None else ""
    mark = say(lang, "alert_group_alerted_above") if above else ""
    return f"{_EMOJI.get(label, '🔴')} {record['failure']['full_name']} — {_shown(label, lang)}{rc}{mark}"


def repeat_failure(record: JSON, *, lang: str = "en") -> Reply:
    f = record["failure"]
    errors = record.get("errors") or []
    return Reply(text=say(lang, "alert_failed_again", job=f["full_name"], run=f["reruns"], status=f["status"],
                          rc=_rc(lang, f["rc"]), count=record.get("failures", 1)),
                 code="\n".join(errors) or None, level="error")


def new_in_group(record: JSON, *, lang: str = "en") -> Reply:
    f = record["failure"]
    rc = f" rc {f['rc']}" if f["rc"] is not None else ""
    return Reply(text=say(lang, "alert_also_failed", job=f["full_name"], status=f["status"], rc=rc), level="error")


def transition(record: JSON, label: str, *, lang: str = "en") -> Reply:
    """A lifecycle step of a failure: rerun started, recovered, cancelled, gone."""
    job = record["job"]
    key = f"alert_step_{label.lower()}"
    if label == "GONE" and record.get("gone_why") == "plan":
        key = "alert_step_gone_plan"
    elif label == "RECOVERED" and record["kind"] in {"long", "late"}:
        key = "alert_step_finished"  # it did not fail: it finished
    text = say(lang, key, job=record["failure"]["full_name"], run=job["reruns"],
               status=job["status"], end=_when(job["end"]))
    return Reply(text=text, level="success" if label == "RECOVERED" else "info")


def acknowledged(user: str, *, lang: str = "en") -> Reply:
    return Reply(text=say(lang, "alert_acknowledged", user=user), level="info")


def snoozed(user: str, hours: int, until: float, *, lang: str = "en") -> Reply:
    return Reply(text=say(lang, "alert_snoozed", user=user, hours=hours, until=_clock(until)), level="info")


def action_note(*, tool: str, actor: str, outcome: str, lang: str = "en") -> Reply:
    return Reply(text=say(lang, "alert_action_note", actor=actor, verb=action_of(tool),
                          action=_act(lang, tool), outcome=_outcome(lang, outcome)), level="info")


def tws_down(since: float, *, lang: str = "en") -> Reply:
    """TWS did not answer at all (refused, timed out, dropped): it is unreachable."""
    return Reply(title=say(lang, "alert_tws_down_title"), level="warning",
                 text=say(lang, "alert_tws_down_text", since=_clock(since)))


def tws_error(since: float, answer: str, *, lang: str = "en") -> Reply:
    """TWS answered the poll with an error (a 5xx with a TWS message, a 429, a 5xx without one, or
    the breaker holding after such answers): it is reachable, so the notice quotes what came back
    instead of calling it unreachable."""
    return Reply(title=say(lang, "alert_tws_error_title"), level="warning",
                 text=say(lang, "alert_tws_error_text", since=_clock(since), answer=quote_answer(answer)))


def tws_up(since: float, now: float, *, answered: bool = False, lang: str = "en") -> Reply:
    """The end of an outage; ``answered``: TWS had been answering with errors, not unreachable."""
    minutes = max(1, round((now - since) / 60))
    key = "alert_tws_ok" if answered else "alert_tws_up"
    return Reply(title=say(lang, f"{key}_title"), level="success", text=say(lang, f"{key}_text", minutes=minutes))

