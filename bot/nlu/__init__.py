"""Understanding a message without an LLM: the command grammar, then bilingual rules.

The agent core asks this module first. It is instant, free and predictable, and it is all the
understanding there is when no LLM is configured or the LLM fails. Two layers:

* ``parse_command``: the terse grammar shared by slash commands and mentions (``status JOB``,
  ``rerun WS#STREAM.JOB``, ``jobs failed stream S`` ...).
* ``understand``: the grammar, then keyword rules for English and Brazilian Portuguese as
  operators type them (accents or not, "pls", emojis, Slack formatting).

Safety over recall: a state-changing tool (rerun, hold, release, cancel) comes only from an
imperative at the start of a clause that names a job or points back at one ("rerun it"). Negated,
questioning, how-to or bulk sentences ("don't cancel anything", "did you rerun X?", "how do I
rerun a job?", "cancel everything") never produce one; the core still asks for confirmation.

Everything is precompiled regexes over a folded copy of the text (lower case, accents removed,
job names replaced by a marker), so a message costs tens of microseconds.

The package: ``vocab`` (words and patterns), ``text`` (cleaning, names), ``language``,
``grammar`` (commands), ``rules``; this module puts them together.
"""

from __future__ import annotations

from bot.nlu.grammar import parse_command
from bot.nlu.language import detect_language, vote
from bot.nlu.rules import apply_rules
from bot.nlu.text import analyse, clean_text, tokenize
from bot.tools import Intent

__all__ = ["detect_language", "examples", "parse_command", "understand"]


def understand(text: str, *, lang: str | None = None) -> Intent:
    """The command grammar first, then the rules; ``Intent(tool=None)`` when neither applies."""
    tokens = tokenize(clean_text(text))
    lang = lang or vote(text, tokens)
    if (command := parse_command(text)) is not None:
        return Intent(tool=command.tool, args=command.args, lang=lang, source="command")
    return apply_rules(analyse(tokens), lang)


# Names that exist in the demo plan (``resync demo``: 3000 jobs, seed 7), so every example works there.
_EXAMPLES = {
    "en": ["status GL_POST_03", "which jobs failed today?", "show me the log of CLOSE_AP_03",
           "rerun AGT02#PAYROLL_DAILY.EXTRACT01", "how is the FECHAMENTO_MENSAL stream doing?",
           "is TWS up?", "how do I fix a database load that ended with RC 12?"],
    "pt": ["qual o status do AGG_DIARIO_02?", "quais jobs falharam hoje?", "mostra o log do REFRESH_MV_02",
           "roda de novo o AGT02#PAYROLL_DAILY.EXTRACT01", "como está a stream BKP_DIARIO?",
           "o TWS está no ar?", "como resolver erro de conexão recusada no FTP?"],
}


def examples(lang: str) -> list[str]:
    """Messages to show after "I didn't get that" and in help, in the user's language."""
    return list(_EXAMPLES["pt" if lang == "pt" else "en"])
