"""The Teams conversations Resync may post into, kept durably in the state store.

A bot can post proactively (alerts, slow answers) only into a conversation it has seen, and only
with that conversation's whole reference: its ``serviceUrl`` (the regional Bot Connector), tenant,
type and the bot's own account. The adapter saves it on installation (``conversationUpdate``,
``installationUpdate``) and on every message, under ``convref:teams:<conversation id>`` (a channel's
id without its ``;messageid=`` thread suffix), with no expiry: a restart, or another replica, can
post there at once. ``resync teams conversations`` lists them so operators can route alerts to
``teams:<conversation id>``.

A conversation the bot was removed from (the connector answers 403 or 404) is marked ``gone``
with the reason, so it is reported once and then refused without a call; it comes back when the
bot is installed there again. No botbuilder import here: the CLI reads this without the SDK.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass, replace
from typing import Any

from bot.store import JSON, Store

PREFIX = "convref:teams:"
TOUCH_EVERY = 300.0  # seconds: a busy conversation is rewritten at most this often
# Conversations kept in memory: the store holds them all, this is a cache. Every channel thread is
# a conversation of its own (";messageid=..."), so an unbounded one grew ~3 KB per thread, forever.
MEMORY = 5_000


def base_id(conversation_id: str) -> str:
    """A channel conversation without its reply-chain suffix (``;messageid=...``)."""
    return conversation_id.split(";", 1)[0]


def thread_of(conversation_id: str) -> str | None:
    """The root message id of the reply chain a channel activity belongs to, if any."""
    _, _, root = conversation_id.partition(";messageid=")
    return root or None


@dataclass(frozen=True, slots=True, kw_only=True)
class Conversation:
    """One stored conversation, as ``resync teams conversations`` shows it."""

    id: str
    type: str  # personal, groupChat, channel
    tenant: str | None
    service_url: str
    reference: JSON  # the SDK's ConversationReference, serialized
    team: str | None = None
    channel: str | None = None
    last_seen: float = 0.0
    gone: str | None = None  # why posting there stopped (403/404), if it did

    def as_json(self) -> JSON:
        return {"id": self.id, "target": f"teams:{self.id}", "type": self.type, "team": self.team,
                "channel": self.channel, "tenant": self.tenant, "service_url": self.service_url,
                "last_seen": _iso(self.last_seen), "gone": self.gone}

    @classmethod
    def from_json(cls, record: JSON) -> Conversation:
        return cls(id=record["id"], type=record.get("type") or "unknown", tenant=record.get("tenant"),
                   service_url=record["service_url"], reference=record.get("reference") or {},
                   team=record.get("team"), channel=record.get("channel"),
                   last_seen=float(record.get("last_seen") or 0.0), gone=record.get("gone"))

    def to_record(self) -> JSON:
        return {"id": self.id, "type": self.type, "tenant": self.tenant, "service_url": self.service_url,
                "reference": self.reference, "team": self.team, "channel": self.channel,
                "last_seen": self.last_seen, "gone": self.gone}


class Conversations:
    """Reads and writes the stored conversations, with a small write-behind memory."""

    def __init__(self, store: Store, *, clock: Any = time.time, memory: int = MEMORY) -> None:
        self._store = store
        self._clock = clock
        self._memory = memory
        self._known: OrderedDict[str, Conversation] = OrderedDict()  # least recently used first
        self._read: dict[str, float] = {}  # when each known conversation was last read or written

    def _keep(self, conversation: Conversation, *, read: float | None = None) -> None:
        self._known[conversation.id] = conversation
        self._known.move_to_end(conversation.id)
        if read is not None:
            self._read[conversation.id] = read
        while len(self._known) > self._memory:
            oldest, _ = self._known.popitem(last=False)
            self._read.pop(oldest, None)

    async def seen(self, conversation: Conversation) -> None:
        """Remember a conversation just heard from; names already known are kept."""
        before = self._known.get(conversation.id) or await self.get(conversation.id)
        now = self._clock()
        merged = Conversation(
            id=conversation.id, type=conversation.type, tenant=conversation.tenant or (before.tenant if before else None),
            service_url=conversation.service_url, reference=conversation.reference,
            team=conversation.team or (before.team if before else None),
            channel=conversation.channel or (before.channel if before else None), last_seen=now, gone=None)
        if before is not None and before.gone is None and now - before.last_seen < TOUCH_EVERY and \
                (before.service_url, before.team, before.channel) == (merged.service_url, merged.team, merged.channel):
            self._keep(before)
            return
        await self._store.put(PREFIX + conversation.id, merged.to_record())
        self._keep(merged, read=now)

    async def get(self, conversation_id: str) -> Conversation | None:
        """The stored conversation; what this process read less than ``TOUCH_EVERY`` ago is reused
        (another replica may have stored a newer reference since)."""
        known = self._known.get(conversation_id)
        if known is not None and self._read.get(conversation_id, 0.0) > self._clock() - TOUCH_EVERY:
            self._known.move_to_end(conversation_id)
            return known
        record = await self._store.get(PREFIX + conversation_id)
        if record is None:
            return None
        found = Conversation.from_json(record)
        self._keep(found, read=self._clock())
        return found

    async def gone(self, conversation_id: str, reason: str) -> bool:
        """Mark a conversation the bot can no longer post in; True the first time (report it then)."""
        current = await self.get(conversation_id)
        if current is None or current.gone:
            return False
        marked = replace(current, gone=reason)
        await self._store.put(PREFIX + conversation_id, marked.to_record())
        self._keep(marked, read=self._clock())
        return True


async def list_conversations(store: Store) -> list[Conversation]:
    """Every stored conversation, most recently seen first."""
    records = [Conversation.from_json(value) for _, value in await store.scan(PREFIX)]
    return sorted(records, key=lambda c: c.last_seen, reverse=True)


def format_conversation(conversation: Conversation) -> str:
    where = " / ".join(p for p in (conversation.team, conversation.channel) if p) or "-"
    gone = f"  GONE: {conversation.gone}" if conversation.gone else ""
    return (f"teams:{conversation.id}  {conversation.type:<9} {where}  tenant {conversation.tenant or 'unknown'}"
            f"  last seen {_iso(conversation.last_seen) or 'unknown'}{gone}")


def _iso(epoch: float) -> str | None:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch)) if epoch else None
