"""Prometheus metrics for one process: HTTP requests, TWS latency and errors, breaker state.

A registry per app (no global default registry), so tests and several apps in one process never
collide. The TWS client reports through the ``observe`` callback and never imports Prometheus.
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client import CONTENT_TYPE_LATEST

BREAKER_STATES = ("closed", "half-open", "open")


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.http_requests = Counter("resync_http_requests_total", "HTTP requests served",
                                     ["method", "route", "status"], registry=self.registry)
        self.http_latency = Histogram("resync_http_request_seconds", "HTTP request latency", ["route"], registry=self.registry)
        self.tws_latency = Histogram("resync_tws_request_seconds", "TWS request latency", ["operation", "method"],
                                     registry=self.registry)
        self.tws_errors = Counter("resync_tws_errors_total", "TWS request errors", ["operation", "error"],
                                  registry=self.registry)
        self.breaker = Gauge("resync_tws_breaker_state", "TWS circuit breaker: 1 for the current state",
                             ["state"], registry=self.registry)
        # Alerts (bot/alerts): labels are platforms ("slack", "pagerduty"), never channel ids.
        self.alerts_raised = Counter("resync_alerts_raised_total", "Alert threads queued (one per failure and target)",
                                     ["target"], registry=self.registry)
        self.alerts_sent = Counter("resync_alerts_sent_total", "Alert messages delivered", ["target"],
                                   registry=self.registry)
        self.alerts_failed = Counter("resync_alerts_failed_total", "Alert sends that failed (retried or dropped)",
                                     ["target"], registry=self.registry)
        self.deduplicated = Counter("resync_alerts_deduplicated_total",
                                    "Alert messages not queued or sent again because they already were",
                                    registry=self.registry)
        self.outbox_depth = Gauge("resync_outbox_depth", "Messages waiting in the alert outbox", registry=self.registry)
        self.outbox_due = Gauge("resync_outbox_due", "Outbox messages due now (seen by the last delivery round)",
                                registry=self.registry)
        self.outbox_oldest = Gauge("resync_outbox_oldest_seconds", "Age of the oldest due outbox message",
                                   registry=self.registry)
        self.actions = Counter("resync_actions_total", "Job actions run through the bot", ["action", "outcome"],
                               registry=self.registry)
        self.denials = Counter("resync_denials_total", "Requests refused by the permission policy", ["action"],
                               registry=self.registry)

    def observe_action(self, action: str, outcome: str) -> None:
        """A job action's outcome ("ok", "refused", "error", "unknown") or a denial ("denied")."""
        self.actions.labels(action, outcome).inc()
        if outcome == "denied":
            self.denials.labels(action).inc()

    def observe_tws(self, operation: str, method: str, seconds: float, error: str | None) -> None:
        self.tws_latency.labels(operation, method).observe(seconds)
        if error:
            self.tws_errors.labels(operation, error).inc()

    def watch_breaker(self, state: Callable[[], str]) -> None:
        for name in BREAKER_STATES:
            self.breaker.labels(name).set_function(lambda name=name: 1.0 if state() == name else 0.0)

    def render(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
