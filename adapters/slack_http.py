"""The guard in front of bolt for ``POST /slack/events``: signed first, then whole, parsed once.

1. Not UTF-8: 400 (no Slack request is; the signature is computed over text).
2. The signature, by slack-sdk's ``SignatureVerifier`` over the raw body, at most 5 minutes old:
   bad, stale or missing, 401.
3. The payload's shape (not JSON, missing fields, an unexpected content type): 400, so nothing
   reaches bolt or the core unless Slack sent it and it is whole.

The parsed payload is handed to bolt as it is, so the body is parsed once. Bolt takes an
already-parsed body only in its ``socket_mode`` request form; that mode changes nothing else in
a dispatch but bolt's own signature check, which our guard replaces. It also spares bolt's body
parser, which reads any form body containing the word "payload" as an interactivity payload,
so that ``/tws log payload_load`` reaches the listener whole.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl

from slack_bolt.request.async_request import AsyncBoltRequest
from slack_sdk.signature import SignatureVerifier

_FORM = "application/x-www-form-urlencoded"
_COMMAND_FIELDS = ("command", "team_id", "channel_id", "user_id")


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
        return AsyncBoltRequest(body=parsed, query=query, headers=dict(headers), mode="socket_mode")

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
    if not isinstance(payload, dict) or not isinstance(payload.get("type"), str):
        return f"{what} has no type"
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
    return payload
