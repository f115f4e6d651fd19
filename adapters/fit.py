"""Fitting text within a platform's limits, saying what was cut, in the reply's language.

Block Kit and Adaptive Cards both refuse or truncate oversized elements, so renderers cut first
and say so: an answer keeps its head (``head``), a job log keeps its tail, where the error is
(``tail``), long text is split at line ends (``chunks``). The markers come from ``bot/texts.py``.
Escaping is not here: mrkdwn entities and Adaptive Card markdown need different escaping.
"""

from __future__ import annotations

from bot.texts import say

ELLIPSIS = "…"
_MARKER_ROOM = 40  # characters kept free for a cut marker


def clip(text: str, limit: int) -> str:
    """At most ``limit`` characters, with an ellipsis when something was cut."""
    return text if len(text) <= limit else text[: limit - 1] + ELLIPSIS


def chunks(text: str, limit: int) -> list[str]:
    """Pieces of at most ``limit`` characters, broken at line ends where possible."""
    pieces: list[str] = []
    while len(text) > limit:
        cut = text.rfind("\n", 0, limit)
        cut = cut if cut > 0 else limit
        pieces.append(text[:cut])
        text = text[cut:].lstrip("\n")
    return pieces + [text] if text else pieces


def head(text: str, limit: int, lang: str | None = None) -> str:
    """The first lines of ``text`` that fit in ``limit`` characters, then a marker saying how
    many lines were cut."""
    if len(text) <= limit:
        return text
    kept = text[: limit - _MARKER_ROOM].rsplit("\n", 1)[0] or text[: limit - _MARKER_ROOM]
    cut = text[len(kept):].removeprefix("\n").count("\n") + 1
    return f"{kept}\n{say(lang or 'en', 'cut_lines_after', count=cut)}"


def tail(text: str, limit: int, lang: str | None = None) -> str:
    """The last lines of ``text`` that fit in ``limit`` characters, after a marker saying how
    many earlier lines were cut (errors are at the end of a job log)."""
    text = text.rstrip("\n")
    if len(text) <= limit:
        return text or " "
    kept = text[-limit:]
    if "\n" in kept:
        kept = kept.split("\n", 1)[1]
    else:
        kept = ELLIPSIS + kept[1:]  # one giant last line: keep its end
    cut = text[: len(text) - len(kept)].count("\n")
    return f"{say(lang or 'en', 'cut_lines_before', count=cut)}\n{kept}"


def fields_cut(count: int, lang: str | None = None) -> str:
    """The marker standing in for the last ``count`` fields that did not fit."""
    return say(lang or "en", "cut_fields", count=count)
