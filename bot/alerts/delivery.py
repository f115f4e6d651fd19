"""Getting alert messages to the chat platforms exactly once, through the store's durable outbox.

Every message is queued with ``Store.outbox_add`` under a deterministic id *before* anything is
sent, so a poll repeated after a restart re-adds the same ids, which the store ignores. Four kinds
of item:

    root     the first message of a failure thread; rendered from the store when it is sent, so a
             root delayed by an outage shows the failure as it is by then
    update   re-render a root in place (``Notifier.update``); dropped when the root is not out yet
             (the root will show the latest state anyway) and coalesced within one delivery run
    reply    a message in a failure thread; waits until the thread's root has been delivered
    notice   a standalone message (TWS unreachable / reachable again)

After a root is delivered its reference (``alertref:<thread>:<target>``) is stored, which is what
replies and updates need and what keeps a re-delivered root from being posted twice. A failed
send is retried with exponential backoff (or the platform's ``retry_after``); while a target is
failing, its other items wait behind it so a thread keeps its order. A ``permanent`` error drops
the item (and, for a root, its whole thread on that target). An item whose target no notifier
handles (its adapter is not configured in this process) is never dropped: it stays queued and is
retried with backoff (at most every ``UNHANDLED_RETRY_MAX`` seconds), so a restart with the right
adapter delivers it; that is logged once per target per process. An update whose rendered root is
the same as the one last posted or updated (its digest is kept with the root's reference) is not
sent. The one window left open: a crash between the platform accepting a message and
``outbox_done`` re-sends that one message.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import itertools
import json
import random
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Literal, Protocol, runtime_checkable

import structlog

from bot.alerts.compose import JSON, reply_from_json, reply_to_json
from bot.errors import DeliveryError
from bot.events import Notifier, Posted, Reply
from bot.store import OutboxItem, Store

if TYPE_CHECKING:
    from bot.metrics import Metrics as AlertMetrics

log = structlog.get_logger(__name__)

Op = Literal["root", "update", "reply", "notice", "signal", "picture"]
Outcome = Literal["sent", "dropped", "duplicate", "wait", "unhandled"]
RenderRoot = Callable[[str], Awaitable[Reply | None]]

REF_TTL = 3 * 86400.0
ROOT_WAIT = 2.0  # how soon a reply looks again for its thread's root
BACKOFF_BASE = 2.0
BACKOFF_MAX = 300.0
SCAN = 2000  # due items looked at per round
UNHANDLED_RETRY_MAX = 60.0  # an unhandled target costs no platform call: look again at least this often


@runtime_checkable
class Pager(Protocol):
    """A notifier that opens incidents instead of chat threads (PagerDuty).

    The root of a failure *triggers* an incident keyed by the failure's thread id; later steps are
    only ``signal``s (``acknowledge``, ``resolve``); thread replies and root updates are dropped.
    """

    def handles(self, target: str) -> bool: ...

    async def trigger(self, target: str, key: str, reply: Reply) -> Posted: ...

    async def signal(self, target: str, key: str, action: str) -> None: ...


def _kind(target: str) -> str:
    """A metric label: the platform of a target (``slack``), never the channel id."""
    return target.split(":", 1)[0]


def ref_key(thread: str, target: str) -> str:
    return f"alertref:{thread}:{target}"


def backoff(failures: int) -> float:
    """Exponential, capped, with jitter so replicas and targets do not retry in step."""
    delay = min(BACKOFF_MAX, BACKOFF_BASE * 2 ** min(max(failures - 1, 0), 10))
    return delay * random.uniform(0.8, 1.2)


def digest(reply: Reply) -> str:
    """What a rendered root looks like, in a few bytes: equal digests need no ``chat.update``."""
    text = json.dumps(reply_to_json(reply), sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:32]


class Outbox:
    """Queues alert messages durably and sends the due ones through the notifiers."""

    def __init__(self, store: Store, notifiers: Sequence[Notifier], *, render_root: RenderRoot,
                 clock: Callable[[], float], metrics: AlertMetrics | None = None) -> None:
        self._store = store
        self._metrics = metrics
        self.stopping = False  # set at shutdown: finish the send under way, start no other
        self.more = False  # the last round left due items behind (see ``deliver_due``)
        self._notifiers = tuple(notifiers)
        self.notifiers = self._notifiers  # for messages outside the outbox (the daily digest)
        self._render_root = render_root
        self._clock = clock
        self._seq = itertools.count()
        self._paused: dict[str, float] = {}  # target -> until when it is left alone
        self._failures: dict[str, int] = {}  # target -> consecutive failed sends
        self._unhandled: set[str] = set()  # targets already reported as unhandled by this process

    async def add(self, item_id: str, *, op: Op, target: str, thread: str | None = None,
                  reply: Reply | None = None, signal: str | None = None, picture: JSON | None = None) -> bool:
        """Queue one message; False when this id was queued before (a repeated poll). ``picture``
        (op "picture"): ``{"png": <base64>, "filename", "title"}``, shared where the notifier can."""
        now = self._clock()
        payload: JSON = {"op": op, "target": target, "thread": thread, "seq": [now, next(self._seq)],
                         "reply": reply_to_json(reply) if reply else None, "signal": signal}
        if picture is not None:
            payload["picture"] = picture
        added = await self._store.outbox_add(item_id, payload, now)
        if self._metrics is not None:
            if not added:
                self._metrics.deduplicated.inc()
            elif op == "root":
                self._metrics.alerts_raised.labels(_kind(target)).inc()
        return added

    async def deliver_due(self, *, per_target: int | None = None) -> int:
        """Send what is due, oldest first; return how many messages reached a platform.

        Each target is served by its own task (a channel paced at one message a second holds no
        other channel up), in order within the target. ``per_target`` bounds one round, so that a
        long backlog in one channel never keeps a fresh root of another waiting for the round to
        end; ``more`` says whether something due was left for the next round.
        """
        now = self._clock()
        due = await self._store.outbox_due(now, limit=SCAN)
        self._observe_depth(due, now)
        # Notices first (a "TWS reachable again" precedes the failures it announces), then roots:
        # a reply queued before its root (a replayed poll) must not wait a round.
        rank = {"notice": 0, "root": 1, "signal": 3}
        items = sorted(due, key=lambda i: (rank.get(i.payload["op"], 2), tuple(i.payload["seq"])))
        by_target: dict[str, list[OutboxItem]] = {}
        for item in items:
            by_target.setdefault(item.payload["target"], []).append(item)
        self.more = len(due) >= SCAN
        updated = set[tuple[str, str]]()
        sent = await asyncio.gather(*(self._deliver_target(batch, updated, per_target) for batch in by_target.values()))
        return sum(sent)

    async def _deliver_target(self, items: list[OutboxItem], updated: set[tuple[str, str]],
                              per_target: int | None = None) -> int:
        delivered = 0
        for item in items:
            if self.stopping:
                break  # shutting down: the rest stays queued for the next start
            if per_target is not None and delivered >= per_target:
                self.more = True  # this round's share of the channel's pace is used: the rest next round
                break
            target = item.payload["target"]
            if self._paused.get(target, 0.0) > self._clock():
                await self._store.outbox_retry(item.id, self._paused[target], "waiting behind a failed send")
                continue
            try:
                outcome = await self._send(item, updated)
            except DeliveryError as exc:
                await self._failed(item, exc)
                continue
            self._failures.pop(target, None)
            now = self._clock()
            if outcome == "wait":
                await self._store.outbox_retry(item.id, now + ROOT_WAIT, "waiting for the thread root")
                continue
            if outcome == "unhandled":
                delay = min(UNHANDLED_RETRY_MAX, backoff(item.attempts + 1))
                await self._store.outbox_retry(item.id, now + delay, f"no notifier handles {target}")
                continue
            await self._store.outbox_done(item.id)
            if outcome == "sent":
                delivered += 1
                if self._metrics is not None:
                    self._metrics.alerts_sent.labels(_kind(target)).inc()
            elif outcome == "duplicate" and self._metrics is not None:
                self._metrics.deduplicated.inc()
        return delivered

    def _observe_depth(self, due: list[OutboxItem], now: float) -> None:
        if self._metrics is None:
            return
        self._metrics.outbox_due.set(len(due))
        oldest = min((item.payload["seq"][0] for item in due), default=now)
        self._metrics.outbox_oldest.set(max(0.0, now - oldest))

    async def _send(self, item: OutboxItem, updated: set[tuple[str, str]]) -> Outcome:
        op, target, thread = item.payload["op"], item.payload["target"], item.payload["thread"]
        notifier = next((n for n in self._notifiers if n.handles(target)), None)
        if notifier is None:
            if target not in self._unhandled:
                self._unhandled.add(target)
                log.error("alert_target_unhandled", target=target, item=item.id,
                          hint="kept in the outbox; configure the adapter for this target and restart")
            return "unhandled"
        if op == "notice":
            await notifier.post(target, reply_from_json(item.payload["reply"]))
            log.info("alert_notice_sent", target=target, item=item.id)
            return "sent"
        if op == "picture":  # the digest's chart: after its text (queued first, same target)
            upload = getattr(notifier, "upload", None)
            if upload is None:
                return "dropped"
            picture = item.payload["picture"]
            await upload(target, base64.b64decode(picture["png"]), filename=picture["filename"],
                         title=picture["title"], comment=None)
            log.info("alert_picture_sent", target=target, item=item.id)
            return "sent"
        ref = await self._store.get(ref_key(thread, target))
        if op == "root":
            return await self._post_root(notifier, item, ref, updated)
        if ref is None:
            return "wait" if op in {"reply", "signal"} else "dropped"
        if ref.get("dead"):
            return "dropped"
        if op == "signal":
            if not isinstance(notifier, Pager):
                return "dropped"
            await notifier.signal(target, thread, item.payload["signal"])
            log.info("alert_signal_sent", target=target, thread=thread, signal=item.payload["signal"], item=item.id)
            return "sent"
        if isinstance(notifier, Pager):
            return "dropped"  # an incident takes no thread replies or re-renders, only signals
        if op == "update":
            return await self._update_root(notifier, target, thread, ref, updated)
        await notifier.post(target, reply_from_json(item.payload["reply"]), thread=ref["thread"])
        log.info("alert_reply_sent", target=target, thread=thread, item=item.id)
        return "sent"

    async def _post_root(self, notifier: Notifier, item: OutboxItem, ref: JSON | None,
                         updated: set[tuple[str, str]]) -> Outcome:
        target, thread = item.payload["target"], item.payload["thread"]
        if ref is not None:
            return "duplicate"  # posted before a restart cut this item short
        reply = await self._render_root(thread) or reply_from_json(item.payload["reply"])
        posted = await (notifier.trigger(target, thread, reply) if isinstance(notifier, Pager)
                        else notifier.post(target, reply))
        await self._store.put(ref_key(thread, target), {"ref": posted.message_ref, "digest": digest(reply),
                                                        "thread": posted.thread or posted.message_ref}, REF_TTL)
        updated.add((thread, target))
        log.info("alert_sent", target=target, thread=thread, message_ref=posted.message_ref, item=item.id)
        return "sent"

    async def _update_root(self, notifier: Notifier, target: str, thread: str, ref: JSON,
                           updated: set[tuple[str, str]]) -> Outcome:
        if (thread, target) in updated:
            return "dropped"
        reply = await self._render_root(thread)
        if reply is None:
            return "dropped"
        shown = digest(reply)
        if shown == ref.get("digest"):
            updated.add((thread, target))
            log.debug("alert_root_unchanged", target=target, thread=thread)
            return "dropped"
        await notifier.update(target, ref["ref"], reply)
        updated.add((thread, target))
        await self._store.put(ref_key(thread, target), {**ref, "digest": shown}, REF_TTL)
        log.info("alert_root_updated", target=target, thread=thread)
        return "sent"

    async def _failed(self, item: OutboxItem, exc: DeliveryError) -> None:
        target, op, now = item.payload["target"], item.payload["op"], self._clock()  # after the adapter's retries
        if self._metrics is not None:
            self._metrics.alerts_failed.labels(_kind(target)).inc()
        if exc.permanent:
            log.error("alert_delivery_dropped", target=target, op=op, item=item.id, error=str(exc))
            if op == "root":
                await self._store.put(ref_key(item.payload["thread"], target), {"dead": True}, REF_TTL)
            await self._store.outbox_done(item.id)
            return
        failures = self._failures[target] = self._failures.get(target, 0) + 1
        delay = exc.retry_after if exc.retry_after is not None else backoff(max(failures, item.attempts + 1))
        self._paused[target] = now + delay
        await self._store.outbox_retry(item.id, now + delay, str(exc)[:200])
        log.warning("alert_delivery_failed", target=target, op=op, item=item.id, retry_in=round(delay, 1),
                    attempts=item.attempts + 1, error=str(exc)[:200])
