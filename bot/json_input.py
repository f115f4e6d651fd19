"""JSON from the outside, bounded before it is parsed and clean once it is.

Why: ``json.loads`` of a body nested about a thousand levels deep raises ``RecursionError`` (a 500
for the caller, and a retry storm from platforms that retry every non-2xx), and JSON may carry
escapes of lone surrogates (``"\\ud800"``) that parse into a Python string no UTF-8 encoder, log line,
SQLite row or Redis key accepts. Both are refused here, with a message naming the problem, before
anything else sees the value. Every entry point that takes JSON from a client uses ``parse``.
"""

from __future__ import annotations

import json
import re
from typing import Any

from bot.errors import ResyncError

MAX_DEPTH = 32
_STRINGS = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKETS = re.compile(rb"[\[\]{}]")


class BadInput(ResyncError):
    """A client sent something we refuse to read; the message says what, for a 400 answer."""


def parse(raw: bytes, *, max_bytes: int, max_depth: int = MAX_DEPTH) -> Any:
    """The JSON value of ``raw``: at most ``max_bytes``, nested at most ``max_depth``, valid Unicode."""
    if len(raw) > max_bytes:
        raise BadInput(f"the body is larger than {max_bytes} bytes")
    if _depth(raw) > max_depth:
        raise BadInput(f"the JSON is nested deeper than {max_depth} levels")
    try:
        text = raw.decode("utf-8")
        value = json.loads(text, parse_constant=_no_constant)
    except UnicodeDecodeError:
        raise BadInput("the body is not valid UTF-8") from None
    except ValueError as exc:
        raise BadInput(f"the body is not valid JSON: {exc}") from None
    _check_unicode(value)
    return value


def clean_text(value: str) -> bool:
    """True when ``value`` encodes as UTF-8 (no lone surrogates)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _depth(raw: bytes) -> int:
    """Bracket nesting outside strings, counted without parsing (so without recursion)."""
    depth = deepest = 0
    for match in _BRACKETS.finditer(_STRINGS.sub(b'""', raw)):
        if match.group() in (b"[", b"{"):
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest


def _check_unicode(value: Any) -> None:
    if isinstance(value, str):
        if not clean_text(value):
            raise BadInput("the JSON holds invalid Unicode (a lone surrogate escape such as \\ud800)")
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_unicode(key)
            _check_unicode(item)
    elif isinstance(value, list):
        for item in value:
            _check_unicode(item)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")
