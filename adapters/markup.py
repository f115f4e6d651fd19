"""Converting a ``Reply``'s text from the dialect it declares to the one a platform renders.

The core writes Slack-style mrkdwn (``*bold*``, `` `code` ``); CommonMark, which Adaptive Cards
read, takes ``*bold*`` for italic. Each renderer calls the converter for its platform, so the core
never has to know where its words go. Escaping stays with each renderer.
"""

from __future__ import annotations

import re

from bot.events import Dialect

_MD_BOLD = re.compile(r"\*\*(?=\S)(.+?)(?<=\S)\*\*")
_MRKDWN_BOLD = re.compile(r"(?<![\w*])\*(?=\S)([^*\n]+?)(?<=\S)\*(?![\w*])")
_MRKDWN_STRIKE = re.compile(r"(?<![\w~])~(?=\S)([^~\n]+?)(?<=\S)~(?![\w~])")


def to_mrkdwn(text: str, dialect: Dialect) -> str:
    """Text in Slack's mrkdwn: CommonMark bold becomes ``*bold*``; mrkdwn and plain pass as they are."""
    return _MD_BOLD.sub(r"*\1*", text) if dialect == "markdown" else text


def to_markdown(text: str, dialect: Dialect) -> str:
    """Text in CommonMark (Adaptive Cards, Teams): mrkdwn ``*bold*`` and ``~strike~`` converted."""
    if dialect != "mrkdwn":
        return text
    return _MRKDWN_STRIKE.sub(r"~~\1~~", _MRKDWN_BOLD.sub(r"**\1**", text))
