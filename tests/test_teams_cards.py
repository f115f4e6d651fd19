"""Adaptive Card rendering and the Teams settings: pure functions, no network."""

from __future__ import annotations

import json

import pytest

from adapters.teams_cards import MAX_BYTES, card_of, render
from bot.config import load_settings
from bot.errors import ConfigError
from bot.events import ACTION_CANCEL, ACTION_CONFIRM, Button, Field, Reply

BASE = {"TWS_URL": "http://127.0.0.1:9", "TWS_USER": "u", "TWS_PASSWORD": "p"}


def _blocks(activity: dict) -> list[dict]:
    return card_of(activity)["body"]


def test_a_reply_becomes_a_full_width_card_with_a_fallback() -> None:
    activity = render(Reply(title="Confirm: Rerun X", text="*PAYROLL.EXTRACT01* is `ABEND`", level="warning",
                            fields=(Field(label="Status", value="ABEND"), Field(label="RC", value="12")),
                            buttons=(Button(label="Confirm", action_id=ACTION_CONFIRM, value="p-1", style="danger"),
                                     Button(label="Cancel", action_id=ACTION_CANCEL, value="p-1")),
                            context="requested by Ana"))
    card = card_of(activity)
    assert (card["version"], card["msteams"], activity["type"]) == ("1.5", {"width": "Full"}, "message")
    assert card["fallbackText"] == activity["summary"] == "Confirm: Rerun X: *PAYROLL.EXTRACT01* is ABEND"
    title, text, facts, context, actions = _blocks(activity)
    assert title["text"] == "⚠️ Confirm: Rerun X" and title["color"] == "Warning"
    assert text["text"] == "**PAYROLL.EXTRACT01** is **ABEND**"  # mrkdwn bold and inline code, as card markdown
    assert facts == {"type": "FactSet", "facts": [{"title": "Status", "value": "ABEND"}, {"title": "RC", "value": "12"}]}
    assert context["isSubtle"] and context["text"] == "requested by Ana"
    confirm, cancel = actions["actions"]
    assert confirm == {"type": "Action.Submit", "title": "Confirm", "style": "destructive",
                       "data": {"action_id": ACTION_CONFIRM, "value": "p-1", "nonce": confirm["data"]["nonce"]}}
    assert cancel["data"]["nonce"] == confirm["data"]["nonce"] and "style" not in cancel
    assert render(Reply(text="x", buttons=(Button(label="b", action_id="a", value="v"),)))  # a fresh nonce per card


def test_a_huge_log_keeps_its_tail_with_a_cut_marker_and_the_card_stays_under_40_kb() -> None:
    log = "\n".join(f"line {i:06d} " + "é" * 60 for i in range(20_000)) + "\nORA-01555: snapshot too old"
    for lang, marker in (("en", "earlier lines cut"), ("pt", "linhas anteriores cortadas")):
        activity = render(Reply(text="Log of X " * 2000, code=log, code_title="Log of X (run 1)", lang=lang))
        size = len(json.dumps(activity, ensure_ascii=False).encode())
        assert size <= MAX_BYTES
        code = next(b for b in _blocks(activity) if b["type"] == "Container")
        runs = code["items"][0]["inlines"]
        assert all(r["fontType"] == "Monospace" for r in runs)
        text = "".join(r["text"] for r in runs)
        assert marker in text.splitlines()[0] and text.rstrip().endswith("ORA-01555: snapshot too old")
        answer = next(b for b in _blocks(activity) if b["type"] == "TextBlock" and b["text"].startswith("Log of X"))
        assert len(answer["text"]) <= 8_000


def test_log_lines_are_never_read_as_markdown() -> None:
    code = "[click](https://evil.example.com)\n- not a list\n**not bold**"
    [container] = [b for b in _blocks(render(Reply(text="", code=code))) if b["type"] == "Container"]
    [run] = container["items"][0]["inlines"]
    assert run["type"] == "TextRun" and run["text"] == code + "\n"  # TextRun text is verbatim


def test_many_fields_and_buttons_are_cut_with_a_marker() -> None:
    fields = tuple(Field(label=f"f{i}", value="v") for i in range(30))
    buttons = tuple(Button(label=f"JOB{i}", action_id="resync_choose", value=str(i)) for i in range(12))
    blocks = _blocks(render(Reply(text="Which one?", fields=fields, buttons=buttons, lang="pt")))
    facts = next(b for b in blocks if b["type"] == "FactSet")["facts"]
    assert len(facts) == 20 and "mais 11 campos cortados" in facts[-1]["value"]
    rows = [b for b in blocks if b["type"] == "ActionSet"]
    assert [len(r["actions"]) for r in rows] == [5, 5, 2]


def test_alert_titles_keep_their_own_symbol() -> None:
    [title, text] = _blocks(render(Reply(title="🔴 ABEND: X", text="✅ recovered", level="error")))
    assert title["text"] == "🔴 ABEND: X" and title["color"] == "Attention"
    [only] = _blocks(render(Reply(text="✅ recovered", level="success")))
    assert only["text"] == "✅ recovered"


# --- settings -------------------------------------------------------------------------------------

def test_teams_is_off_without_an_app_id_and_never_unauthenticated() -> None:
    assert load_settings(BASE).teams is None
    with pytest.raises(ConfigError, match="MicrosoftAppId is required .*MicrosoftAppPassword"):
        load_settings({**BASE, "MicrosoftAppPassword": "secret-value-1234"})
    with pytest.raises(ConfigError, match="MicrosoftAppId is required .*TEAMS_ALLOWED_TENANTS"):
        load_settings({**BASE, "TEAMS_ALLOWED_TENANTS": "t1"})


@pytest.mark.parametrize(("extra", "error"), [
    ({}, "MicrosoftAppPassword is required for a MultiTenant"),
    ({"MicrosoftAppType": "SingleTenant", "MicrosoftAppPassword": "pw-123456789"}, "MicrosoftAppTenantId is required"),
    ({"MicrosoftAppType": "UserAssignedMSI"}, "MicrosoftAppTenantId is required for a UserAssignedMSI"),
    ({"MicrosoftAppType": "Anonymous", "MicrosoftAppPassword": "x"}, "MicrosoftAppType must be"),
    ({"MicrosoftAppPassword": "x", "ToBotFromChannelOpenIdMetadataUrl": "https://idp.example/.well-known/x"},
     "ToBotFromChannelTokenIssuer, ToChannelFromBotLoginUrl, ToChannelFromBotOAuthScope must be set too"),
    ({"MicrosoftAppPassword": "x", "ToChannelFromBotLoginUrl": "login.example.com"}, "is not an http"),
    ({"MicrosoftAppPassword": "x", "ValidateAuthority": "maybe"}, "ValidateAuthority"),
])
def test_bad_teams_settings_stop_start_up_with_one_line(extra: dict[str, str], error: str) -> None:
    with pytest.raises(ConfigError, match=error):
        load_settings({**BASE, "MicrosoftAppId": "app-1", **extra})


def test_teams_settings_by_the_sdk_names() -> None:
    settings = load_settings({**BASE, "MicrosoftAppId": "app-1", "MicrosoftAppPassword": "teams-password-123",
                              "MicrosoftAppType": "singletenant", "MicrosoftAppTenantId": "tenant-1",
                              "TEAMS_ALLOWED_TENANTS": "tenant-1, tenant-2", "ValidateAuthority": "false"})
    teams = settings.teams
    assert teams is not None
    assert (teams.app_type, teams.tenant_id, teams.allowed_tenants, teams.validate_authority) == (
        "SingleTenant", "tenant-1", ("tenant-1", "tenant-2"), False)
    assert "teams-password-123" in settings.secrets() and "teams-password-123" not in repr(teams)
    msi = load_settings({**BASE, "MicrosoftAppId": "app-1", "MicrosoftAppType": "UserAssignedMSI",
                         "MicrosoftAppTenantId": "tenant-1"}).teams
    assert msi is not None and msi.app_password is None
