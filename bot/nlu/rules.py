"""The bilingual rules: what a cleaned message asks for, most specific reading first.

Safety over recall: an action comes only from an imperative at the start of a clause that names
a job or points back at one; negated, questioning, how-to or bulk sentences never produce one.
"""

from __future__ import annotations

import re

from bot.nlu.grammar import job_args, parse_command
from bot.nlu.language import vote
from bot.nlu.text import Message, Name, analyse, clean_text, tokenize
from bot.nlu.vocab import (
    ACTIONS,
    ALLOWED_PRE,
    ANAPHORA,
    ANY_ACTION,
    BARE_OK,
    BOT_WORDS,
    COUNT,
    FIX,
    HEALTH_ALONE,
    HEALTH_SUBJECT,
    HEALTH_WORD,
    HELP,
    HELP_ALONE,
    HELP_WORD,
    HISTORY,
    HOWTO,
    JOBS_WORD,
    LIST_CUE,
    LIST_FILLER,
    LIST_PREPS,
    LIST_VERB,
    LOG,
    NAME_MARK,
    NEGATIONS,
    POLITE,
    RUNBOOK,
    RUNNING_WORD,
    STATUS_QUESTION,
    STATUS_WORD,
    STREAM_WORD,
    VAGUE,
    WHAT_HAPPENED,
    WHY,
    WS_PREPS,
)
from bot.tools import Intent

def _split_names(msg: Message, *, listing: bool) -> tuple[list[Name], dict[str, str]]:
    """The job names, and the stream / workstation the sentence places them in.

    In a list request a bare name after "in"/"na"/"do" is the stream to look in ("failed jobs in
    S"); after "on" it is a workstation. Elsewhere the first unlabelled name is the job.
    """
    jobs: list[Name] = []
    where: dict[str, str] = {}
    for name in msg.names:
        slot = name.slot
        if not slot and (listing or jobs) and name.prep in LIST_PREPS:
            slot = "workstation" if name.prep in WS_PREPS else "stream"
        if slot == "stream":
            where.setdefault("stream", name.ref.job)
            if name.ref.workstation:
                where.setdefault("workstation", name.ref.workstation)
        elif slot == "workstation":
            where.setdefault("workstation", name.ref.job)
        else:
            jobs.append(name)
    return jobs, where


def _job_intent(tool: str, job: Name, where: dict[str, str], lang: str) -> Intent:
    args = job_args(job.ref)
    for key, value in where.items():
        args.setdefault(key, value)
    return Intent(tool=tool, args=args, lang=lang)


def _clause_words(msg: Message, start: int) -> tuple[list[str], list[str]]:
    """Words before and after a match, within its clause."""
    k = msg.word_at(start)
    clause = msg.clauses[k]
    before = [msg.words[j] for j in range(k) if msg.clauses[j] == clause]
    after = [msg.words[j] for j in range(k, len(msg.words)) if msg.clauses[j] == clause]
    return before, after


def _action(msg: Message, lang: str) -> Intent | None:
    """A state-changing request, or a refusal (tool None) when it is negated, vague or ambiguous.

    Returns None when no action verb stands at the start of a clause, so other rules may apply.
    """
    found: list[tuple[str, list[str], list[str]]] = []
    negated = False
    for tool, pattern in ACTIONS:
        for match in pattern.finditer(msg.text):
            before, after = _clause_words(msg, match.start())
            if all(w in ALLOWED_PRE for w in before):
                found.append((tool, before, after))
                break
            negated = negated or any(w in NEGATIONS for w in before[-3:])
    if not found:
        return Intent(tool=None, lang=lang) if negated else None
    if len({tool for tool, _, _ in found}) > 1:
        return Intent(tool=None, lang=lang)
    tool, before, after = found[0]
    jobs, where = _split_names(msg, listing=False)
    if any(w in VAGUE for w in after) or len({str(n.ref) for n in jobs}) > 1:
        return Intent(tool=None, lang=lang)
    if jobs:
        return _job_intent(tool, jobs[0], where, lang)
    if any(w in ANAPHORA for w in after):
        return Intent(tool=tool, lang=lang, refers_back=True)
    if tool in BARE_OK and _bare_phrase(msg, dict(ACTIONS)[tool]):
        return Intent(tool=tool, lang=lang, refers_back=True)
    return Intent(tool=None, lang=lang)


def _bare_phrase(msg: Message, pattern: re.Pattern[str]) -> bool:
    """Only the action phrase and politeness: "roda de novo", "rerun pls"."""
    return all(w in POLITE or w in ALLOWED_PRE for w in pattern.sub(" ", msg.text).split())


def _howto(msg: Message, lang: str) -> Intent | None:
    """"How do I ...?": runbooks for fixing things, help for using the bot; never an action."""
    if FIX.search(msg.text):
        return Intent(tool="search_runbooks", lang=lang)
    if ANY_ACTION.search(msg.text):
        return Intent(tool="help", lang=lang)
    if msg.names:
        return None  # "how can I see the log of X?": answer the question itself
    if BOT_WORDS.search(msg.text):
        return Intent(tool="help", lang=lang)
    return Intent(tool="search_runbooks", lang=lang)


def _log(msg: Message, jobs: list[Name], where: dict[str, str], lang: str) -> Intent | None:
    """The log, or why a job failed: "why did X fail?", "what went wrong with X?", "e o log?".

    Without a job name only a log word, "why" or "what happened to it" refers back; "o que deu
    erro hoje?" is a list request.
    """
    text = msg.text
    if jobs:
        status = STATUS_WORD.search(text)
        failing = WHY.search(text) and status is not None and status.lastgroup == "FAILED"
        if LOG.search(text) or WHAT_HAPPENED.search(text) or failing:
            return _job_intent("job_log", jobs[0], where, lang)
        return None
    pointed = WHAT_HAPPENED.search(text) and any(w in ANAPHORA for w in msg.words)
    if LOG.search(text) or WHY.search(text) or pointed:
        return Intent(tool="job_log", lang=lang, refers_back=True)
    return None


def _health(msg: Message, lang: str) -> Intent | None:
    text = msg.text
    if msg.names or not HEALTH_SUBJECT.search(text):
        return None
    if HEALTH_WORD.search(text) or (RUNNING_WORD.search(text) and not LIST_CUE.search(text)):
        return Intent(tool="engine_health", lang=lang)
    return None


def _listing(msg: Message, lang: str) -> Intent | None:
    text = msg.text
    status = STATUS_WORD.search(text)
    plural = JOBS_WORD.search(text)
    listed = plural and (LIST_VERB.search(text) or status or msg.names)
    if not ((status and LIST_CUE.search(text)) or listed):
        return None
    jobs, where = _split_names(msg, listing=True)
    if len(jobs) == 1 and not where and plural and (COUNT.search(text) or LIST_VERB.search(text)) \
            and not jobs[0].ref.stream and not jobs[0].slot:
        where = {"stream": jobs[0].ref.job}  # "quantos jobs tem o X?": where to look (the tools ask the plan)
        jobs = []
    if jobs:
        return None
    args = {"status": status.lastgroup} if status else {}
    if not args and not where:  # nothing narrows it: refuse a filter we did not read, never the whole plan
        residue = [w for w in msg.words if w not in LIST_FILLER and w not in POLITE and w not in ALLOWED_PRE
                   and w != NAME_MARK and len(w) > 2]
        if residue:
            return Intent(tool=None, lang=lang, unsupported=f"filter:{residue[0]}")
    tool = "count_jobs" if COUNT.search(text) else "list_jobs"
    return Intent(tool=tool, args=args | where, lang=lang)


def apply_rules(msg: Message, lang: str) -> Intent:
    """Most specific first: help and how-to questions before actions, so "how do I rerun a job?"
    never reruns anything; actions before status, so "X failed, rerun it" reruns; a job name with
    nothing else to say about it is a status question."""
    text = msg.text
    if not text.strip():
        return Intent(tool=None, lang=lang)
    if HELP_ALONE.match(text) or HELP.search(text):
        return Intent(tool="help", lang=lang)
    if history := HISTORY.search(text):
        return Intent(tool=None, lang=lang, unsupported=f"history:{history.group()}")
    if HOWTO.search(text) and (intent := _howto(msg, lang)):
        return intent
    if RUNBOOK.search(text):
        return Intent(tool="search_runbooks", lang=lang)
    if (intent := _action(msg, lang)) is not None:
        return intent
    jobs, where = _split_names(msg, listing=False)
    if (intent := _log(msg, jobs, where, lang) or _health(msg, lang) or _listing(msg, lang)) is not None:
        return intent
    if HEALTH_ALONE.match(text):
        return Intent(tool="engine_health", lang=lang)
    if where.get("stream") and not jobs:
        args = where if "workstation" in where else {"stream": where["stream"]}
        return Intent(tool="stream_status", args=dict(args), lang=lang)
    if jobs:
        return _job_intent("job_status", jobs[0], where, lang)
    if STREAM_WORD.search(text) and STATUS_QUESTION.search(text):
        return Intent(tool="stream_status", lang=lang, refers_back=True)
    status = STATUS_WORD.search(text)
    if STATUS_QUESTION.search(text) or (status and status.group() != "hold" and len(msg.words) <= 4):
        return Intent(tool="job_status", lang=lang, refers_back=True)
    if HELP_WORD.search(text):
        return Intent(tool="help", lang=lang)
    return Intent(tool=None, lang=lang)
