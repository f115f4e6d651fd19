"""Cleaning a message and finding the names in it.

Slack formatting, mentions and emojis go; words are folded (lower case, accents removed, one
character each so offsets hold); a word that looks like a TWS name (or sits where a name goes)
becomes a marker, so keywords never match inside names.
"""

from __future__ import annotations

import bisect
import re
import unicodedata
from dataclasses import dataclass

from bot.errors import JobNotFound
from bot.nlu.vocab import (
    COMMON,
    JOB_WORDS,
    NAME_MARK,
    SLOT_FILLERS,
    STATUS_WORD,
    STREAM_WORDS,
    WEAK_LEAD,
    WEAK_NOT_NAME,
    WEAK_SLOTS,
    WS_WORDS,
)
from bot.tws.names import JobRef, parse_job_ref

def _fold_table() -> dict[int, str]:
    """Latin letters with accents to their base letter, one character each, so offsets hold."""
    table = {ord(q): "'" for q in "\u2018\u2019\u00b4`"}
    table.update({ord(q): '"' for q in "\u201c\u201d\u00ab\u00bb"})
    for code in range(0xC0, 0x250):
        base = unicodedata.normalize("NFKD", chr(code))[:1]
        if base != chr(code) and base.isascii() and base.isalpha():
            table[code] = base
    return table


_FOLD = _fold_table()
_SLACK_SPECIAL = re.compile(r"<[@#!][^>]*>|<(?:https?|mailto):[^>|]*>")
_SLACK_LABEL = re.compile(r"<[^>|]*\|([^>]*)>")
_SHORTCODE = re.compile(r"(?<![\w:]):[a-z0-9_+\-']+:(?::skin-tone-\d:)?")
_EMOJI = re.compile("[\U0001F000-\U0001FAFF\u2600-\u27BF\u2B00-\u2BFF\uFE0F\u200D\u20E3"
                    "\U000E0000-\U000E007F]")
_FORMATTING = re.compile(r"[*~`>]|&(?:amp|lt|gt);")
_CLITIC = re.compile(r"(?<=[a-z\u00e1\u00e9\u00ed\u00f3\u00fa\u00e2\u00ea\u00f4])-(?:l[oa]s?)\b")
_TOKEN = re.compile(r"[,;!?:]+|[^\s,;!?:()\[\]{}\"<>|=]+")
_NAME_SHAPE = re.compile(r"(?:/?[A-Za-z0-9_@\-/]+#)?(?:[A-Za-z][A-Za-z0-9_@\-]*\.)?"
                         r"[A-Za-z@][A-Za-z0-9_@\-]*")
_SLOT_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_\-]{2,}")
STREAM_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_\-]*")
_NOT_NAME = re.compile(r"(?i)(?:rc|cc)\d+|aws[a-z]{3}\d{3}[a-z]")


# A character without which none of the patterns of clean_text can match: most messages have none.
_CLEANABLE = re.compile(r"[<:*~`>&\-]|[^\x00-\x7f]")


def clean_text(text: str) -> str:
    """Remove what Slack adds around words: mentions, links, emojis, *bold*, `code`."""
    if not _CLEANABLE.search(text):
        return text
    text = _SLACK_SPECIAL.sub(" ", text)
    text = _SLACK_LABEL.sub(r" \1 ", text)
    text = _SHORTCODE.sub(" ", text)
    text = _EMOJI.sub(" ", text)
    text = _FORMATTING.sub(" ", text)
    return _CLITIC.sub(" ele", text)


def fold(word: str) -> str:
    return word.translate(_FOLD).lower()


@dataclass(frozen=True, slots=True, kw_only=True)
class Name:
    ref: JobRef
    slot: str  # "job", "stream", "workstation" or "" when no keyword says
    prep: str  # the folded word just before, to read "in S" / "on W"


@dataclass(frozen=True, slots=True, kw_only=True)
class Message:
    words: tuple[str, ...]  # folded words, names replaced by NAME_MARK
    clauses: tuple[int, ...]  # clause number of each word (punctuation starts a new one)
    starts: tuple[int, ...]  # offset of each word in ``text``
    text: str
    names: tuple[Name, ...]

    def word_at(self, offset: int) -> int:
        return bisect.bisect_right(self.starts, offset) - 1


def tokenize(text: str) -> list[tuple[str, str, int]]:
    """(raw word, folded word, clause number) for each word of the cleaned text."""
    out: list[tuple[str, str, int]] = []
    clause = 0
    for match in _TOKEN.finditer(text):
        token = match.group()
        if token[0] in ",;!?:":
            clause += 1
            continue
        word = token.strip("'._-\"")
        if "#" not in word:  # a workstation by its folder path (/ETL/LNX_ETL01): its name matches it
            word = word.strip("/").rsplit("/", 1)[-1]
        if word:
            out.append((word, fold(word), clause))
        if token.endswith("."):
            clause += 1
    return out


def strong_name(raw: str, folded: str) -> bool:
    """Whether a word looks like a TWS name by its shape alone (``ACME_BILLING_07``, ``CPU1#S.J``).

    Letters with accents count as letters here (``ÉXTRAÇÃO_01``): TWS cannot have such a name,
    but the user typed one, and it must be answered as theirs, never replaced by the context.
    """
    raw = raw.translate(_FOLD)
    if folded in COMMON or not _NAME_SHAPE.fullmatch(raw) or _NOT_NAME.fullmatch(raw):
        return False
    if "#" in raw:
        return True
    if "." in raw:
        return raw.isupper() or any(c.isdigit() or c == "_" for c in raw)
    if "_" in raw or any(c.isdigit() for c in raw):
        return len(raw) >= 2
    return raw.isupper() and len(raw) >= 3


def _slot(folded: list[str], i: int) -> str:
    """What a keyword says name ``i`` is: "stream S", "S stream", "the S jobs", "job J", "ws W"."""
    j = i - 1
    while j >= 0 and i - j <= 3 and folded[j] in SLOT_FILLERS and folded[j] not in JOB_WORDS:
        j -= 1
    before = folded[j] if j >= 0 else ""
    after = folded[i + 1] if i + 1 < len(folded) else ""
    if before in STREAM_WORDS:
        return "stream"
    if before in WS_WORDS:
        return "workstation"
    if before in JOB_WORDS:
        return "job"
    if after in STREAM_WORDS or after == "jobs":
        return "stream"
    return "job" if after in JOB_WORDS else ""


def name_ref(raw: str) -> JobRef | None:
    """The parts of a name; one with accents keeps them (the tools say it is not in the plan)."""
    try:
        return parse_job_ref(raw)
    except JobNotFound:
        pass
    try:
        parse_job_ref(raw.translate(_FOLD))
    except JobNotFound:
        return None
    ws, _, rest = raw.rpartition("#")
    stream, _, job = rest.rpartition(".")
    return JobRef(job=job.upper(), stream=stream.upper() or None, workstation=ws.strip("/").upper() or None)


def analyse(tokens: list[tuple[str, str, int]]) -> Message:
    raws = [raw[:-2] if raw.lower().endswith("'s") else raw for raw, _, _ in tokens]
    folded = [f for _, f, _ in tokens]
    names: list[Name] = []
    words = list(folded)
    for i, raw in enumerate(raws):
        prev = folded[i - 1] if i else ""
        lead = folded[i - 2] if i > 1 else ""
        strong = strong_name(raw, fold(raw))
        weak = (prev in WEAK_SLOTS and lead in WEAK_LEAD and bool(_SLOT_NAME.fullmatch(raw))
                and folded[i] not in COMMON
                and not STATUS_WORD.fullmatch(folded[i]) and not WEAK_NOT_NAME.search(folded[i]))
        ref = name_ref(raw) if strong or weak else None
        if ref is None:
            continue
        names.append(Name(ref=ref, slot=_slot(folded, i), prep=prev))
        words[i] = NAME_MARK
    starts, offset = [], 0
    for word in words:
        starts.append(offset)
        offset += len(word) + 1
    return Message(words=tuple(words), clauses=tuple(c for _, _, c in tokens), starts=tuple(starts),
                    text=" ".join(words), names=tuple(names))
