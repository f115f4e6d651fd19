"""Teams Activities as Resync ``Event``s: what Teams sent, whether it is whole, what it means.

``parse`` decides between an Activity and a 400 (not an object, no type, no valid ``serviceUrl``,
no channel or conversation, no sender, ``deliveryMode: expectReplies``, which the SDK cannot
serve). ``translate`` turns a message or a card submission into an ``Event``:

* the user is ``teams:<aadObjectId>`` (the e-mail is added later, from Teams' member info only);
* ``channel`` is the conversation id without a channel's ``;messageid=`` suffix, ``thread`` that
  suffix (the reply chain), so a channel message is answered in its chain and a chat in place;
* the bot's ``<at>…</at>`` mention is removed, other people's mentions keep their name;
* ``lang`` comes from the activity's ``locale`` (``pt-*`` or ``en-*``), else the core detects it;
* a card submission (``Action.Submit``'s ``value``, or ``Action.Execute``'s invoke) becomes an
  action whose ``message_ref`` is the card and whose ``event_id`` is
  ``card:<hash of nonce, action, value, user, 10-minute window>``, because Teams redelivers a
  submission with a new activity id and a double click submits twice.
"""

from __future__ import annotations

import hashlib
import html
import re
import time
from dataclasses import replace
from typing import Any
from urllib.parse import urlsplit

from botbuilder.core import InvokeResponse
from botbuilder.schema import Activity, ActivityTypes, DeliveryModes

from adapters.teams_conversations import base_id, thread_of
from bot.events import Event
from bot.texts import say

CARD_WINDOW = 600  # seconds: the same card submission within one window is one delivery
_AT = re.compile(r"<at[^>]*>(.*?)</at>", re.IGNORECASE | re.DOTALL)
_BREAK = re.compile(r"<br\s*/?>|</p>\s*<p[^>]*>", re.IGNORECASE)
_FORMATTING = re.compile(r"</?(?:p|div|span|b|i|u|s|em|strong|code|pre)(?:\s[^>]*)?>", re.IGNORECASE)


def parse(body: Any) -> tuple[Activity | None, str]:
    """The Activity Teams sent, or why it is malformed (the answer is then 400)."""
    if not isinstance(body, dict) or not isinstance(body.get("type"), str) or not body["type"]:
        return None, "not an Activity: 'type' is missing"
    try:
        activity = Activity.deserialize(body)
    except Exception as exc:  # noqa: BLE001 - msrest's deserialization errors vary by field
        return None, f"not an Activity: {type(exc).__name__}"
    url = urlsplit(activity.service_url or "")
    if url.scheme not in ("http", "https") or not url.netloc:
        return None, "the Activity has no valid serviceUrl"
    if not activity.channel_id or not activity.conversation or not activity.conversation.id:
        return None, "the Activity has no channelId or conversation"
    if activity.type in (ActivityTypes.message, ActivityTypes.invoke) and not (
            activity.from_property and activity.from_property.id):
        return None, "the Activity has no sender"
    if activity.delivery_mode == DeliveryModes.expect_replies:
        return None, "deliveryMode expectReplies is not supported"
    return activity, ""


def translate(activity: Activity) -> Event | None:
    """A message, a card submission (Action.Submit, or Action.Execute's invoke) as an Event."""
    sender = activity.from_property
    conversation = activity.conversation
    submitted = _submission(activity)
    if activity.type == ActivityTypes.invoke and submitted is None:
        return None
    if activity.type not in (ActivityTypes.message, ActivityTypes.invoke) or (
            activity.recipient is not None and sender.id == activity.recipient.id):
        return None
    channel = conversation.conversation_type == "channel"
    event = Event(platform="teams", workspace=tenant_of(activity) or "", channel=base_id(conversation.id),
                  user_id=sender.aad_object_id or sender.id, user_name=sender.name or "",
                  kind="dm" if conversation.conversation_type == "personal" else "message",
                  thread=thread_of(conversation.id) if channel else None, event_id=activity.id,
                  lang=lang_of(activity.locale))
    if submitted is not None:
        action_id, value, nonce = submitted
        window = int(time.time() // CARD_WINDOW)
        key = hashlib.sha256(f"{nonce}|{action_id}|{value}|{event.user_id}|{window}".encode()).hexdigest()[:32]
        return replace(event, kind="action", action_id=action_id, action_value=value,
                       message_ref=activity.reply_to_id, event_id=f"card:{key}")
    text = _without_mentions(activity)
    return replace(event, text=text) if text else None


def _submission(activity: Activity) -> tuple[str, str, str] | None:
    value = activity.value if isinstance(activity.value, dict) else None
    if value and activity.type == ActivityTypes.invoke and activity.name == "adaptiveCard/action":
        value = (value.get("action") or {}).get("data")
    if not isinstance(value, dict):
        return None
    action_id, action_value, nonce = value.get("action_id"), value.get("value"), value.get("nonce")
    if not (isinstance(action_id, str) and action_id.startswith("resync_") and isinstance(action_value, str)):
        return None
    return action_id, action_value, str(nonce or "")


def _without_mentions(activity: Activity) -> str:
    """The text without the bot's ``<at>…</at>`` mention; other people's mentions keep their name."""
    bot = activity.recipient.id if activity.recipient else None
    names = set()
    for entity in activity.entities or ():
        data = {**(entity.additional_properties or {}), "type": entity.type}
        mentioned = data.get("mentioned") if isinstance(data.get("mentioned"), dict) else {}
        if (entity.type or "").lower() == "mention" and mentioned.get("id") == bot:
            names.add(_AT.sub(r"\1", str(data.get("text") or "")).strip() or mentioned.get("name"))
    text = _AT.sub(lambda m: "" if m[1].strip() in names else m[1], activity.text or "")
    text = _FORMATTING.sub("", _BREAK.sub("\n", text))  # rich messages arrive as HTML
    return re.sub(r"[ \t]{2,}", " ", html.unescape(text).replace("\xa0", " ")).strip()


def tenant_of(activity: Activity) -> str | None:
    data = activity.channel_data if isinstance(activity.channel_data, dict) else {}
    return (data.get("tenant") or {}).get("id") or (activity.conversation.tenant_id if activity.conversation else None)


def lang_of(locale: str | None) -> str | None:
    prefix = (locale or "").lower()[:2]
    return prefix if prefix in ("en", "pt") else None


def invoke_answer(activity: Activity) -> Activity:
    """Teams needs an answer to every invoke; an Action.Execute gets a short message card-side."""
    body: dict[str, Any] = {}
    if activity.name == "adaptiveCard/action":
        body = {"statusCode": 200, "type": "application/vnd.microsoft.activity.message",
                "value": say(lang_of(activity.locale) or "en", "working")}
    return Activity(type=ActivityTypes.invoke_response, value=InvokeResponse(status=200, body=body))
