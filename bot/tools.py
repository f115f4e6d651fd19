"""The TWS tools the bot can use: one registry shared by commands, rules and the LLM.

The specs' JSON-schema parameters go to the LLM as-is. Read-only tools run here; state-changing
tools are only proposed here and run by the agent core after permission and confirmation.
"""

from __future__ import annotations

import difflib
import json
import re
import unicodedata
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from functools import cache
from typing import Any

from bot.alerts.compose import error_lines
from bot.errors import AmbiguousJob, BadResponse, JobNotFound, LogNotReady, TwsAuthError, TwsError, TwsUnavailable
from bot.events import ACTION_CHOOSE, Button, Field, Reply, RunbookAnswers, RunbookSearch
from bot.places import PlaceIndex
from bot.texts import has_text, quote_answer, say
from bot.tws.client import TwsClient
from bot.tws.models import STATUS_FILTERS, Job
from bot.tws.names import JobRef, parse_job_ref

_TWS_NAME = re.compile(r"[A-Z0-9_@*\-]+")  # what a job name can be in TWS (upper-cased)
_JOB = {"type": "string", "description": "Job name: JOB, STREAM.JOB or WORKSTATION#STREAM.JOB"}
_STREAM = {"type": "string", "description": "Job stream name"}
_WS = {"type": "string", "description": "Workstation name"}
_STATUS = {"type": "string", "description": "A TWS internal status (ABEND, EXEC, HOLD, SUCC, ...), FAILED for "
           "ABEND|FAIL|ERROR, or LATE for jobs TWS marks late (past their deadline or start time)"}


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
    unsupported: str | None = None  # what the message asks that no tool answers yet ("yesterday")


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
    ToolSpec(name="count_jobs", description="How many jobs in the current plan match a status (FAILED, LATE, ...), stream or workstation.",
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
    ToolSpec(name="confirm_succ_job", description="Confirm a job waiting for confirmation (PEND) as successful. "
             "Needs confirmation.", parameters=_job_params(), changes_state=True),
    ToolSpec(name="confirm_abend_job", description="Confirm a job waiting for confirmation (PEND) as abended. "
             "Needs confirmation.", parameters=_job_params(), changes_state=True),
    ToolSpec(name="kill_job", description="Kill a running job (EXEC); it ends ABEND. Needs confirmation.",
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
CHOICES = 10
_WILDCARDS = ("@", "*", "?")
_FIRST_FAILED = frozenset({"job_log", "rerun_job"})  # "why did X fail?", "rerun X": failed candidates first


@dataclass(frozen=True, slots=True, kw_only=True)
class ToolContext:
    """What a tool run may use: capabilities, not the whole app."""

    tws: TwsClient
    lang: str
    text: str = ""  # the user's message (the default runbook query)
    runbooks: RunbookSearch | None = None
    places: PlaceIndex = field(default_factory=PlaceIndex)


@dataclass(frozen=True, slots=True, kw_only=True)
class Outcome:
    replies: list[Reply]
    job: Job | None = None  # the job discussed, remembered for follow-ups


def has_wildcard(name: str) -> bool:
    return any(w in name for w in _WILDCARDS)


def job_ref(args: dict[str, str]) -> JobRef:
    """Combine ``job`` (maybe WS#STREAM.JOB) with separate stream/workstation arguments.

    A name TWS cannot have (accents, spaces) is kept as the user wrote it, upper-cased, so the
    answer says it is not in the plan instead of answering about something else.
    """
    try:
        ref = parse_job_ref(args["job"])
    except JobNotFound:
        ref = JobRef(job=args["job"].strip().upper())
    return JobRef(job=ref.job, stream=ref.stream or (args.get("stream") or "").upper() or None,
                  workstation=ref.workstation or (args.get("workstation") or "").upper() or None)


def full_name(args: dict[str, str]) -> str:
    """The whole name the user asked for (``WS#STREAM.JOB`` as far as given), for audit and replies."""
    return str(job_ref(args)) if args.get("job") else args.get("job_id", "?")


_CHOICE_KEYS = ("job_id", "job", "stream", "workstation", "status")


def choice_value(tool: str, lang: str, **args: str | None) -> str:
    """A button's value: what to run when pressed, and in which language to answer."""
    return json.dumps({"tool": tool, "lang": lang, **{k: v for k, v in args.items() if k in _CHOICE_KEYS and v}})


def choice_args(choice: dict[str, Any]) -> dict[str, str]:
    """The arguments a pressed button carries (the keys ``choice_value`` writes, nothing else)."""
    return {k: str(choice[k]) for k in _CHOICE_KEYS if choice.get(k)}


async def resolve(ctx: ToolContext, tool: str, args: dict[str, str]) -> Job | Reply:
    """One plan instance for the arguments, or a reply asking the user to choose (never a guess)."""
    if args.get("job_id"):
        return await ctx.tws.get_job(args["job_id"])
    if not args.get("job"):
        return Reply(text=say(ctx.lang, "need_job"), level="warning")
    ref = job_ref(args)
    if not _TWS_NAME.fullmatch(ref.job):
        return await _not_found(ctx, tool, ref)
    try:
        return await ctx.tws.resolve_job(ref)
    except AmbiguousJob as exc:
        return await _choose(ctx, tool, ref, list(exc.candidates))
    except JobNotFound:
        pass
    if (swapped := await _other_place(ctx, ref)) is not None:  # "o X no AGT02": AGT02 is a workstation
        return await resolve(ctx, tool, {**_job_args(swapped)})
    return await _not_found(ctx, tool, ref)


async def _other_place(ctx: ToolContext, ref: JobRef) -> JobRef | None:
    """The same name with its stream read as a workstation (or the reverse), when the plan says so.

    Grammar guessed which one "no X" / "on X" was; only a name that is the other kind is swapped.
    """
    if bool(ref.stream) == bool(ref.workstation) or not _TWS_NAME.fullmatch(ref.stream or ref.workstation or ""):
        return None
    name = ref.stream or ref.workstation or ""
    kind = (await ctx.places.place(ctx.tws, name)).kind
    if ref.stream and kind == "workstation":
        return JobRef(job=ref.job, workstation=name)
    if ref.workstation and kind == "stream":
        return JobRef(job=ref.job, stream=name)
    return None


def _job_args(ref: JobRef) -> dict[str, str]:
    return {k: v for k, v in (("job", ref.job), ("stream", ref.stream), ("workstation", ref.workstation)) if v}


async def _choose(ctx: ToolContext, tool: str, ref: JobRef, candidates: list[Job]) -> Reply:
    """Buttons for the candidates (failed first when the question is about a failure), with the total."""
    filters = {"name": ref.job, "stream": ref.stream, "workstation": ref.workstation}
    total = await ctx.tws.count_jobs(**filters)
    if tool in _FIRST_FAILED:
        failed = []
        async for job in ctx.tws.iter_jobs(**filters, status="FAILED", page_size=CHOICES):
            failed.append(job)
            if len(failed) >= CHOICES:
                break
        seen = {job.id for job in failed}
        candidates = failed + [job for job in candidates if job.id not in seen]
    shown = candidates[:CHOICES]
    buttons = tuple(Button(label=_short_label(job, ctx.lang), action_id=ACTION_CHOOSE,
                           value=choice_value(tool, ctx.lang, job_id=job.id)) for job in shown)
    text = say(ctx.lang, "ambiguous", name=str(ref), count=_n(total, ctx.lang))
    if total > len(shown):
        text += "\n" + say(ctx.lang, "ambiguous_more", shown=len(shown), count=_n(total, ctx.lang), job=ref.job)
    return Reply(text=text, buttons=buttons, level="warning")


async def _not_found(ctx: ToolContext, tool: str, ref: JobRef) -> Reply:
    if ref.stream and not await ctx.tws.count_jobs(stream=ref.stream):
        return await _stream_missing(ctx, ref.stream)
    if not ref.stream and not ref.workstation and _TWS_NAME.fullmatch(ref.job):
        kind = (await ctx.places.place(ctx.tws, ref.job)).kind
        if kind is not None:  # "status LNX_ETL01": a workstation, not a job
            value = choice_value("stream_status", ctx.lang, stream=ref.job) if kind == "stream" else \
                choice_value("list_jobs", ctx.lang, workstation=ref.job)
            return Reply(text=say(ctx.lang, f"not_a_job_{kind}", name=ref.job), level="warning",
                         buttons=(Button(label=f"{say(ctx.lang, 'kind_' + kind)} {ref.job}", action_id=ACTION_CHOOSE,
                                         value=value),))
    choices = await _close_matches(ctx.tws, ref) if _TWS_NAME.fullmatch(ref.job) else []
    if not _TWS_NAME.fullmatch(ref.job):  # accents: suggest the plain spelling if the plan has it
        plain = _plain(ref.job)
        if _TWS_NAME.fullmatch(plain):
            choices = await _close_matches(ctx.tws, replace(ref, job=plain))
    if not choices:
        return Reply(text=say(ctx.lang, "job_not_found", name=str(ref)), level="warning")
    buttons = tuple(Button(label=c, action_id=ACTION_CHOOSE, value=choice_value(tool, ctx.lang, job=c)) for c in choices)
    return Reply(text=say(ctx.lang, "did_you_mean", name=str(ref)), buttons=buttons, level="warning")


async def _close_matches(tws: TwsClient, ref: JobRef, limit: int = 5) -> list[str]:
    """Names close to ``ref``, keeping the stream/workstation the user gave (so a choice is what
    they meant and not ambiguous again): within those first, else among plan names sharing its
    first letters, still qualified by what the user gave."""
    if ref.stream or ref.workstation:
        known: dict[str, str] = {}
        async for job in tws.iter_jobs(stream=ref.stream, workstation=ref.workstation, page_size=500):
            known.setdefault(job.name, job.full_name)
            if len(known) >= 500:
                break
        close = difflib.get_close_matches(ref.job, list(known), n=limit, cutoff=0.5)
        if close:
            return [known[name] for name in close]
    return [str(replace(ref, job=name)) for name in await tws.similar_job_names(ref.job, limit)]


async def _stream_missing(ctx: ToolContext, name: str) -> Reply:
    """A stream the plan does not have: say so, and offer the closest stream names."""
    close = await ctx.places.similar(ctx.tws, name, kinds=("stream",))
    if not close:
        return Reply(text=say(ctx.lang, "stream_not_found", name=name), level="warning")
    buttons = tuple(Button(label=n, action_id=ACTION_CHOOSE, value=choice_value("stream_status", ctx.lang, stream=n))
                    for _, n in close)
    return Reply(text=say(ctx.lang, "stream_not_found", name=name) + " " + say(ctx.lang, "did_you_mean_short"),
                 buttons=buttons, level="warning")


def _plain(name: str) -> str:
    return unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode().upper()


def _short_label(job: Job, lang: str) -> str:
    when = _time(job.end or job.start or job.sched_time)
    label = f"{job.full_name} · {status_text(job.status, lang)} {when}".strip()
    return label if len(label) <= 90 else label[:89] + "…"


def _time(value: datetime | None) -> str:
    return value.strftime("%m-%d %H:%M") if value else ""


def _n(count: int, lang: str) -> str:
    """A count as people read it: 5,040 in English, 5.040 in Portuguese."""
    text = f"{count:,}"
    return text.replace(",", ".") if lang == "pt" else text


def status_text(status: str, lang: str) -> str:
    """A TWS status as TWS says it (operators search for ``ABEND``), with a gloss in the user's language."""
    return f"{status} ({say(lang, 'st_' + status)})" if has_text("st_" + status) else status


def job_fields(job: Job, lang: str) -> tuple[Field, ...]:
    coarse = say(lang, "coarse_" + job.coarse_status) if has_text("coarse_" + job.coarse_status) else job.coarse_status
    fields = [Field(label=say(lang, "f_status"), value=f"{job.status}" + (f" ({coarse})" if coarse else "")),
              Field(label=say(lang, "f_stream"), value=job.stream),
              Field(label=say(lang, "f_ws"), value=job.workstation)]
    if job.return_code is not None:
        fields.append(Field(label=say(lang, "f_rc"), value=str(job.return_code)))
    for key, value in (("f_sched", job.sched_time), ("f_start", job.start), ("f_end", job.end)):
        if value:
            fields.append(Field(label=say(lang, key), value=value.strftime("%Y-%m-%d %H:%M:%S UTC")))
    if job.late:
        fields.append(Field(label=say(lang, "f_late"), value=say(lang, "yes")))
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
        errors = error_lines(log.text, limit=4)
        text += "\n" + "\n".join(f"> {line}" for line in errors)
        if ctx.runbooks is not None:  # the best runbook for this error, when one matches well enough
            from bot.kb.answers import failure_query  # a plain function; no model or Qdrant import

            hint = await ctx.runbooks(failure_query(found.name, found.stream, found.return_code,
                                                    error_lines(log.text)))
            if hint:
                text += "\n" + say(ctx.lang, "kb_why", runbook=hint)
    return Outcome(job=found, replies=[Reply(title=title, text=text, code=log.text, code_title=note or None,
                                             level=_LEVEL.get(found.status, "info"))])  # type: ignore[arg-type]


async def _filters(ctx: ToolContext, args: dict[str, str]) -> dict[str, Any] | Reply:
    """The list filters, with each stream/workstation value looked up in the plan.

    Grammar only guesses which one a name is ("no X" is either); the plan decides. A name that
    is neither is said as such, with the closest names: never an empty (green) list.
    """
    status = (args.get("status") or "").upper() or None
    if status and status not in STATUS_FILTERS | {"LATE"}:
        return Reply(text=say(ctx.lang, "bad_status", status=status, known=", ".join(sorted(STATUS_FILTERS | {"LATE"}))),
                     level="warning")
    filters: dict[str, Any] = {"status": status if status != "LATE" else None, "late": status == "LATE",
                               "name": args.get("name")}
    places = {key: (args.get(key) or "").upper() for key in ("stream", "workstation") if args.get(key)}
    for key, value in places.items():
        if has_wildcard(value):
            filters[key] = value
            continue
        kind = (await ctx.places.place(ctx.tws, value)).kind
        if kind is None:
            return await _place_missing(ctx, args, key, value)
        if kind in filters:  # "X in Y" where both are the same kind: keep the user's reading
            kind = key
        filters[kind] = value
    return {k: v for k, v in filters.items() if v}


async def _place_missing(ctx: ToolContext, args: dict[str, str], key: str, value: str) -> Reply:
    close = await ctx.places.similar(ctx.tws, value)
    text = say(ctx.lang, "place_not_found", name=value)
    if not close:
        return Reply(text=text, level="warning")
    rest = {k: v for k, v in args.items() if k in ("status",) and v}
    other = {k: v for k, v in args.items() if k in ("stream", "workstation") and k != key and v}
    buttons = tuple(Button(label=f"{say(ctx.lang, 'kind_' + kind)} {name}", action_id=ACTION_CHOOSE,
                           value=choice_value("list_jobs", ctx.lang, **rest, **other, **{kind: name}))
                    for kind, name in close)
    return Reply(text=text + " " + say(ctx.lang, "did_you_mean_short"), buttons=buttons, level="warning")


def _describe(filters: dict[str, Any], lang: str) -> str:
    """The filters in words of the user's language: " (failed, on workstation LNX_ETL01)"."""
    parts = []
    if filters.get("status"):
        status = filters["status"]
        parts.append(say(lang, "st_" + status) if has_text("st_" + status) else status)
    if filters.get("late"):
        parts.append(say(lang, "st_LATE"))
    for key in ("stream", "workstation", "name"):
        if filters.get(key):
            parts.append(say(lang, f"where_{key}", name=filters[key]))
    return f" ({', '.join(parts)})" if parts else ""


async def _list_jobs(ctx: ToolContext, args: dict[str, str]) -> Outcome:
    filters = await _filters(ctx, args)
    if isinstance(filters, Reply):
        return Outcome(replies=[filters])
    jobs: list[Job] = []
    async for job in ctx.tws.iter_jobs(**filters, page_size=100):
        jobs.append(job)
        if len(jobs) > LIST_LIMIT:
            break
    what = _describe(filters, ctx.lang)
    status = filters.get("status")
    if not jobs:
        return Outcome(replies=[Reply(text=say(ctx.lang, "no_jobs", what=what), level="success" if status == "FAILED" else "info")])
    total = len(jobs) if len(jobs) <= LIST_LIMIT else await ctx.tws.count_jobs(**filters)
    lines = [_job_line(job) for job in jobs[:LIST_LIMIT]]
    if total > LIST_LIMIT:
        lines.append(say(ctx.lang, "more_jobs", more=_n(total - LIST_LIMIT, ctx.lang)))
    level = "error" if status == "FAILED" else "info"
    return Outcome(replies=[Reply(text=say(ctx.lang, "jobs_found", count=_n(total, ctx.lang), what=what),
                                  code="\n".join(lines), level=level)],
                   job=jobs[0] if total == 1 else None)


async def _count_jobs(ctx: ToolContext, args: dict[str, str]) -> Outcome:
    filters = await _filters(ctx, args)
    if isinstance(filters, Reply):
        return Outcome(replies=[filters])
    total = await ctx.tws.count_jobs(**filters)
    level = "error" if total and filters.get("status") == "FAILED" else "info"
    return Outcome(replies=[Reply(text=say(ctx.lang, "jobs_counted", count=_n(total, ctx.lang),
                                           what=_describe(filters, ctx.lang)), level=level)])


def _job_line(job: Job) -> str:
    rc = f" rc={job.return_code}" if job.return_code is not None else ""
    when = _time(job.end or job.start or job.sched_time)
    return f"{job.status:<6} {job.full_name}{rc} {when}".rstrip()


async def _stream_status(ctx: ToolContext, args: dict[str, str]) -> Outcome:
    name = (args.get("stream") or "").upper()
    if not name:
        return Outcome(replies=[Reply(text=say(ctx.lang, "need_stream"), level="warning")])
    workstation = (args.get("workstation") or "").upper() or None
    streams = await ctx.tws.query_streams(name=name, workstation=workstation)
    if not streams:
        if not workstation and (await ctx.places.place(ctx.tws, name)).kind == "workstation":
            return await _list_jobs(ctx, {"workstation": name})  # "how is LNX_ETL01 doing?"
        return Outcome(replies=[await _stream_missing(ctx, name)])
    by_stream: dict[str, list[Job]] = {}
    for job in await ctx.tws.query_jobs(stream=name, workstation=workstation):
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
    if len(streams) > 5:
        replies.append(Reply(text=say(ctx.lang, "more_streams", shown=5, count=_n(len(streams), ctx.lang))))
    return Outcome(replies=replies)


async def _engine_health(ctx: ToolContext, args: dict[str, str]) -> Outcome:
    try:
        info = await ctx.tws.engine_info()
    except TwsError as exc:  # reachable but refusing is not "NOT reachable"
        answer = exc.answer if isinstance(exc, TwsUnavailable) else None  # TWS answered: quote it
        key = ("tws_auth" if isinstance(exc, TwsAuthError) else "tws_error" if answer
               else "health_down" if isinstance(exc, TwsUnavailable) else "tws_error")
        detail = quote_answer(answer) if answer else str(exc)  # bounded, credential-free, as in alert notices
        return Outcome(replies=[Reply(text=say(ctx.lang, key, detail=detail), level="error",
                                      fields=(Field(label=say(ctx.lang, "f_breaker"), value=ctx.tws.breaker_state),))])
    fields = (Field(label=say(ctx.lang, "f_version"), value=f"{info.version} ({info.engine_type})"),
              Field(label=say(ctx.lang, "f_timezone"), value=info.timezone),
              Field(label=say(ctx.lang, "f_server"), value=ctx.tws.active_url),
              Field(label=say(ctx.lang, "f_breaker"), value=ctx.tws.breaker_state))
    return Outcome(replies=[Reply(text=say(ctx.lang, "health_ok"), fields=fields, level="success")])


async def _search_runbooks(ctx: ToolContext, args: dict[str, str]) -> Outcome:
    if ctx.runbooks is None:
        return Outcome(replies=[Reply(text=say(ctx.lang, "no_kb"))])
    if isinstance(ctx.runbooks, RunbookAnswers):  # passages with sources (and a grounded answer)
        return Outcome(replies=await ctx.runbooks.answer(args.get("query") or ctx.text, lang=ctx.lang))
    answer = await ctx.runbooks(args.get("query") or ctx.text)
    return Outcome(replies=[Reply(text=answer or say(ctx.lang, "no_kb"))])


async def _help(ctx: ToolContext, args: dict[str, str]) -> Outcome:
    return Outcome(replies=[_help_reply(ctx.lang)])


@cache
def _help_reply(lang: str) -> Reply:
    """The same words every time (a Reply is immutable): built once per language."""
    from bot.nlu import examples

    sample = "\n".join(f"• {e}" for e in examples(lang)[:6])
    return Reply(title=say(lang, "help_title"), text=say(lang, "help_text") + "\n" + sample)


_READERS: dict[str, Callable[[ToolContext, dict[str, str]], Awaitable[Outcome]]] = {
    "job_status": _job_status, "job_log": _job_log, "list_jobs": _list_jobs, "count_jobs": _count_jobs,
    "stream_status": _stream_status, "engine_health": _engine_health, "search_runbooks": _search_runbooks, "help": _help,
}
