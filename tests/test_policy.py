"""The permission policy: default-deny, identities bound to their platform, read flags."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.errors import ConfigError
from bot.events import Event
from bot.policy import default_policy, load_policy, parse_policy

NAMES = ("CPU1#PAYROLL_DAILY.EXTRACT01", "PAYROLL_DAILY.EXTRACT01", "EXTRACT01")


def _event(platform: str, user: str) -> Event:
    return Event(platform=platform, workspace="w", channel="c", user_id=user)


def test_a_user_id_cannot_pass_for_another_platforms_identity() -> None:
    policy = default_policy()
    assert policy.can_act(_event("console", "operator").identities, "rerun_job", NAMES).allowed
    spoof = _event("http", "console:operator")  # what a crafted /api/chat body would produce
    assert not policy.can_read(spoof.identities).allowed
    assert not policy.can_act(spoof.identities, "rerun_job", NAMES).allowed


def test_unknown_users_get_nothing_known_users_read_actions_need_a_grant() -> None:
    policy = parse_policy({"roles": {"op": {"actions": ["rerun"], "jobs": ["*#PAYROLL_*.*"]}},
                           "bindings": {"slack:UOP": ["op"], "slack:UVIEW": []}})
    assert not policy.can_read(["slack:UNKNOWN"]).allowed
    assert policy.can_read(["slack:UVIEW"]).allowed
    assert not policy.can_act(["slack:UVIEW"], "rerun_job", NAMES).allowed
    assert policy.can_act(["slack:UOP"], "rerun_job", NAMES).allowed
    assert not policy.can_act(["slack:UOP"], "cancel_job", NAMES).allowed
    assert not policy.can_act(["slack:UOP"], "rerun_job", ("CPU1#GL_POSTING.X", "GL_POSTING.X", "X")).allowed


def test_a_role_can_withhold_reading() -> None:
    policy = parse_policy({"roles": {"bot": {"read": False}}, "bindings": {"http:ci-bot": ["bot"]}})
    decision = policy.can_read(["http:ci-bot"])
    assert not decision.allowed and decision.reason == "no role grants reading"


@pytest.mark.parametrize("body", [
    '[roles.x]\nactions = ["explode"]\n',
    '[bindings]\n"slack:U1" = ["nobody"]\n',
    '[bindings]\n"group:ghosts" = []\n',
    '[roles.x]\njobs = "not a list"\nactions = 3\n',
])
def test_bad_policies_stop_start_up(tmp_path: Path, body: str) -> None:
    path = tmp_path / "policy.toml"
    path.write_text(body)
    with pytest.raises(ConfigError, match="RESYNC_POLICY"):
        load_policy(path)


def test_the_example_policy_loads() -> None:
    policy = load_policy(Path(__file__).resolve().parents[1] / "config/policy.example.toml")
    assert policy.can_act(["slack:U0456EFGH"], "rerun_job", NAMES).allowed
    assert policy.can_act(["slack:U0123ABCD"], "cancel_job", NAMES).justification_required
