"""The common ``Reply`` rendered as a Teams message: one Adaptive Card (schema 1.5), within limits.

Teams refuses a message over about 40 KB and an Adaptive Card newer than 1.5, so the card is
fitted here rather than hoped for: the answer keeps its head, a job log keeps its tail (where the
error is), each cut says so in the reply's language, and the whole activity is measured and the
log shortened until it fits. The card is full width (``msteams.width: Full``) and always carries a
plain ``fallbackText`` (also the activity's ``summary``, shown in notifications).

The text arrives in the dialect the ``Reply`` declares and becomes Adaptive Card markdown
(``adapters.markup``); inline code, which card text cannot show, becomes bold. Fields are a
FactSet; a job log is a monospace ``RichTextBlock`` whose text runs are never read as markdown,
so a log line cannot forge a link or a list. Buttons are ``Action.Submit`` whose data carries
the action id, the value and a nonce shared by every button of this card: the adapter
deduplicates submissions on it (Teams delivers a double click, or a retried submit, twice).
Teams has no message only one person can see; a reply meant for the requester alone (a denial, an
error) @mentions them instead (``mention``), so it reaches them in a busy channel.
"""

from __future__ import annotations

import json
import re
import unicodedata
import uuid
from typing import Any

from adapters.fit import chunks, clip, fields_cut, head, tail
from adapters.markup import to_markdown
from bot.events import ACTION_CONFIRM, Button, Field, Reply

SCHEMA = "http://adaptivecards.io/schemas/adaptive-card.json"
VERSION = "1.5"
CARD_TYPE = "application/vnd.microsoft.card.adaptive"
MAX_BYTES = 38_000  # Teams' ceiling is about 40 KB per message; leave room for the envelope
TEXT_CHARS = 8_000
CODE_CHARS = 24_000
TITLE_CHARS = 200
FIELDS_MAX = 20
FIELD_CHARS = 500
BUTTON_TEXT_CHARS = 60
BUTTONS_PER_ROW = 5
BUTTONS_MAX = 20
FALLBACK_CHARS = 1000
CONTEXT_CHARS = 500

_COLOR = {"info": "Default", "success": "Good", "warning": "Warning", "error": "Attention"}
_ICON = {"info": "", "success": "✅", "warning": "⚠️", "error": "❌"}
_INLINE_CODE = re.compile(r"`([^`\n]+)`")


def render(reply: Reply, *, nonce: str | None = None, mention: tuple[str, str] | None = None) -> dict[str, Any]:
    """The activity body (``type``, ``summary``, ``attachments``) for send, reply or update;
    ``mention`` (AAD object id, name) starts the card with an @mention of that person."""
    nonce = nonce or uuid.uuid4().hex[:16]
    code_budget = CODE_CHARS
    while True:
        activity = _activity(reply, nonce, code_budget)
        if mention:
            _mention(card_of(activity), *mention)
        size = len(json.dumps(activity, ensure_ascii=False).encode())
        if size <= MAX_BYTES or reply.code is None or code_budget <= 500:
            return activity
        code_budget = max(500, code_budget - (size - MAX_BYTES) - 1000)


def fallback(reply: Reply) -> str:
    """Plain text for notifications and clients that cannot draw the card."""
    parts = [p for p in (reply.title, _INLINE_CODE.sub(r"\1", reply.text.strip()), reply.code_title) if p]
    return clip(": ".join(parts[:2]) if parts else ("(log)" if reply.code else "…"), FALLBACK_CHARS)


def card_of(activity: dict[str, Any]) -> dict[str, Any] | None:
    """The Adaptive Card inside a rendered (or received) activity, if any."""
    for attachment in activity.get("attachments") or ():
        if attachment.get("contentType") == CARD_TYPE:
            return attachment.get("content")
    return None


def _mention(card: dict[str, Any] | None, user_id: str, name: str) -> None:
    if card is None or not user_id:
        return
    tag = f"<at>{name or user_id}</at>"
    card["body"].insert(0, {"type": "TextBlock", "text": tag, "wrap": True, "weight": "Bolder"})
    card["msteams"]["entities"] = [{"type": "mention", "text": tag, "mentioned": {"id": user_id, "name": name or user_id}}]


def _activity(reply: Reply, nonce: str, code_budget: int) -> dict[str, Any]:
    text = fallback(reply)
    card: dict[str, Any] = {"type": "AdaptiveCard", "$schema": SCHEMA, "version": VERSION,
                            "msteams": {"width": "Full"}, "fallbackText": text,
                            "body": _body(reply, nonce, code_budget)}
    return {"type": "message", "summary": text, "attachments": [{"contentType": CARD_TYPE, "content": card}]}


def _body(reply: Reply, nonce: str, code_budget: int) -> list[dict[str, Any]]:
    lang = reply.lang
    body: list[dict[str, Any]] = []
    icon = _ICON.get(reply.level, "")
    if reply.title:
        title = reply.title if _own_symbol(reply.title) or not icon else f"{icon} {reply.title}"
        body.append({"type": "TextBlock", "text": clip(title, TITLE_CHARS), "weight": "Bolder", "size": "Medium",
                     "wrap": True, "color": _COLOR.get(reply.level, "Default"), "style": "heading"})
    if reply.text.strip():
        text = _markdown(reply.text, reply)
        text = text if reply.title or not icon or _own_symbol(text) else f"{icon} {text}"
        body.append({"type": "TextBlock", "text": head(text, TEXT_CHARS, lang), "wrap": True})
    if reply.fields:
        body.append(_facts(reply.fields, reply))
    if reply.code is not None:
        if reply.code_title:
            body.append({"type": "TextBlock", "text": clip(reply.code_title, CONTEXT_CHARS), "weight": "Bolder",
                         "isSubtle": True, "wrap": True, "spacing": "Medium"})
        body.append(_code(reply.code, code_budget, lang))
    if reply.context:
        body.append({"type": "TextBlock", "text": clip(_markdown(reply.context, reply), CONTEXT_CHARS),
                     "isSubtle": True, "size": "Small", "wrap": True, "spacing": "Small"})
    body.extend(_buttons(reply.buttons, nonce))
    return body


def _own_symbol(text: str) -> bool:
    """Alerts bring their own symbol (🔴, ✅...): one icon is enough."""
    return bool(text) and unicodedata.category(text[0]) == "So"


def _markdown(text: str, reply: Reply) -> str:
    return _INLINE_CODE.sub(r"**\1**", to_markdown(text, reply.dialect))


def _facts(fields: tuple[Field, ...], reply: Reply) -> dict[str, Any]:
    shown = [{"title": clip(f.label, 80), "value": clip(_markdown(f.value, reply), FIELD_CHARS)}
             for f in fields[:FIELDS_MAX]]
    if len(fields) > FIELDS_MAX:
        shown[-1] = {"title": "…", "value": fields_cut(len(fields) - FIELDS_MAX + 1, reply.lang)}
    return {"type": "FactSet", "facts": shown}


def _code(code: str, budget: int, lang: str | None) -> dict[str, Any]:
    """The log in a monospace block: its tail, after a marker saying what was cut."""
    text = tail(code, budget, lang)
    runs = [{"type": "TextRun", "text": piece + "\n", "fontType": "Monospace", "size": "Small"}
            for piece in chunks(text, 4000)]
    return {"type": "Container", "style": "emphasis", "bleed": False,
            "items": [{"type": "RichTextBlock", "inlines": runs}]}


def _buttons(buttons: tuple[Button, ...], nonce: str) -> list[dict[str, Any]]:
    actions = [_submit(b, nonce) for b in buttons[:BUTTONS_MAX]]
    return [{"type": "ActionSet", "actions": actions[i:i + BUTTONS_PER_ROW]}
            for i in range(0, len(actions), BUTTONS_PER_ROW)]


def _submit(button: Button, nonce: str) -> dict[str, Any]:
    action: dict[str, Any] = {"type": "Action.Submit", "title": clip(button.label, BUTTON_TEXT_CHARS) or "…",
                              "data": {"action_id": button.action_id, "value": button.value, "nonce": nonce}}
    style = button.style or ("primary" if button.action_id == ACTION_CONFIRM else None)
    if style:
        action["style"] = {"primary": "positive", "danger": "destructive"}[style]
    return action
