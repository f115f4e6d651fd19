"""The terse command grammar shared by slash commands and mentions (``status JOB``, ``jobs failed stream S``)."""

from __future__ import annotations

import re

from bot.nlu.text import STREAM_NAME, clean_text, fold, name_ref
from bot.nlu.vocab import COMMON, STATUS_WORD, TWS_STATES
from bot.tools import Intent
from bot.tws.names import JobRef

_JOB_COMMANDS = {"status": "job_status", "log": "job_log", "rerun": "rerun_job", "hold": "hold_job",
                 "release": "release_job", "cancel": "cancel_job", "kill": "kill_job"}
#: ``confirm JOB succ|abend``: the outcome word picks the tool (the policy action is ``confirm``).
_CONFIRM_TOOLS = {"succ": "confirm_succ_job", "abend": "confirm_abend_job"}
_COMMAND_STRIP = re.compile(r"[?!.]+$")


def _status_of(word: str) -> str | None:
    """A list filter from one command word: a TWS state verbatim, or a status word."""
    if word.upper() in TWS_STATES:
        return word.upper()
    match = STATUS_WORD.fullmatch(fold(word))
    return match.lastgroup if match else None


def job_args(ref: JobRef) -> dict[str, str]:
    args = {"job": ref.job}
    if ref.stream:
        args["stream"] = ref.stream
    if ref.workstation:
        args["workstation"] = ref.workstation
    return args


def _list_command(words: list[str]) -> dict[str, str] | None:
    """``[STATUS] [stream S] [ws W]``; None when anything else is there."""
    args: dict[str, str] = {}
    i = 0
    while i < len(words):
        key = words[i].lower()
        if key in ("stream", "ws", "workstation") and i + 1 < len(words):
            args["stream" if key == "stream" else "workstation"] = words[i + 1].upper()
            i += 2
        elif "status" not in args and (status := _status_of(words[i])):
            args["status"] = status
            i += 1
        else:
            return None
    return args


def _stream_command(word: str) -> Intent | None:
    """``stream S`` or ``stream WS#S``."""
    ws, _, stream = word.rpartition("#")
    if not STREAM_NAME.fullmatch(stream):
        return None
    args = {"stream": stream.upper()}
    if ws.strip("/"):
        args["workstation"] = ws.strip("/").upper()
    return Intent(tool="stream_status", args=args, source="command")


def _odd_name(word: str) -> JobRef | None:
    """``log naïve``: a word in a job's place is the user's name, even one TWS could not have."""
    return JobRef(job=word.upper()) if any(c.isalpha() for c in word) else None


def parse_command(text: str) -> Intent | None:
    """The terse grammar of slash commands and mentions; None when ``text`` is not a command."""
    words = _COMMAND_STRIP.sub("", clean_text(text).strip()).split()
    if not words:
        return None
    verb, rest = words[0].lower(), words[1:]
    if verb == "help":
        return Intent(tool="help", source="command")
    if verb == "health" and not rest:
        return Intent(tool="engine_health", source="command")
    if verb in ("jobs", "failures") and (args := _list_command(rest)) is not None:
        if verb == "failures":
            if "status" in args:
                return None
            args = {"status": "FAILED", **args}
        return Intent(tool="list_jobs", args=args, source="command")
    if verb == "confirm" and len(rest) == 2 and rest[1].lower() in _CONFIRM_TOOLS and (ref := name_ref(rest[0])):
        return Intent(tool=_CONFIRM_TOOLS[rest[1].lower()], args=job_args(ref), source="command")
    if len(rest) != 1 or fold(rest[0]) in COMMON:
        return None
    if verb == "stream":
        return _stream_command(rest[0])
    if verb in _JOB_COMMANDS and (ref := name_ref(rest[0]) or _odd_name(rest[0])):
        return Intent(tool=_JOB_COMMANDS[verb], args=job_args(ref), source="command")
    return None
