"""The exception tree of Resync, in one place.

Third-party errors (aiohttp, redis, sqlite, litellm, slack-sdk) are translated into these once,
at the edge of the component that talks to them, with ``raise ... from exc``. Entry points (an
HTTP route, a scheduled job, the console loop) catch ``ResyncError`` and answer politely.

    ResyncError
    ├── ConfigError             a setting is missing or invalid (start-up stops)
    ├── StoreError              the state store (SQLite or Redis) is unreachable or failed
    ├── DeliveryError           a chat platform did not take a message (the outbox retries)
    ├── LlmError                the language model failed, timed out or answered nonsense
    └── TwsError                anything the TWS engine or the way to it said no to
        ├── TwsUnavailable      connection refused, timeout, 429, 5xx, or the circuit breaker is open
        ├── TwsAuthError        401: the credentials were refused
        ├── TwsForbidden        403: the TWS user may not do this
        ├── JobNotFound         no plan instance matches (AWSBIO006E or an empty query)
        ├── AmbiguousJob        several plan instances match; carries the candidates
        ├── InvalidState        the action is not allowed in the job's state (AWSBIN076E)
        ├── LogNotReady         TWS has not retrieved the job log yet (EQQM637I): ask again later
        ├── OutcomeUnknown      a state-changing request was sent but its result never came back
        └── BadResponse         TWS answered something we cannot read
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


class ResyncError(Exception):
    """Base of every error Resync raises on purpose."""


class ConfigError(ResyncError):
    """A setting is missing or invalid; the message names the setting."""


class StoreError(ResyncError):
    """The state store could not be reached or refused the operation."""


class TwsError(ResyncError):
    """TWS (or the way to it) refused or failed a request."""


class TwsUnavailable(TwsError):
    """TWS cannot serve the request right now (network, timeout, 429, 5xx, breaker open).

    ``answer`` is what came back when something did answer: TWS's own message (a 5xx with a TWS
    error body), or the status line of a 429 or a bare 5xx (TWS, or a proxy in front of it). It is
    reachable then, so user-facing text quotes the answer instead of saying "not reachable"; None
    means nothing answered at all (refused, timed out, dropped).

    ``held_for`` is set only when the circuit breaker refused the call without asking TWS: about
    how many seconds it keeps doing so. ``answer`` is then what TWS said to the failures that
    opened it, so a fail-fast error tells the same truth as the failures behind it.
    """

    def __init__(self, message: str, *, answer: str | None = None, held_for: float | None = None) -> None:
        super().__init__(message)
        self.answer = answer
        self.held_for = held_for


class TwsAuthError(TwsError):
    """TWS refused the credentials (HTTP 401)."""


class TwsForbidden(TwsError):
    """The TWS user lacks the right for this request (HTTP 403)."""


class JobNotFound(TwsError):
    """No job (or job stream) in the current plan matches."""


class AmbiguousJob(TwsError):
    """Several plan instances match a name; the caller must choose, never guess."""

    def __init__(self, message: str, candidates: Sequence[Any]) -> None:
        super().__init__(message)
        self.candidates = tuple(candidates)


class InvalidState(TwsError):
    """The action is not allowed in the current state of the job (AWSBIN076E)."""


class LogNotReady(TwsError):
    """TWS answered that the job log is not retrieved yet (EQQM637I): it exists, ask again later."""


class OutcomeUnknown(TwsError):
    """A state-changing request may or may not have been applied: never retried blindly."""


class BadResponse(TwsError):
    """TWS answered with a body or status we cannot interpret."""


class DeliveryError(ResyncError):
    """A chat platform did not take a message; ``retry_after`` is its hint in seconds, if any, and
    ``reason`` the platform's own error code (Slack's ``not_in_channel``, an HTTP status), if known."""

    def __init__(self, message: str, *, retry_after: float | None = None, permanent: bool = False,
                 reason: str | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.permanent = permanent
        self.reason = reason


class LlmError(ResyncError):
    """The LLM call failed or returned something unusable; the core falls back to the rules."""
