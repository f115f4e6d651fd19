"""Structured logging: JSON lines in production, readable in a terminal, secrets scrubbed.

Every log line passes through ``scrub``: values under secret-looking keys are replaced, and any
known secret value (passwords, tokens, API keys from the configuration) is cut out of every
string, wherever it appears. Correlation ids are bound per request or scheduled job through
structlog's contextvars (``bind_correlation``).
"""

from __future__ import annotations

import logging
import random
import re
import sys
from collections.abc import Iterable, MutableMapping
from typing import Any

import structlog

from bot.config import LogSettings

_SECRET_KEYS = re.compile(r"pass(word)?|secret|token|api[_-]?key|authorization|credential|cookie", re.I)
_BEARER = re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{8,}")
_SLACK_TOKEN = re.compile(r"\bx(?:ox[abposr]|app)-[A-Za-z0-9-]{6,}")
REDACTED = "[REDACTED]"


class Scrubber:
    """A structlog processor removing secrets; known secret values are registered at start-up."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets: tuple[str, ...] = ()
        self.add(secrets)

    def add(self, secrets: Iterable[str]) -> None:
        self._secrets = tuple(sorted({*self._secrets, *(s for s in secrets if s)}, key=len, reverse=True))

    def text(self, value: str) -> str:
        for secret in self._secrets:
            if secret in value:
                value = value.replace(secret, REDACTED)
        value = _BEARER.sub(lambda m: f"{m.group(1)} {REDACTED}", value)
        return _SLACK_TOKEN.sub(REDACTED, value)

    def value(self, key: str, value: Any) -> Any:
        if _SECRET_KEYS.search(key) and value not in (None, "", False):
            return REDACTED
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {k: self.value(str(k), v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return type(value)(self.value(key, v) for v in value)
        if isinstance(value, BaseException):
            return self.text(f"{type(value).__name__}: {value}")
        return value

    def __call__(self, _logger: Any, _method: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
        for key in list(event):
            if key == "exception" and isinstance(event[key], str):
                event[key] = self.text(event[key])
            else:
                event[key] = self.value(key, event[key])
        return event


def configure_logging(settings: LogSettings, secrets: Iterable[str] = (), *, final: bool = True) -> Scrubber:
    """Set up structlog (and stdlib logging of libraries) once, at start-up.

    ``final`` caches each logger on first use, so that a filtered ``log.debug`` costs one method
    call instead of assembling a logger every time; only a provisional configuration, replaced
    once a command has read its settings, passes False (a cached logger would keep it).
    """
    scrubber = Scrubber(secrets)
    level = getattr(logging, settings.level)
    renderer: Any = (structlog.processors.JSONRenderer() if settings.format == "json"
                     else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty()))
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
        scrubber,
    ]
    structlog.configure(
        processors=[*shared, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=final,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(structlog.stdlib.ProcessorFormatter(
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        foreign_pre_chain=[structlog.stdlib.add_logger_name, *shared],
    ))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(max(level, logging.INFO))
    for noisy in ("LiteLLM", "litellm", "httpx", "aiohttp.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # "skipped: maximum number of running instances reached" is by design (max_instances=1).
    logging.getLogger("apscheduler").setLevel(logging.ERROR)
    return scrubber


def bind_correlation(**values: Any) -> str:
    """Start a fresh log context for one request or scheduled run; returns its correlation id.

    The id only has to be unique enough to group log lines, not unguessable: 64 random bits from
    ``random`` cost a fraction of ``uuid4``, which reads the kernel's entropy on every call.
    """
    cid = str(values.pop("correlation_id", None) or f"{random.getrandbits(64):016x}")
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(correlation_id=cid, **values)
    return cid
