"""PagerDuty hand-off: route targets ``pagerduty:<name>`` open incidents through the Events API v2.

The failure's thread id is the ``dedup_key``: its root *triggers* the incident, an acknowledgement
in chat *acknowledges* it, recovery (or cancellation, or the job leaving the plan) *resolves* it.
The routing key of ``pagerduty:<name>`` comes from ``PAGERDUTY_ROUTING_KEY_<NAME>``; the
endpoint (``PAGERDUTY_EVENTS_URL``) is overridable, which is how tests use a loopback fake.

PagerDuty's documented semantics, which the outbox follows: 202 means accepted; 400 means the
event is invalid and is dropped (retrying cannot help); 429 (about 120 events a minute per
routing key) and 5xx or network errors are retried with backoff. Events with one ``dedup_key``
update the open incident; after it is resolved, acknowledge/resolve events for it are dropped by
PagerDuty and a new trigger opens a new incident, which is why every step is queued once.
"""

from __future__ import annotations

from contextlib import AsyncExitStack

import aiohttp
import structlog

from bot.config import AlertSettings
from bot.errors import DeliveryError
from bot.events import Posted, Reply

log = structlog.get_logger(__name__)

PREFIX = "pagerduty:"
TIMEOUT = 10.0
_SEVERITY = {"error": "error", "warning": "warning", "success": "info", "info": "info"}


class PagerDutyNotifier:
    """A ``Pager`` (bot.alerts.delivery) for every configured ``pagerduty:<name>``."""

    def __init__(self, *, url: str, routing_keys: dict[str, str], session: aiohttp.ClientSession | None = None) -> None:
        self._url = url
        self._keys = routing_keys
        self._session = session

    def handles(self, target: str) -> bool:
        return target.startswith(PREFIX) and target.removeprefix(PREFIX) in self._keys

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def trigger(self, target: str, key: str, reply: Reply) -> Posted:
        summary = (reply.title or reply.text or key).strip()[:1024]
        details = {field.label: field.value for field in reply.fields}
        if reply.text and reply.text != summary:
            details["summary"] = reply.text[:4000]
        if reply.code:
            details["error_lines"] = reply.code[:4000]
        await self._send(target, {"event_action": "trigger", "dedup_key": key[:255], "payload": {
            "summary": summary, "source": "resync", "severity": _SEVERITY.get(reply.level, "error"),
            "component": details.get("Job") or None, "class": "tws-job-failure", "custom_details": details}})
        return Posted(target=target, message_ref=key[:255], thread=key[:255])

    async def signal(self, target: str, key: str, action: str) -> None:
        if action not in {"acknowledge", "resolve"}:
            raise DeliveryError(f"PagerDuty has no event action {action!r}", permanent=True)
        await self._send(target, {"event_action": action, "dedup_key": key[:255]})

    # Notifier's chat methods: an incident has no thread to post in or message to re-render.
    async def post(self, target: str, reply: Reply, *, thread: str | None = None) -> Posted:
        return Posted(target=target, message_ref=thread or "", thread=thread)

    async def update(self, target: str, message_ref: str, reply: Reply) -> None:
        return None

    async def _send(self, target: str, event: dict[str, object]) -> None:
        name = target.removeprefix(PREFIX)
        body = {"routing_key": self._keys[name], "client": "Resync", **event}
        if isinstance(body.get("payload"), dict):
            body["payload"] = {k: v for k, v in body["payload"].items() if v is not None}  # type: ignore[union-attr]
        try:
            async with self._client().post(self._url, json=body) as response:
                text = (await response.text())[:300]
                status = response.status
                retry_after = response.headers.get("Retry-After")
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise DeliveryError(f"PagerDuty unreachable: {type(exc).__name__}") from exc
        if status == 202 or 200 <= status < 300:
            log.info("pagerduty_event_sent", target=target, action=event["event_action"], status=status)
            return
        if status == 429 or status >= 500:
            delay = float(retry_after) if retry_after and retry_after.replace(".", "", 1).isdigit() else None
            raise DeliveryError(f"PagerDuty answered {status}", retry_after=delay)
        # 400 (invalid event), 401/403/404 (wrong key or URL): retrying the same event cannot help.
        raise DeliveryError(f"PagerDuty refused the event ({status}): {text}", permanent=True)

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=TIMEOUT))
        return self._session


def pagers(settings: AlertSettings, stack: AsyncExitStack) -> list[PagerDutyNotifier]:
    """The PagerDuty notifier when any route names ``pagerduty:<name>``; closed with the app."""
    if not settings.pagerduty_keys:
        return []
    notifier = PagerDutyNotifier(url=settings.pagerduty_url, routing_keys=dict(settings.pagerduty_keys))
    stack.push_async_callback(notifier.close)
    return [notifier]
