"""Who may do what: chat identities and groups mapped to roles granting reads and actions.

The policy file (TOML, ``RESYNC_POLICY``; example in config/policy.example.toml)::

    [groups]
    ops = ["slack:U0123ABCD", "ana@example.com", "teams:<aad object id>", "console:operator"]

    [roles.viewer]
    read = true

    [roles.operator]
    read = true
    actions = ["rerun", "hold", "release", "cancel"]
    jobs = ["*"]                       # WS#STREAM.JOB, STREAM.JOB or JOB patterns; @ works like *
    require_justification = ["cancel"]

    [bindings]
    "group:ops" = ["operator"]
    "slack:U0456EFGH" = ["viewer"]

Default-deny: a user named in no binding (directly or through a group) gets nothing; a known
user may read; every state-changing tool is denied unless a role grants that action on a
matching job. Without a policy file only the local console user is known (an operator), so
``resync demo`` works and no chat user can change anything.
"""

from __future__ import annotations

import fnmatch
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.config import did_you_mean
from bot.errors import ConfigError

ACTIONS = ("rerun", "hold", "release", "cancel", "confirm", "kill")
CONSOLE_USER = "console:operator"

#: Tools whose policy action is not their name: both confirmations are the action ``confirm``.
_ACTION_OF = {"confirm_succ_job": "confirm", "confirm_abend_job": "confirm"}
#: The TWS job action a tool runs (tws-api.md section 5), where it is not the policy action.
_TWS_ACTION = {"confirm_succ_job": "confirm-succ", "confirm_abend_job": "confirm-abend"}


def action_of(tool: str) -> str:
    """``rerun_job`` -> ``rerun``: policies name actions, the registry names tools."""
    return _ACTION_OF.get(tool) or tool.removesuffix("_job")


def tws_action(tool: str) -> str:
    """``confirm_succ_job`` -> ``confirm-succ``: what is asked of TWS."""
    return _TWS_ACTION.get(tool) or action_of(tool)


@dataclass(frozen=True, slots=True, kw_only=True)
class Role:
    name: str
    read: bool = False
    actions: frozenset[str] = frozenset()
    jobs: tuple[str, ...] = ("*",)
    require_justification: frozenset[str] = frozenset()

    def grants(self, action: str, job_names: Iterable[str]) -> bool:
        names = tuple(job_names)
        return action in self.actions and any(_match(p, n) for p in self.jobs for n in names)


@dataclass(frozen=True, slots=True, kw_only=True)
class Decision:
    allowed: bool
    reason: str  # "granted by role operator", "unknown user", "no role grants cancel on X" (audit, English)
    justification_required: bool = False
    role: str | None = None
    key: str = ""  # bot/texts.py key of the reason a user sees, in their language (values below)
    values: tuple[tuple[str, str], ...] = ()

    def reason_in(self, lang: str) -> str:
        """The reason in the user's language: the audit keeps ``reason`` (English), the reply uses this."""
        from bot.texts import has_text, say

        if not self.key or not has_text(self.key):
            return self.reason
        values = dict(self.values)
        if has_text(f"verb_{values.get('action', '')}"):
            values["action"] = say(lang, f"verb_{values['action']}")
        return say(lang, self.key, **values)


@dataclass(frozen=True, slots=True, kw_only=True)
class Policy:
    roles: Mapping[str, Role]
    bindings: Mapping[str, tuple[str, ...]]  # identity -> role names (groups already expanded)

    def roles_of(self, identities: Iterable[str]) -> list[Role]:
        names: list[str] = []
        for identity in identities:
            for name in self.bindings.get(identity.lower(), ()):
                if name not in names:
                    names.append(name)
        return [self.roles[n] for n in names]

    def is_known(self, identities: Iterable[str]) -> bool:
        return any(i.lower() in self.bindings for i in identities)

    def can_read(self, identities: Iterable[str]) -> Decision:
        """Known users read, unless every role they hold says ``read = false``."""
        identities = tuple(identities)
        if not self.is_known(identities):
            return Decision(allowed=False, reason="unknown user", key="policy_unknown_user")
        roles = self.roles_of(identities)
        if roles and not any(role.read for role in roles):
            return Decision(allowed=False, reason="no role grants reading", key="policy_no_read")
        return Decision(allowed=True, reason="known user", key="policy_known_user")

    def can_act(self, identities: Iterable[str], tool: str, job_names: Iterable[str]) -> Decision:
        """May these identities run ``tool`` on a job known by any of ``job_names``?"""
        identities, names, action = tuple(identities), tuple(job_names), action_of(tool)
        if not self.is_known(identities):
            return Decision(allowed=False, reason="unknown user", key="policy_unknown_user")
        for role in self.roles_of(identities):
            if role.grants(action, names):
                return Decision(allowed=True, reason=f"granted by role {role.name}", role=role.name,
                                key="policy_granted", values=(("role", role.name),),
                                justification_required=action in role.require_justification)
        target = names[0] if names else "?"
        return Decision(allowed=False, reason=f"no role grants {action} on {target}", key="policy_no_grant",
                        values=(("action", action), ("job", target)))


def job_names_for(workstation: str, stream: str, job: str) -> tuple[str, ...]:
    """The spellings a policy pattern may target; a workstation in a folder (``/ETL/LNX_ETL01``)
    also by its name alone, as a pattern ``LNX_ETL01#@`` means (bot/tws/names.py)."""
    names = (f"{workstation}#{stream}.{job}", f"{stream}.{job}", job)
    name = workstation.rstrip("/").rsplit("/", 1)[-1]
    return names if name == workstation else (names[0], f"{name}#{stream}.{job}", *names[1:])


def _match(pattern: str, name: str) -> bool:
    return fnmatch.fnmatchcase(name.upper(), pattern.upper().replace("@", "*"))


def default_policy() -> Policy:
    operator = Role(name="operator", read=True, actions=frozenset(ACTIONS))
    return Policy(roles={"operator": operator}, bindings={CONSOLE_USER: ("operator",)})


def load_policy(path: Path | None) -> Policy:
    """Read and validate the policy file; ConfigError names the bad entry."""
    if path is None:
        return default_policy()
    try:
        with open(path, "rb") as handle:
            raw = tomllib.load(handle)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"RESYNC_POLICY: cannot read {path}: {exc}") from None
    return parse_policy(raw)


_TABLES = ("groups", "roles", "bindings")
_ROLE_KEYS = ("read", "actions", "jobs", "require_justification")


def parse_policy(raw: Mapping[str, Any]) -> Policy:
    """Validate everything: an unknown table or key, or a value of the wrong type, is a ConfigError.

    A typo must not change what anyone may do: ``read = "no"`` would be true in Python, and a
    misspelt ``[binding]`` would silently leave everyone out.
    """
    for key in raw:
        if key not in _TABLES:
            raise ConfigError(f"RESYNC_POLICY: unknown table [{key}]{did_you_mean(key, _TABLES)}; "
                              f"a policy has {', '.join(f'[{t}]' for t in _TABLES)}")
    roles = {name: _role(name, body) for name, body in _table(raw, "roles").items()}
    groups = {name: _strings(f"[groups] {name}", members) for name, members in _table(raw, "groups").items()}
    bindings: dict[str, list[str]] = {}
    for subject, role_names in _table(raw, "bindings").items():
        names = _strings(f"[bindings] {subject!r}", role_names)
        for name in names:
            if name not in roles:
                raise ConfigError(f"RESYNC_POLICY: [bindings] {subject!r} names unknown role {name!r}")
        if subject.startswith("group:"):
            group = subject.removeprefix("group:")
            if group not in groups:
                raise ConfigError(f"RESYNC_POLICY: [bindings] names unknown group {group!r}")
            members = groups[group]
        else:
            members = (subject,)
        for member in members:
            bindings.setdefault(member.lower(), []).extend(n for n in names if n not in bindings.get(member.lower(), []))
    return Policy(roles=roles, bindings={k: tuple(v) for k, v in bindings.items()})


def _role(name: str, body: Any) -> Role:
    if not isinstance(body, Mapping):
        raise ConfigError(f"RESYNC_POLICY: [roles.{name}] must be a table")
    for key in body:
        if key not in _ROLE_KEYS:
            raise ConfigError(f"RESYNC_POLICY: [roles.{name}] unknown key {key!r}{did_you_mean(key, _ROLE_KEYS)}")
    read = body.get("read", True)
    if not isinstance(read, bool):
        raise ConfigError(f"RESYNC_POLICY: [roles.{name}] read must be true or false, got {read!r}")
    actions = frozenset(action_of(a) for a in _strings(f"[roles.{name}] actions", body.get("actions", [])))
    unknown = actions - set(ACTIONS)
    if unknown:
        raise ConfigError(f"RESYNC_POLICY: [roles.{name}] unknown action(s) {sorted(unknown)}; use {list(ACTIONS)}")
    justification = frozenset(action_of(a) for a in _strings(f"[roles.{name}] require_justification",
                                                           body.get("require_justification", [])))
    return Role(name=name, read=read, actions=actions,
                jobs=_strings(f"[roles.{name}] jobs", body.get("jobs", ["*"])) or ("*",),
                require_justification=justification)


def _table(raw: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = raw.get(key, {})
    if not isinstance(value, Mapping):
        raise ConfigError(f"RESYNC_POLICY: [{key}] must be a table")
    return value


def _strings(where: str, value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"RESYNC_POLICY: {where} must be a list of strings")
    return tuple(value)
