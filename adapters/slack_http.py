"""The guard in front of bolt for ``POST /slack/events``: signed first, then whole, parsed once.

1. Not UTF-8: 400 (no Slack request is; the signature is computed over text).
2. The signature, by slack-sdk's ``SignatureVerifier`` over the raw body, at most 5 minutes old:
   bad, stale or missing, 401.
3. The payload's shape: not JSON, nested deeper than ``MAX_DEPTH``, a lone surrogate (which no
   UTF-8 encoder downstream would take), missing fields, a field that bolt or the adapter reads
   with an unexpected type (``_FIELDS``), an unexpected content type: 400, so nothing reaches
   bolt or the core unless Slack sent it and it is whole. Bad input never becomes a 5xx, which
   Slack would retry.

The parsed payload is handed to bolt as it is, so the body is parsed once. Bolt takes an
already-parsed body only in its ``socket_mode`` request form; that mode changes nothing else in
a dispatch but bolt's own signature check, which our guard replaces. It also spares bolt's body
parser, which reads any form body containing the word "payload" as an interactivity payload,
so that ``/tws log payload_load`` reaches the listener whole.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl

from slack_bolt.request.async_request import AsyncBoltRequest
from slack_sdk.signature import SignatureVerifier

_FORM = "application/x-www-form-urlencoded"
_COMMAND_FIELDS = ("command", "team_id", "channel_id", "user_id")
MAX_DEPTH = 32  # Slack's payloads nest about 8 levels (blocks inside a message inside an event)
_SURROGATE = re.compile("[\ud800-\udfff]")
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")  # how a surrogate reaches JSON text (raw ones are not UTF-8)
_TEXT, _FLAG, _OBJECT, _LIST = (str,), (bool, str), (dict,), (list,)
# Fields read by the adapter or by bolt's context builders, by where they sit; None is always
# allowed (Slack sends null for absent ids). A list's entries are checked under "<name>[]".
_FIELDS: dict[str, dict[str, tuple[type, ...]]] = {
    "": {"type": _TEXT, "team_id": _TEXT, "event_id": _TEXT, "api_app_id": _TEXT, "enterprise_id": _TEXT,
         "trigger_id": _TEXT, "response_url": _TEXT, "challenge": _TEXT, "token": _TEXT,
         "team": (dict, str), "user": (dict, str), "enterprise": (dict, str), "channel": _OBJECT,
         "container": _OBJECT, "message": _OBJECT, "event": _OBJECT, "view": _OBJECT, "authorizations": _LIST,
         "actions": _LIST, "is_enterprise_install": _FLAG, "function_data": _OBJECT, "bot_access_token": _TEXT,
         "user_id": _TEXT, "channel_id": _TEXT},
    "event": {"type": _TEXT, "user": (str, dict), "text": _TEXT, "channel": (str, dict), "ts": _TEXT,
              "thread_ts": _TEXT, "channel_type": _TEXT, "bot_id": _TEXT, "subtype": _TEXT, "team": _TEXT,
              "event_ts": _TEXT, "message": _OBJECT, "item": _OBJECT, "bot_profile": _OBJECT},
    "event.message": {"user": _TEXT, "bot_id": _TEXT, "ts": _TEXT},
    "user": {"id": _TEXT, "username": _TEXT, "name": _TEXT, "team_id": _TEXT},
    "team": {"id": _TEXT, "domain": _TEXT},
    "enterprise": {"id": _TEXT},
    "channel": {"id": _TEXT, "name": _TEXT},
    "container": {"channel_id": _TEXT, "message_ts": _TEXT, "thread_ts": _TEXT, "is_ephemeral": _FLAG},
    "message": {"ts": _TEXT, "thread_ts": _TEXT, "user": _TEXT, "bot_id": _TEXT},
    "view": {"app_installed_team_id": _TEXT, "team_id": _TEXT, "id": _TEXT, "callback_id": _TEXT},
    "authorizations[]": {"team_id": _TEXT, "user_id": _TEXT, "enterprise_id": _TEXT, "is_enterprise_install": _FLAG},
    "actions[]": {"action_id": _TEXT, "value": _TEXT, "selected_option": _OBJECT, "block_id": _TEXT, "type": _TEXT},
    "actions[].selected_option": {"value": _TEXT},
}


class Rejected(Exception):
    """A request the guard refuses: ``status`` (401 or 400) and why."""

    def __init__(self, status: int, why: str) -> None:
        super().__init__(why)
        self.status = status


class SlackGuard:
    """Checks one request's signature and shape; ``accept`` returns the payload bolt dispatches."""

    def __init__(self, signing_secret: str) -> None:
        self._verifier = SignatureVerifier(signing_secret) if signing_secret else None

    def accept(self, headers: Mapping[str, str], content_type: str, body: bytes,
               query: str = "") -> AsyncBoltRequest:
        """Bolt's request for a verified, whole body; ``Rejected`` otherwise."""
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            raise Rejected(400, "body is not UTF-8") from None
        if not self._signed(headers, text):
            raise Rejected(401, "invalid signature")
        parsed = parse(content_type, text)
        if isinstance(parsed, str):
            raise Rejected(400, parsed)
        try:
            return AsyncBoltRequest(body=parsed, query=query, headers=dict(headers), mode="socket_mode")
        except (TypeError, AttributeError, KeyError, IndexError, ValueError) as exc:
            # bolt's context builders read more than _FIELDS knows; a shape they choke on is bad input
            raise Rejected(400, f"payload bolt cannot read ({type(exc).__name__})") from None

    def _signed(self, headers: Mapping[str, str], text: str) -> bool:
        timestamp, signature = headers.get("X-Slack-Request-Timestamp", ""), headers.get("X-Slack-Signature", "")
        if self._verifier is None or not timestamp.isdigit() or not signature:
            return False  # the verifier would raise on a timestamp that is not a number
        return self._verifier.is_valid(text, timestamp, signature)


def parse(content_type: str, text: str) -> dict[str, Any] | str:
    """The payload Slack sent, or why it is malformed (then the answer is 400)."""
    if content_type == "application/json":
        return _json_object(text, "body") if text else "empty body"
    if content_type != _FORM:
        return f"unexpected content type {content_type or 'none'}"
    form = dict(parse_qsl(text, keep_blank_values=True))
    if "payload" in form:
        return _json_object(form["payload"], "payload")
    if "command" in form:
        missing = [f for f in _COMMAND_FIELDS if not form.get(f)]
        return f"slash command without {', '.join(missing)}" if missing else form
    return form if "ssl_check" in form else "form without payload or command"


def _json_object(text: str, what: str) -> dict[str, Any] | str:
    try:
        payload = json.loads(text)
    except ValueError:
        return f"{what} is not JSON"
    except RecursionError:
        return f"{what} is nested too deeply"
    if not isinstance(payload, dict) or not isinstance(payload.get("type"), str):
        return f"{what} has no type"
    # the walk is needed only when the text could hold a surrogate or nests deeper than allowed
    # (real messages carry rich-text blocks: dozens of brackets, a few levels deep)
    suspect = _SURROGATE_ESCAPE.search(text) or (text.count("{") + text.count("[") > MAX_DEPTH
                                                 and _nesting(text) > MAX_DEPTH)
    problem = (_unreadable(payload, 0) if suspect else None) or _mistyped(payload, "")
    if problem:
        return f"{what}: {problem}"
    kind = payload["type"]
    if kind == "url_verification" and not isinstance(payload.get("challenge"), str):
        return "url_verification without challenge"
    if kind == "event_callback":
        event = payload.get("event")
        if not isinstance(event, dict) or not isinstance(event.get("type"), str):
            return "event_callback without event"
    if kind == "block_actions":
        actions = payload.get("actions")
        if not isinstance(actions, list) or not actions or not isinstance(payload.get("user"), dict):
            return "block_actions without actions or user"
        if not all(isinstance(a, dict) and isinstance(a.get("action_id"), str) for a in actions):
            return "block_actions with an action without action_id"
    return payload


_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_BRACKET = re.compile(r"[\[\]{}]")


def _nesting(text: str) -> int:
    """How many containers deep a JSON text nests (strings taken out, brackets counted): a few
    microseconds, against tens for walking the parsed payload."""
    depth = deepest = 0
    for bracket in _BRACKET.findall(_JSON_STRING.sub("", text)):
        if bracket in "[{":
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest


def _unreadable(node: Any, depth: int) -> str | None:
    """Why a parsed JSON value cannot travel on (too deep, a lone surrogate), or None."""
    if depth > MAX_DEPTH:
        return f"nested deeper than {MAX_DEPTH} levels"
    if isinstance(node, str):
        return "lone surrogate in a string" if not node.isascii() and _SURROGATE.search(node) else None
    if isinstance(node, dict):
        return next((p for k, v in node.items() for p in (_unreadable(k, depth), _unreadable(v, depth + 1)) if p),
                    None)
    if isinstance(node, list):
        return next((p for v in node if (p := _unreadable(v, depth + 1))), None)
    return None


def _mistyped(node: dict[str, Any], where: str) -> str | None:
    """The first field of ``_FIELDS`` (under ``where``) whose value has an unexpected type."""
    fields = _FIELDS.get(where)
    if not fields:
        return None
    for name in fields.keys() & node.keys():
        kinds, value = fields[name], node[name]
        if value is None:
            continue
        path = f"{where}.{name}" if where else name
        if not isinstance(value, kinds):
            return f"{path} must be {' or '.join(_KIND_NAMES[k] for k in kinds)}"
        if isinstance(value, dict) and (problem := _mistyped(value, path)):
            return problem
        if isinstance(value, list):
            for item in value:
                if f"{path}[]" in _FIELDS and not isinstance(item, dict):
                    return f"{path} must hold objects"
                if isinstance(item, dict) and (problem := _mistyped(item, f"{path}[]")):
                    return problem
    return None


_KIND_NAMES = {str: "a string", bool: "true or false", dict: "an object", list: "a list"}
