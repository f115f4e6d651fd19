"""Secrets never reach a log line, whatever way they travel."""

from __future__ import annotations

import json

import structlog

from bot.config import LogSettings
from bot.logs import REDACTED, Scrubber, bind_correlation, configure_logging


def _json_lines(capsys) -> list[dict]:  # type: ignore[no-untyped-def]
    return [json.loads(line) for line in capsys.readouterr().err.splitlines() if line.startswith("{")]


def test_scrubber_removes_keys_values_and_headers() -> None:
    scrub = Scrubber(["hunter2-password"])
    event = scrub(None, "info", {
        "event": "login failed for hunter2-password",
        "password": "anything",
        "headers": {"Authorization": "Basic cmVzeW5jOnJlc3luYw==", "Accept": "application/json"},
        "detail": "sent Bearer abcdefghijklmnop to TWS",
        "token_list": ["a"],
        "note": "slack said xoxb-1234567890-abcdef",
        "error": ValueError("bad hunter2-password"),
    })
    flat = json.dumps(event, default=str)
    for leak in ("hunter2-password", "cmVzeW5jOnJlc3luYw==", "abcdefghijklmnop", "xoxb-1234567890"):
        assert leak not in flat
    assert event["password"] == REDACTED and event["headers"]["Accept"] == "application/json"


def test_configured_pipeline_scrubs_and_binds_correlation(capsys) -> None:  # type: ignore[no-untyped-def]
    configure_logging(LogSettings(level="DEBUG", format="json"), ["sup3r-secret-value"])
    try:
        cid = bind_correlation(path="/x")
        log = structlog.get_logger("t")
        log.info("connecting", url="https://tws:31116", password="sup3r-secret-value")
        try:
            raise RuntimeError("auth sup3r-secret-value refused")
        except RuntimeError:
            log.exception("boom")
        lines = _json_lines(capsys)
        assert all("sup3r-secret-value" not in json.dumps(line) for line in lines)
        assert lines[0]["correlation_id"] == cid and lines[0]["event"] == "connecting"
        assert "RuntimeError" in lines[1]["exception"]
    finally:
        structlog.reset_defaults()
        structlog.contextvars.clear_contextvars()
