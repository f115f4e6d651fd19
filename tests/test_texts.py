"""Every string a user or a channel sees exists in English and Brazilian Portuguese."""

from __future__ import annotations

import re
import string
from pathlib import Path

import pytest

from bot.texts import _TEXTS, say
from bot.tws.models import STATUS_FILTERS

_ROOT = Path(__file__).resolve().parents[1]
# Said the same in pt-BR operations teams: TWS / English loanwords, or nothing to translate.
SAME_IN_BOTH = {"kind_workstation", "kind_stream", "stream_title", "btn_status", "f_status", "f_stream", "f_ws",
                "f_breaker", "f_jobs", "alert_runbook", "alert_f_job", "alert_outcome_ok"}
# Callers pass both names; each language uses the one that reads right.
PLACEHOLDERS_DIFFER = {"alert_last_action", "alert_action_note"}


def _fields(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


@pytest.mark.parametrize("key", sorted(_TEXTS))
def test_every_key_has_portuguese(key: str) -> None:
    english, portuguese = _TEXTS[key]
    assert english.strip() and portuguese.strip(), f"{key} lacks a translation"
    if key not in SAME_IN_BOTH:
        assert english != portuguese, f"{key}: the Portuguese text is the English one"
    if key not in PLACEHOLDERS_DIFFER:
        assert _fields(english) == _fields(portuguese), f"{key}: placeholders differ"


def test_every_key_the_code_says_exists() -> None:
    used = set()
    for path in [*(_ROOT / "bot").rglob("*.py"), *(_ROOT / "adapters").rglob("*.py")]:
        used |= set(re.findall(r"""\bsay\([^,()]+,\s*["']([a-z0-9_]+)["']\s*[,)]""", path.read_text(encoding="utf-8")))
    assert used and not used - set(_TEXTS), sorted(used - set(_TEXTS))


@pytest.mark.parametrize("family", [
    *(f"st_{status}" for status in sorted(STATUS_FILTERS | {"LATE"})),
    *(f"{kind}_{action}" for kind in ("verb", "noun", "mean") for action in ("rerun", "hold", "release", "cancel")),
    *(f"coarse_{c}" for c in ("Error", "Successful", "Running", "Waiting", "Ready", "Held", "Blocked", "Canceled",
                              "Undecided", "Suppressed")),
    "kind_workstation", "kind_stream", "where_stream", "where_workstation", "where_name",
    "not_a_job_workstation", "not_a_job_stream", "cant_history", "cant_filter",
])
def test_keys_built_at_run_time_exist(family: str) -> None:
    assert family in _TEXTS


def test_portuguese_is_chosen_and_english_is_the_fallback() -> None:
    assert say("pt", "btn_cancel") == "Cancelar" and say("en", "btn_cancel") == "Cancel"
    assert say("fr", "btn_cancel") == "Cancel"
