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
        self.alerts_sent = Counter("resync_alerts_sent_total", "Alert messages delivered", registry=self.registry)

    def observe_tws(self, operation: str, method: str, seconds: float, error: str | None) -> None:
        self.tws_latency.labels(operation, method).observe(seconds)
        if error:
            self.tws_errors.labels(operation, error).inc()

    def watch_breaker(self, state: Callable[[], str]) -> None:
        for name in BREAKER_STATES:
            self.breaker.labels(name).set_function(lambda name=name: 1.0 if state() == name else 0.0)

    def render(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
