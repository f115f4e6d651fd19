"""The common ``Reply`` rendered as Slack Block Kit, always inside Slack's limits.

Slack rejects a whole message (``invalid_blocks``) when one element is too long, so every limit
is enforced here rather than hoped for: 50 blocks, 3,000 characters per section text, 10 fields
of 2,000, a 150-character header, buttons of 75 (text) and 2,000 (value), 25 elements per
actions block, and about 13,000 characters of blocks in all. Everything that comes from users,
job names or job logs is escaped (``&``, ``<``, ``>``) so that a log line can never ping
``<!channel>``, forge a link or break the layout. A long log keeps its tail, where the error is.
"""

from __future__ import annotations

import unicodedata
from typing import Any

from adapters.fit import chunks, clip, fields_cut, head, tail
from adapters.markup import to_mrkdwn
from bot.events import ACTION_CONFIRM, Button, Field, Reply

MAX_BLOCKS = 50
SECTION_CHARS = 3000
FIELD_CHARS = 2000
FIELDS_PER_SECTION = 10
HEADER_CHARS = 150
BUTTON_TEXT_CHARS = 75
BUTTON_VALUE_CHARS = 2000
ACTIONS_PER_BLOCK = 25
TOTAL_CHARS = 12_000  # Slack's real ceiling is about 13,000; leave room for the JSON around it
TEXT_CHARS = 6000  # the answer itself: at most two sections, the rest of the budget is the log's
FALLBACK_CHARS = 1000
CONTEXT_CHARS = 500
FIELDS_MAX = 20
FIELD_BUDGET = 3000  # all fields together; operators read a handful of facts, not an essay
CODE_RESERVE = 1500  # what a long answer leaves at least for the log under it

#: Action ids are unique within a message; duplicates (several "choose" buttons) get "#<n>".
ACTION_SUFFIX = "#"

_EMOJI = {"info": "", "success": ":white_check_mark:", "warning": ":warning:", "error": ":x:"}
_FENCE = "```"
_TICK = "\u02cb"  # MODIFIER LETTER GRAVE ACCENT: looks like ` but cannot close a code block


def escape(text: str) -> str:
    """Neutralise Slack's control characters in mrkdwn (mentions, links, layout)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def base_action_id(action_id: str) -> str:
    """The core's action id from a rendered one (undoes the uniqueness suffix)."""
    return action_id.split(ACTION_SUFFIX, 1)[0]


def render(reply: Reply) -> dict[str, Any]:
    """``{"text": fallback, "blocks": [...]}`` for chat.postMessage, chat.update and friends."""
    emoji = _EMOJI.get(reply.level, "")
    if reply.title and unicodedata.category(reply.title[0]) == "So":
        emoji = ""  # the title brings its own symbol (alerts): one icon is enough
    header = [_header(f"{emoji} {reply.title}" if emoji else reply.title)] if reply.title else []
    fields = _field_sections(reply.fields, reply.lang)
    foot = _actions(reply.buttons)
    if reply.context:
        foot.append(_context(escape(clip(reply.context, CONTEXT_CHARS))))
    text: list[dict[str, Any]] = []
    if reply.text.strip():
        body = escape(to_mrkdwn(reply.text, reply.dialect))
        body = f"{emoji} {body}" if emoji and not header else body
        room = TOTAL_CHARS - size(header + fields + foot) - (CODE_RESERVE if reply.code is not None else 0)
        text = [_section(chunk) for chunk in chunks(head(body, max(200, min(TEXT_CHARS, room)), reply.lang),
                                                     SECTION_CHARS)]
    top = header + text + fields
    code: list[dict[str, Any]] = []
    if reply.code is not None:
        code = _code_blocks(reply.code, reply.code_title, budget=TOTAL_CHARS - size(top + foot),
                            room=MAX_BLOCKS - len(top) - len(foot) - 1, lang=reply.lang)
    # the log sits under the answer and above the buttons
    return {"text": fallback(reply), "blocks": (top + code + foot)[:MAX_BLOCKS]}


def fallback(reply: Reply) -> str:
    """The plain text shown in notifications and by clients that cannot draw blocks."""
    parts = [p for p in (reply.title, reply.text.strip(), reply.code_title) if p]
    text = ": ".join(parts[:2]) if parts else ("(log)" if reply.code else "…")
    return escape(clip(text, FALLBACK_CHARS))


def size(node: Any) -> int:
    """Characters of text and values in ``node`` (blocks), which is what Slack's total counts."""
    if isinstance(node, list):
        return sum(size(item) for item in node)
    if not isinstance(node, dict):
        return 0
    own = sum(len(node[k]) for k in ("text", "value") if isinstance(node.get(k), str))
    return own + sum(size(v) for v in node.values() if isinstance(v, (dict, list)))


# --- blocks -------------------------------------------------------------------------------


def _header(title: str) -> dict[str, Any]:
    # plain_text is never parsed for mentions or links, so it needs no escaping
    return {"type": "header", "text": {"type": "plain_text", "text": clip(title, HEADER_CHARS), "emoji": True}}


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def _context(text: str) -> dict[str, Any]:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": text}]}


def _field_sections(fields: tuple[Field, ...], lang: str | None) -> list[dict[str, Any]]:
    shown = fields[:FIELDS_MAX]
    each = min(FIELD_CHARS, max(60, FIELD_BUDGET // max(1, len(shown))))
    texts = [clip(f"*{escape(f.label)}*\n{escape(f.value)}", each) for f in shown]
    if len(fields) > FIELDS_MAX:
        texts[-1] = fields_cut(len(fields) - FIELDS_MAX + 1, lang)
    return [{"type": "section", "fields": [{"type": "mrkdwn", "text": t} for t in texts[i:i + FIELDS_PER_SECTION]]}
            for i in range(0, len(texts), FIELDS_PER_SECTION)]


def _actions(buttons: tuple[Button, ...]) -> list[dict[str, Any]]:
    """Buttons in rows of at most 25, each action id unique within the message."""
    seen: dict[str, int] = {}
    elements = []
    for button in buttons[: ACTIONS_PER_BLOCK * 2]:
        count = seen[button.action_id] = seen.get(button.action_id, 0) + 1
        action_id = button.action_id if count == 1 else f"{button.action_id}{ACTION_SUFFIX}{count}"
        elements.append(_button(button, action_id))
    return [{"type": "actions", "elements": elements[i:i + ACTIONS_PER_BLOCK]}
            for i in range(0, len(elements), ACTIONS_PER_BLOCK)]


def _button(button: Button, action_id: str) -> dict[str, Any]:
    element: dict[str, Any] = {
        "type": "button", "action_id": action_id, "value": button.value[:BUTTON_VALUE_CHARS],
        "text": {"type": "plain_text", "text": clip(button.label, BUTTON_TEXT_CHARS) or "…", "emoji": True},
    }
    style = button.style or ("primary" if button.action_id == ACTION_CONFIRM else None)
    if style:
        element["style"] = style
    return element


def _code_blocks(code: str, title: str | None, *, budget: int, room: int, lang: str | None) -> list[dict[str, Any]]:
    """The log as fenced sections that fit ``budget`` characters and ``room`` blocks; tail kept."""
    blocks = [_context(f"*{escape(clip(title, CONTEXT_CHARS))}*")] if title else []
    per_section = SECTION_CHARS - 2 * len(_FENCE) - 2
    sections = max(1, min(room, budget // SECTION_CHARS))
    text = escape(code).replace("`", _TICK)
    limit = max(200, min(budget, sections * per_section) - 60)
    pieces = chunks(tail(text, limit, lang), per_section)
    while len(pieces) > sections and limit > 200:  # line breaks left some sections short
        limit = max(200, limit - per_section // 4)
        pieces = chunks(tail(text, limit, lang), per_section)
    return blocks + [_section(f"{_FENCE}\n{piece}\n{_FENCE}") for piece in pieces[-sections:]]
