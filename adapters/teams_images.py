"""A picture (the digest's chart) as a Teams message: an Adaptive Card whose Image is a data URI.

Bots cannot upload a file into a channel without Graph permissions and SharePoint, but Teams shows
an Adaptive Card ``Image`` whose ``url`` is a ``data:image/png;base64,...`` URI (the bot framework's
documented way to send an inline image). The whole message must stay within Teams' ~40 KB, so a
picture too large for that is refused here with a clear, permanent error rather than sent and lost.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from adapters.teams_cards import CARD_TYPE, MAX_BYTES, SCHEMA, VERSION
from bot.errors import DeliveryError


def image_activity(data: bytes, *, title: str, filename: str, mime: str = "image/png") -> dict[str, Any]:
    """The activity body of one card: the title, then the image inline (its alt text names the file)."""
    url = f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"
    card = {"type": "AdaptiveCard", "$schema": SCHEMA, "version": VERSION, "msteams": {"width": "Full"},
            "fallbackText": title or filename,
            "body": [{"type": "TextBlock", "text": title or filename, "weight": "Bolder", "wrap": True},
                     {"type": "Image", "url": url, "altText": filename, "size": "Stretch"}]}
    activity = {"type": "message", "summary": title or filename,
                "attachments": [{"contentType": CARD_TYPE, "content": card}]}
    size = len(json.dumps(activity).encode())
    if size > MAX_BYTES:
        raise DeliveryError(f"{filename}: the picture is too large for a Teams message ({size:,} bytes)",
                            permanent=True, reason="too_large")
    return activity
