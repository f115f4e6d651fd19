"""The TWS tools the bot can use: one registry shared by commands, rules and the LLM.

The specs' JSON-schema parameters go to the LLM as-is. Read-only tools run here; state-changing
tools are only proposed here and run by the agent core after permission and confirmation.
"""

from __future__ import annotations

import difflib
import json
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bot.alerts.compose import error_lines
from bot.errors import AmbiguousJob, BadResponse, JobNotFound, LogNotReady, TwsAuthError, TwsError, TwsUnavailable
from bot.events import ACTION_CHOOSE, Button, Field, Reply, RunbookSearch
from bot.texts import say
from bot.tws.client import TwsClient
from bot.tws.models import STATUS_FILTERS, Job
from bot.tws.names import JobRef, parse_job_ref

_JOB = {"type": "string", "description": "Job name: JOB, STREAM.JOB or WORKSTATION#STREAM.JOB"}
_STREAM = {"type": "string", "description": "Job stream name"}
_WS = {"type": "string", "description": "Workstation name"}
_STATUS = {"type": "string", "description": "A TWS internal status (ABEND, EXEC, HOLD, SUCC, ...) or FAILED for ABEND|FAIL|ERROR"}


@dataclass(frozen=True, slots=True, kw_only=True)
class ToolSpec:
    name: str
    description: str
    parameters: dict[str, Any]  # JSON schema, used as-is for LLM tool-calling
    changes_state: bool = False

    def openai_schema(self) -> dict[str, Any]:
        return {"type": "function", "function": {"name": self.name, "description": self.description,
                                                 "parameters": self.parameters}}


@dataclass(frozen=True, slots=True, kw_only=True)
class Intent:
    """What a message means: a tool and its arguments (tool None: not understood).

    ``args`` keys are among job, stream, workstation, status, query. ``refers_back`` marks a
    follow-up ("and its log?", "rerun it") whose job comes from the conversation context.
    """

    tool: str | None
    args: dict[str, str] = field(default_factory=dict)
    lang: str = "en"  # "en" or "pt"
    source: str = "rules"  # "command", "rules", "llm", "button"
    refers_back: bool = False
    note: str | None = None  # e.g. why the LLM was skipped


def _params(**props: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "properties": props, "additionalProperties": False}


def _job_params() -> dict[str, Any]:
    schema = _params(job=_JOB, stream=_STREAM, workstation=_WS)
    schema["required"] = ["job"]
    return schema


TOOLS: dict[str, ToolSpec] = {spec.name: spec for spec in (
    ToolSpec(name="job_status", description="Current status of one job in today's plan (return code, times, stream, workstation).",
             parameters=_job_params()),
    ToolSpec(name="list_jobs", description="List jobs in the current plan, filtered by status (FAILED for failures), stream or workstation.",
             parameters=_params(status=_STATUS, stream=_STREAM, workstation=_WS)),
    ToolSpec(name="job_log", description="The end of a job's log (stdlist), with its error lines; use it to explain why a job failed.",
             parameters=_job_params()),
    ToolSpec(name="rerun_job", description="Rerun a job (allowed when it ended SUCC, ABEND, FAIL or SUPPR). Needs confirmation.",
             parameters=_job_params(), changes_state=True),
    ToolSpec(name="hold_job", description="Put a job that has not started on hold. Needs confirmation.",
             parameters=_job_params(), changes_state=True),
    ToolSpec(name="release_job", description="Release a held job. Needs confirmation.",
             parameters=_job_params(), changes_state=True),
    ToolSpec(name="cancel_job", description="Cancel a job that has not finished. Needs confirmation.",
             parameters=_job_params(), changes_state=True),
    ToolSpec(name="stream_status", description="Status of a job stream and a summary of its jobs.",
             parameters={**_params(stream=_STREAM, workstation=_WS), "required": ["stream"]}),
    ToolSpec(name="engine_health", description="Whether TWS is reachable, its version and the state of the connection.",
             parameters=_params()),
    ToolSpec(name="search_runbooks", description="Search the operations runbooks for how to fix a problem.",
             parameters=_params(query={"type": "string", "description": "What to look for (default: the whole message)"})),
    ToolSpec(name="help", description="What the bot can do, with examples.", parameters=_params()),
)}


# --- running the read-only tools ----------------------------------------------------------------
# State-changing tools are never run from here: the agent core proposes them for confirmation.

LIST_LIMIT = 25
LOG_TAIL = 60
_WILDCARDS = ("@", "*", "?")


@dataclass(frozen=True, slots=True, kw_only=True)
class ToolContext:
    """What a tool run may use: capabilities, not the whole app."""

    tws: TwsClient
    lang: str
    text: str = ""  # the user's message (the default runbook query)
    runbooks: RunbookSearch | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Outcome:
    replies: list[Reply]
    job: Job | None = None  # the job discussed, remembered for follow-ups


def has_wildcard(name: str) -> bool:
    return any(w in name for w in _WILDCARDS)


def job_ref(args: dict[str, str]) -> JobRef:
    """Combine ``job`` (maybe WS#STREAM.JOB) with separate stream/workstation arguments."""
    ref = parse_job_ref(args["job"])
    return JobRef(job=ref.job, stream=ref.stream or (args.get("stream") or "").upper() or None,
                  workstation=ref.workstation or (args.get("workstation") or "").upper() or None)


def choice_value(tool: str, lang: str, *, job_id: str | None = None, job: str | None = None) -> str:
    """A button's value: what to run when pressed, and in which language to answer."""
    return json.dumps({"tool": tool, "lang": lang, **({"job_id": job_id} if job_id else {}), **({"job": job} if job else {})})


async def resolve(ctx: ToolContext, tool: str, args: dict[str, str]) -> Job | Reply:
    """One plan instance for the arguments, or a reply asking the user to choose (never a guess)."""
    if args.get("job_id"):
        return await ctx.tws.get_job(args["job_id"])
    if not args.get("job"):
        return Reply(text=say(ctx.lang, "need_job"), level="warning")
    ref = job_ref(args)
    try:
        return await ctx.tws.resolve_job(ref)
    except AmbiguousJob as exc:
        jobs: list[Job] = list(exc.candidates)[:10]
        buttons = tuple(Button(label=_short_label(job), action_id=ACTION_CHOOSE,
                               value=choice_value(tool, ctx.lang, job_id=job.id)) for job in jobs)
        text = say(ctx.lang, "ambiguous", name=str(ref), count=len(exc.candidates))
        if len(exc.candidates) > len(jobs):
            text += "\n" + say(ctx.lang, "ambiguous_more", shown=len(jobs), count=len(exc.candidates), job=ref.job)
        return Reply(text=text, buttons=buttons, level="warning")
    except JobNotFound:
        if ref.stream and not await ctx.tws.query_streams(name=ref.stream):
            return Reply(text=say(ctx.lang, "stream_not_found", name=ref.stream), level="warning")
        choices = await _close_matches(ctx.tws, ref)
        if not choices:
            return Reply(text=say(ctx.lang, "job_not_found", name=str(ref)), level="warning")
        buttons = tuple(Button(label=c, action_id=ACTION_CHOOSE, value=choice_value(tool, ctx.lang, job=c)) for c in choices)
        return Reply(text=say(ctx.lang, "did_you_mean", name=str(ref)), buttons=buttons, level="warning")


async def _close_matches(tws: TwsClient, ref: JobRef, limit: int = 5) -> list[str]:
    """Names close to ``ref``: within the stream/workstation the user gave when that narrows it
    (so a choice is not ambiguous again), else among plan names sharing its first letters."""
    if ref.stream or ref.workstation:
        known: dict[str, str] = {}
        async for job in tws.iter_jobs(stream=ref.stream, workstation=ref.workstation, page_size=500):
            known.setdefault(job.name, job.full_name)
            if len(known) >= 500:
                break
        close = difflib.get_close_matches(ref.job, list(known), n=limit, cutoff=0.5)
        if close:
            return [known[name] for name in close]
    return await tws.similar_job_names(ref.job, limit)


def _short_label(job: Job) -> str:
    when = _time(job.sched_time)
    label = f"{job.full_name} {when}".strip()
    return label if len(label) <= 70 else label[:69] + "…"


def _time(value: datetime | None) -> str:
    return value.strftime("%m-%d %H:%M") if value else ""


def job_fields(job: Job, lang: str) -> tuple[Field, ...]:
    fields = [Field(label=say(lang, "f_status"), value=f"{job.status}" + (f" ({job.coarse_status})" if job.coarse_status else "")),
              Field(label=say(lang, "f_stream"), value=job.stream),
              Field(label=say(lang, "f_ws"), value=job.workstation)]
    if job.return_code is not None:
        fields.append(Field(label=say(lang, "f_rc"), value=str(job.return_code)))
    for key, value in (("f_sched", job.sched_time), ("f_start", job.start), ("f_end", job.end)):
        if value:
            fields.append(Field(label=say(lang, key), value=value.strftime("%Y-%m-%d %H:%M:%S UTC")))
    if job.rerun_count:
        fields.append(Field(label=say(lang, "f_reruns"), value=str(job.rerun_count)))
    return tuple(fields)


_LEVEL = {"SUCC": "success", "ABEND": "error", "FAIL": "error", "ERROR": "error", "HOLD": "warning", "PEND": "warning"}


def status_reply(job: Job, lang: str) -> Reply:
    buttons = [Button(label=say(lang, "btn_log"), action_id=ACTION_CHOOSE, value=choice_value("job_log", lang, job_id=job.id))]
    if job.failed or job.status == "SUCC":
        buttons.append(Button(label=say(lang, "btn_rerun"), action_id=ACTION_CHOOSE,
                              value=choice_value("rerun_job", lang, job_id=job.id), style="danger" if job.status == "SUCC" else "primary"))
    return Reply(title=job.full_name, text=f"`{job.full_name}`: *{job.status}*", fields=job_fields(job, lang),
                 buttons=tuple(buttons), level=_LEVEL.get(job.status, "info"))  # type: ignore[arg-type]


async def run_read_tool(tool: str, args: dict[str, str], ctx: ToolContext) -> Outcome:
    runner = _READERS[tool]
    return await runner(ctx, args)


async def _job_status(ctx: ToolContext, args: dict[str, str]) -> Outcome:
    if args.get("job") and has_wildcard(args["job"]):
        return await _list_jobs(ctx, {**args, "name": args["job"]})
    found = await resolve(ctx, "job_status", args)
    if isinstance(found, Reply):
        return Outcome(replies=[found])
    return Outcome(replies=[status_reply(found, ctx.lang)], job=found)


async def _job_log(ctx: ToolContext, args: dict[str, str]) -> Outcome:
    found = await resolve(ctx, "job_log", args)
    if isinstance(found, Reply):
        return Outcome(replies=[found])
    try:
        log = await ctx.tws.job_log(found.id, tail=LOG_TAIL, run_id=found.run_id)
    except LogNotReady:
        return Outcome(replies=[Reply(text=say(ctx.lang, "log_not_ready", job=found.full_name), level="warning")], job=found)
    except BadResponse as exc:  # TWS answered, but with no log we can read: say why
        return Outcome(replies=[Reply(text=say(ctx.lang, "log_unavailable", job=found.full_name, reason=str(exc)),
                                      level="warning")], job=found)
    if not log.text.strip():
        return Outcome(replies=[Reply(text=say(ctx.lang, "log_empty", job=found.full_name))], job=found)
    shown = log.text.count("\n") + 1
    note = (say(ctx.lang, "log_cut", shown=shown, total=log.total_lines) if log.truncated
            else say(ctx.lang, "log_cut_unknown", shown=shown) if log.maybe_truncated else "")
    title = say(ctx.lang, "log_title", job=found.full_name, run=found.rerun_count + 1)
    text = f"`{found.full_name}`: *{found.status}*" + (f" rc={found.return_code}" if found.return_code is not None else "")
    if found.failed:  # answer "why did it fail?" first: the error lines, then the tail itself
        text += "\n" + "\n".join(f"> {line}" for line in error_lines(log.text, limit=4))
    return Outcome(job=found, replies=[Reply(title=title, text=text, code=log.text, code_title=note or None,
                                             level=_LEVEL.get(found.status, "info"))])  # type: ignore[arg-type]


async def _list_jobs(ctx: ToolContext, args: dict[str, str]) -> Outcome:
    status = (args.get("status") or "").upper() or None
    if status and status not in STATUS_FILTERS:
        return Outcome(replies=[Reply(text=f"`{status}`: " + ", ".join(sorted(STATUS_FILTERS)), level="warning")])
    filters = {"status": status, "stream": (args.get("stream") or "").upper() or None,
               "workstation": (args.get("workstation") or "").upper() or None, "name": args.get("name")}
    filters = {k: v for k, v in filters.items() if v}
    jobs: list[Job] = []
    async for job in ctx.tws.iter_jobs(**filters, page_size=100):  # type: ignore[arg-type]
        jobs.append(job)
        if len(jobs) > LIST_LIMIT:
            break
    what = "".join(f" {k}={v}" for k, v in filters.items())
    what = f" ({what.strip()})" if what else ""
    if not jobs:
        return Outcome(replies=[Reply(text=say(ctx.lang, "no_jobs", what=what), level="success" if status == "FAILED" else "info")])
    total = len(jobs) if len(jobs) <= LIST_LIMIT else await ctx.tws.count_jobs(**filters)
    lines = [_job_line(job) for job in jobs[:LIST_LIMIT]]
    if total > LIST_LIMIT:
        lines.append(say(ctx.lang, "more_jobs", more=total - LIST_LIMIT))
    level = "error" if status == "FAILED" else "info"
    return Outcome(replies=[Reply(text=say(ctx.lang, "jobs_found", count=total, what=what), code="\n".join(lines), level=level)],
                   job=jobs[0] if total == 1 else None)


def _job_line(job: Job) -> str:
    rc = f" rc={job.return_code}" if job.return_code is not None else ""
    when = _time(job.end or job.start or job.sched_time)
    return f"{job.status:<6} {job.full_name}{rc} {when}".rstrip()


async def _stream_status(ctx: ToolContext, args: dict[str, str]) -> Outcome:
    name = (args.get("stream") or "").upper()
    if not name:
        return Outcome(replies=[Reply(text=say(ctx.lang, "need_stream"), level="warning")])
    streams = await ctx.tws.query_streams(name=name, workstation=(args.get("workstation") or "").upper() or None)
    if not streams:
        return Outcome(replies=[Reply(text=say(ctx.lang, "stream_not_found", name=name), level="warning")])
    by_stream: dict[str, list[Job]] = {}
    for job in await ctx.tws.query_jobs(stream=name, workstation=(args.get("workstation") or "").upper() or None):
        by_stream.setdefault(job.stream_id, []).append(job)
    replies = []
    for stream in streams[:5]:
        jobs = by_stream.get(stream.id, [])
        counts = Counter(job.status for job in jobs)
        failed = [job for job in jobs if job.failed]
        summary = ", ".join(f"{status} {n}" for status, n in counts.most_common())
        fields = [Field(label=say(ctx.lang, "f_status"), value=stream.status), Field(label=say(ctx.lang, "f_ws"), value=stream.workstation),
                  Field(label=say(ctx.lang, "f_jobs"), value=summary or "0")]
        if stream.sched_time:
            fields.append(Field(label=say(ctx.lang, "f_sched"), value=stream.sched_time.strftime("%Y-%m-%d %H:%M UTC")))
        replies.append(Reply(title=say(ctx.lang, "stream_title", stream=stream.full_name),
                             text=f"`{stream.full_name}`: *{stream.status}*", fields=tuple(fields),
                             code="\n".join(_job_line(j) for j in failed[:10]) or None,
                             level="error" if failed else "info"))
    return Outcome(replies=replies)


async def _engine_health(ctx: ToolContext, args: dict[str, str]) -> Outcome:
    try:
        info = await ctx.tws.engine_info()
    except TwsError as exc:  # reachable but refusing is not "NOT reachable"
        key = "tws_auth" if isinstance(exc, TwsAuthError) else "health_down" if isinstance(exc, TwsUnavailable) else "tws_error"
        return Outcome(replies=[Reply(text=say(ctx.lang, key, detail=str(exc)), level="error",
                                      fields=(Field(label=say(ctx.lang, "f_breaker"), value=ctx.tws.breaker_state),))])
    fields = (Field(label=say(ctx.lang, "f_version"), value=f"{info.version} ({info.engine_type})"),
              Field(label=say(ctx.lang, "f_timezone"), value=info.timezone),
              Field(label=say(ctx.lang, "f_server"), value=ctx.tws.active_url),
              Field(label=say(ctx.lang, "f_breaker"), value=ctx.tws.breaker_state))
    return Outcome(replies=[Reply(text=say(ctx.lang, "health_ok"), fields=fields, level="success")])


async def _search_runbooks(ctx: ToolContext, args: dict[str, str]) -> Outcome:
    if ctx.runbooks is None:
        return Outcome(replies=[Reply(text=say(ctx.lang, "no_kb"))])
    answer = await ctx.runbooks(args.get("query") or ctx.text)
    return Outcome(replies=[Reply(text=answer or say(ctx.lang, "no_kb"))])


async def _help(ctx: ToolContext, args: dict[str, str]) -> Outcome:
    from bot.nlu import examples

    sample = "\n".join(f"• {e}" for e in examples(ctx.lang)[:6])
    return Outcome(replies=[Reply(title=say(ctx.lang, "help_title"), text=say(ctx.lang, "help_text") + "\n" + sample)])


_READERS: dict[str, Callable[[ToolContext, dict[str, str]], Awaitable[Outcome]]] = {
    "job_status": _job_status, "job_log": _job_log, "list_jobs": _list_jobs, "stream_status": _stream_status,
    "engine_health": _engine_health, "search_runbooks": _search_runbooks, "help": _help,
}
