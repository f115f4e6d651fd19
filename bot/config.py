"""Configuration: read once at start-up into small frozen objects, one per component.

Sources, later wins: built-in defaults, the TOML file named by ``RESYNC_CONFIG``, environment
variables. Every setting has one environment name (the public interface, documented in the
README) and one TOML location (``[section] key``). A bad or missing value raises ``ConfigError``
with one line naming the setting. There are no default secrets.
"""

from __future__ import annotations

import difflib
import os
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from bot.errors import ConfigError
from bot.tws.models import JOB_STATES


@dataclass(frozen=True, slots=True, kw_only=True)
class TwsSettings:
    urls: tuple[str, ...]  # base URLs ending in /twsd: master first, then backups
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    api_key: str | None = field(default=None, repr=False)
    verify_tls: bool = True
    ca_bundle: str | None = None
    timeout: float = 10.0
    retries: int = 3
    breaker_fail_max: int = 5
    breaker_reset: float = 30.0
    # Seconds identical TWS reads are shared and reused (bot/tws/cache.py). Off when built in code;
    # the product's default, 5 s, is TWS_READ_CACHE_TTL's below.
    read_cache_ttl: float = 0.0

    def secrets(self) -> tuple[str | None, ...]:
        return (self.password, self.api_key)


@dataclass(frozen=True, slots=True, kw_only=True)
class StoreSettings:
    redis_url: str | None = field(default=None, repr=False)
    data_dir: Path = Path(".resync")
    redis_max_connections: int = 50  # connections in the blocking pool; callers beyond wait
    redis_timeout: float = 5.0  # seconds: bound of every Redis call, pool wait included

    def secrets(self) -> tuple[str | None, ...]:
        return (self.redis_url and _url_password(self.redis_url),)


@dataclass(frozen=True, slots=True, kw_only=True)
class KbSettings:
    """The runbook knowledge base (``bot.kb``): embedded Qdrant under the data dir, or a server."""

    path: Path = Path(".resync") / "kb"  # embedded Qdrant folder (one process at a time)
    qdrant_url: str | None = None  # a Qdrant server, shared by several processes
    qdrant_api_key: str | None = field(default=None, repr=False)
    alert_min_score: float = 0.55  # dense cosine below which a hit is not relevant (no runbook line); bench/kb.py

    def secrets(self) -> tuple[str | None, ...]:
        return (self.qdrant_api_key,)


@dataclass(frozen=True, slots=True, kw_only=True)
class LogSettings:
    level: str = "INFO"
    format: str = "json"  # "json" or "console"


@dataclass(frozen=True, slots=True, kw_only=True)
class WebSettings:
    host: str = "0.0.0.0"
    port: int = 8080
    api_token: str | None = field(default=None, repr=False)  # bearer token of POST /api/chat
    events_token: str | None = field(default=None, repr=False)  # bearer token of POST /api/tws/events

    def secrets(self) -> tuple[str | None, ...]:
        return (self.api_token, self.events_token)


@dataclass(frozen=True, slots=True, kw_only=True)
class SlackSettings:
    bot_token: str = field(repr=False)
    signing_secret: str = field(repr=False)
    app_token: str | None = field(default=None, repr=False)
    api_url: str | None = None
    command: str = "/tws"

    def secrets(self) -> tuple[str | None, ...]:
        return (self.bot_token, self.signing_secret, self.app_token)


@dataclass(frozen=True, slots=True, kw_only=True)
class TeamsSettings:
    """Microsoft Teams (Bot Framework), by the SDK's own setting names; the endpoints are for
    sovereign clouds and tests (None: the public cloud's)."""

    app_id: str
    app_password: str | None = field(default=None, repr=False)
    app_type: str = "MultiTenant"  # MultiTenant, SingleTenant, UserAssignedMSI
    tenant_id: str | None = None
    channel_service: str | None = None
    validate_authority: bool = True
    login_url: str | None = None  # ToChannelFromBotLoginUrl
    oauth_scope: str | None = None  # ToChannelFromBotOAuthScope
    token_issuer: str | None = None  # ToBotFromChannelTokenIssuer
    openid_metadata_url: str | None = None  # ToBotFromChannelOpenIdMetadataUrl
    oauth_url: str | None = None  # OAuthUrl
    allowed_tenants: tuple[str, ...] = ()  # TEAMS_ALLOWED_TENANTS; empty: any tenant
    app_name: str = "Resync"  # TEAMS_APP_NAME: the name in the app package

    def secrets(self) -> tuple[str | None, ...]:
        return (self.app_password,)


@dataclass(frozen=True, slots=True, kw_only=True)
class LlmSettings:
    model: str
    api_base: str | None = None
    api_key: str | None = field(default=None, repr=False)
    timeout: float = 20.0

    def secrets(self) -> tuple[str | None, ...]:
        return (self.api_key,)


@dataclass(frozen=True, slots=True, kw_only=True)
class PolicySettings:
    path: Path | None = None  # None: the built-in default policy
    confirm_ttl: float = 300.0
    context_ttl: float = 3600.0


@dataclass(frozen=True, slots=True, kw_only=True)
class AlertRoute:
    targets: tuple[str, ...]  # "slack:C0123", "teams:<conversation id>", "console"
    stream: str = "*"
    job: str = "*"
    workstation: str = "*"
    mute: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class AlertSettings:
    enabled: bool = True
    poll_interval: float = 30.0
    states: tuple[str, ...] = ("ABEND", "FAIL", "ERROR")
    notify_pend: bool = True
    notify_late: bool = False
    routes: tuple[AlertRoute, ...] = ()
    default_targets: tuple[str, ...] = ()
    match: str = "first"  # "first" or "all"
    burst_threshold: int = 5
    burst_window: float = 300.0
    lock_ttl: float = 6.0  # a dead leader's lock lapses within this; renewed every third of it
    lang: str = "en"  # language of alerts and notices: "en" or "pt" (pt-BR)
    baseline: str = "summary"  # failures already there on a plan's first poll: "summary", "alert" or "ignore"
    channel_burst: int = 20  # new alert messages per channel within burst_window before they are grouped
    long_factor: float = 3.0  # a run longer than this times its estimated duration is long-running
    digests: tuple[DigestSettings, ...] = ()
    pagerduty_url: str = "https://events.pagerduty.com/v2/enqueue"  # Events API v2 (PAGERDUTY_EVENTS_URL)
    pagerduty_keys: tuple[tuple[str, str], ...] = field(default=(), repr=False)  # (name, routing key)

    def secrets(self) -> tuple[str | None, ...]:
        return tuple(key for _, key in self.pagerduty_keys)


@dataclass(frozen=True, slots=True, kw_only=True)
class DigestSettings:
    """One ``[[alerts.digests]]`` table: the plan day summed up once a day, with a chart."""

    targets: tuple[str, ...]
    at: str = "08:00"  # local time, HH:MM
    timezone: str = "UTC"


@dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    tws: TwsSettings
    store: StoreSettings
    log: LogSettings
    web: WebSettings
    policy: PolicySettings
    alerts: AlertSettings
    slack: SlackSettings | None = None
    llm: LlmSettings | None = None
    teams: TeamsSettings | None = None
    kb: KbSettings = KbSettings()

    def secrets(self) -> tuple[str, ...]:
        """Every secret value, so the log pipeline can scrub them wherever they appear.

        Each settings slice names its own secrets (its ``secrets()`` method): a new slice, say
        Teams', is collected here without anyone remembering to list it.
        """
        values = [v for f in fields(self) for v in _slice_secrets(getattr(self, f.name))]
        # Short values (a demo password like "resync") would be cut out of ordinary words and paths;
        # secret-looking keys and Authorization headers are scrubbed whatever their length.
        return tuple(v for v in values if v and len(v) >= 8)


def _slice_secrets(part: Any) -> tuple[str | None, ...]:
    own = getattr(part, "secrets", None)
    return own() if callable(own) else ()


# --- reading -------------------------------------------------------------------------------

_MISSING = object()


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """`` (did you mean X?)`` for the closest of ``choices``, or nothing when none is close."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]}?)" if close else ""


class _Source:
    """Looks a setting up in the environment, then the TOML file.

    It remembers every TOML location asked for, so that ``unknown_toml`` can name a key or table
    nobody reads (a typo such as ``[tws] timout``) instead of ignoring it. A component reading a
    whole sub-table itself (``[[alerts.routes]]``) takes it with ``table`` and checks its keys.
    """

    def __init__(self, env: Mapping[str, str], toml: Mapping[str, Any]) -> None:
        self.env = env
        self.toml = toml
        self.asked: set[str] = set()

    def table(self, toml_path: str) -> Any:
        """The raw value at ``toml_path`` (or _MISSING); its contents are the caller's to check."""
        self.asked.add(toml_path)
        node: Any = self.toml
        for part in toml_path.split("."):
            if not isinstance(node, Mapping) or part not in node:
                return _MISSING
            node = node[part]
        return node

    def unknown_toml(self) -> str | None:
        """The first TOML key or table that no setting reads, with a suggestion."""
        return _unknown(self.toml, "", self.asked)

    def raw(self, env_name: str, toml_path: str) -> Any:
        """The environment wins over the TOML file; an empty variable counts as unset."""
        if self.env.get(env_name, "") != "":
            self.asked.add(toml_path)
            return self.env[env_name]
        return self.table(toml_path)

    def str(self, env_name: str, toml_path: str, default: str | None = None) -> str | None:
        value = self.raw(env_name, toml_path)
        if value is _MISSING:
            return default
        if not isinstance(value, str):
            raise ConfigError(f"{env_name} ([{toml_path}]) must be a string")
        return value.strip()

    def number(self, env_name: str, toml_path: str, default: float, *, minimum: float = 0.0) -> float:
        value = self.raw(env_name, toml_path)
        if value is _MISSING:
            return default
        try:
            if isinstance(value, bool):
                raise TypeError("a boolean is not a number")
            number = float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{env_name} ([{toml_path}]) must be a number, got {value!r}") from None
        if number != number or number in (float("inf"), float("-inf")):
            raise ConfigError(f"{env_name} ([{toml_path}]) must be a finite number, got {value!r}")
        if number < minimum:
            raise ConfigError(f"{env_name} ([{toml_path}]) must be at least {minimum:g}, got {number:g}")
        return number

    def integer(self, env_name: str, toml_path: str, default: int, *, minimum: int = 0) -> int:
        number = float(self.number(env_name, toml_path, default, minimum=minimum))
        if not number.is_integer():
            raise ConfigError(f"{env_name} ([{toml_path}]) must be a whole number, got {number:g}")
        return int(number)

    def flag(self, env_name: str, toml_path: str, default: bool) -> bool:
        value = self.raw(env_name, toml_path)
        if value is _MISSING:
            return default
        if isinstance(value, bool):
            return value
        if not isinstance(value, str):  # a TOML 1 or "x" = [] is a mistake, not a flag
            raise ConfigError(f"{env_name} ([{toml_path}]) must be true or false, got {value!r}")
        text = value.strip().lower()
        if text in {"1", "true", "yes", "on"}:
            return True
        if text in {"0", "false", "no", "off"}:
            return False
        raise ConfigError(f"{env_name} ([{toml_path}]) must be true or false, got {value!r}")

    def items(self, env_name: str, toml_path: str, default: tuple[str, ...] = ()) -> tuple[str, ...]:
        value = self.raw(env_name, toml_path)
        if value is _MISSING:
            return default
        if isinstance(value, str):
            value = value.split(",")
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{env_name} ([{toml_path}]) must be a comma-separated list (in TOML, a list of strings)")
        return tuple(v.strip() for v in value if v.strip())


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Read and validate every setting; raise ConfigError naming the first bad one."""
    env = os.environ if env is None else env
    source = _Source(env, _read_toml(env.get("RESYNC_CONFIG", "")))
    settings = Settings(
        tws=_tws(source),
        store=_store(source),
        log=_log(source),
        web=_web(source),
        policy=_policy(source),
        alerts=_alerts(source),
        slack=_slack(source),
        llm=_llm(source),
        teams=_teams(source),
        kb=_kb(source),
    )
    return _checked(source, settings)


def _checked(source: _Source, settings: Settings) -> Settings:
    unknown = source.unknown_toml()
    if unknown:
        raise ConfigError(f"RESYNC_CONFIG: {unknown}")
    return settings


def _unknown(node: Mapping[str, Any], prefix: str, asked: set[str]) -> str | None:
    """Walk the TOML tree: every key must be a location asked for, or lie inside one."""
    known_here = {path[len(prefix):].split(".")[0] for path in asked if path.startswith(prefix)}
    for key, value in node.items():
        path = prefix + key
        if path in asked:
            continue
        if key not in known_here:
            where = f"[{prefix.rstrip('.')}] " if prefix else ""
            kind = "table" if isinstance(value, Mapping) else "setting"
            shown = f"[{key}]" if kind == "table" and not prefix else key
            return f"unknown {kind} {where}{shown}{did_you_mean(key, sorted(known_here))}"
        if isinstance(value, Mapping):
            found = _unknown(value, path + ".", asked)
            if found:
                return found
        else:
            return f"[{prefix.rstrip('.')}] {key} must be a table" if prefix else f"{key} must be a table"
    return None


def load_store_settings(env: Mapping[str, str] | None = None) -> StoreSettings:
    """Only the store slice: for commands (``resync audit``) that need no TWS settings."""
    env = os.environ if env is None else env
    return _store(_Source(env, _read_toml(env.get("RESYNC_CONFIG", ""))))


def load_teams_settings(env: Mapping[str, str] | None = None, *, for_package: bool = False) -> TeamsSettings | None:
    """Only the Teams slice: for ``resync teams package``, which needs no TWS settings.

    ``for_package``: the package names the bot by its app id only, so no MicrosoftAppPassword is
    asked for (serving still requires it: ``load_settings`` never passes this)."""
    env = os.environ if env is None else env
    return _teams(_Source(env, _read_toml(env.get("RESYNC_CONFIG", ""))), secret_needed=not for_package)


def load_llm_settings(env: Mapping[str, str] | None = None) -> LlmSettings | None:
    """Only the LLM slice: for ``resync ask --dry-run``, which never calls TWS."""
    env = os.environ if env is None else env
    return _llm(_Source(env, _read_toml(env.get("RESYNC_CONFIG", ""))))


def _read_toml(path: str) -> Mapping[str, Any]:
    if not path:
        return {}
    try:
        with open(path, "rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(f"RESYNC_CONFIG: file not found: {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"RESYNC_CONFIG: {path} is not valid TOML: {exc}") from None


def _url(setting: str, value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in {"http", "https"} or not parts.netloc:
        raise ConfigError(f"{setting}: {value!r} is not an http(s) URL")
    if parts.username or parts.password:
        raise ConfigError(f"{setting}: put credentials in TWS_USER/TWS_PASSWORD or TWS_API_KEY, not in the URL")
    return value.rstrip("/")


def tws_base_url(value: str) -> str:
    """``https://host:31116`` and ``https://host:31116/twsd`` both mean the same server."""
    value = _url("TWS_URL", value.strip())
    return value if value.endswith("/twsd") else value + "/twsd"


def _tws(s: _Source) -> TwsSettings:
    urls = s.items("TWS_URL", "tws.url")
    if not urls:
        raise ConfigError("TWS_URL is required (e.g. https://mdm.example.com:31116; comma-separate backups)")
    user, password, api_key = s.str("TWS_USER", "tws.user"), s.str("TWS_PASSWORD", "tws.password"), s.str(
        "TWS_API_KEY", "tws.api_key")
    if api_key is None and (not user or not password):
        raise ConfigError("TWS_USER and TWS_PASSWORD (or TWS_API_KEY) are required")
    ca_bundle = s.str("TWS_CA_BUNDLE", "tws.ca_bundle")
    if ca_bundle and not Path(ca_bundle).is_file():
        raise ConfigError(f"TWS_CA_BUNDLE: file not found: {ca_bundle}")
    return TwsSettings(
        urls=tuple(tws_base_url(u) for u in urls),
        user=user,
        password=password,
        api_key=api_key,
        verify_tls=s.flag("TWS_VERIFY_TLS", "tws.verify_tls", True),
        ca_bundle=ca_bundle,
        timeout=s.number("TWS_TIMEOUT", "tws.timeout", 10.0, minimum=0.1),
        retries=s.integer("TWS_RETRIES", "tws.retries", 3),
        breaker_fail_max=s.integer("TWS_BREAKER_FAILURES", "tws.breaker_failures", 5, minimum=1),
        breaker_reset=s.number("TWS_BREAKER_RESET", "tws.breaker_reset", 30.0, minimum=1),
        read_cache_ttl=s.number("TWS_READ_CACHE_TTL", "tws.read_cache_ttl", 5.0, minimum=0),
    )


def _store(s: _Source) -> StoreSettings:
    redis_url = s.str("REDIS_URL", "store.redis_url")
    if redis_url and urlsplit(redis_url).scheme not in {"redis", "rediss", "unix"}:
        raise ConfigError("REDIS_URL must start with redis://, rediss:// or unix://")
    return StoreSettings(redis_url=redis_url or None, data_dir=Path(s.str("RESYNC_DATA_DIR", "store.data_dir", ".resync")),
                         redis_max_connections=s.integer("REDIS_MAX_CONNECTIONS", "store.redis_max_connections", 50,
                                                         minimum=1),
                         redis_timeout=s.number("REDIS_TIMEOUT", "store.redis_timeout", 5.0, minimum=0.1))


def _log(s: _Source) -> LogSettings:
    level = (s.str("LOG_LEVEL", "log.level", "INFO") or "INFO").upper()
    if level not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
        raise ConfigError(f"LOG_LEVEL must be DEBUG, INFO, WARNING, ERROR or CRITICAL, got {level!r}")
    fmt = (s.str("LOG_FORMAT", "log.format", "json") or "json").lower()
    if fmt not in {"json", "console"}:
        raise ConfigError(f"LOG_FORMAT must be json or console, got {fmt!r}")
    return LogSettings(level=level, format=fmt)


def _web(s: _Source) -> WebSettings:
    port = s.integer("PORT", "web.port", 8080, minimum=0)
    if port > 65535:
        raise ConfigError(f"PORT must be at most 65535, got {port}")
    return WebSettings(host=s.str("RESYNC_HOST", "web.host", "0.0.0.0") or "0.0.0.0", port=port,
                       api_token=s.str("RESYNC_API_TOKEN", "web.api_token") or None,
                       events_token=s.str("RESYNC_EVENTS_TOKEN", "web.events_token") or None)


def _policy(s: _Source) -> PolicySettings:
    path = s.str("RESYNC_POLICY", "policy.path")
    if path and not Path(path).is_file():
        raise ConfigError(f"RESYNC_POLICY: file not found: {path}")
    return PolicySettings(
        path=Path(path) if path else None,
        confirm_ttl=s.number("RESYNC_CONFIRM_TTL", "policy.confirm_ttl", 300.0, minimum=5),
        context_ttl=s.number("RESYNC_CONTEXT_TTL", "policy.context_ttl", 3600.0, minimum=5),
    )


def _check_table(where: str, raw: Any, allowed: Mapping[str, type | tuple[type, ...]]) -> None:
    """A sub-table read as a whole: every key known, every value of its type."""
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where} must be a table")
    for key, value in raw.items():
        if key not in allowed:
            raise ConfigError(f"{where}: unknown key {key!r}{did_you_mean(key, allowed)}")
        if not isinstance(value, allowed[key]):
            raise ConfigError(f"{where}: {key} has the wrong type ({type(value).__name__})")


def _target(setting: str, value: str) -> str:
    if value != "console" and (":" not in value or value.split(":", 1)[0] not in {"slack", "teams", "console",
                                                                                   "pagerduty"}):
        raise ConfigError(f"{setting}: {value!r} is not a target (slack:C0123456, teams:<conversation id>, "
                          "pagerduty:<name> or console)")
    return value


def _alerts(s: _Source) -> AlertSettings:
    states = tuple(x.upper() for x in s.items("RESYNC_ALERT_STATES", "alerts.states", ("ABEND", "FAIL", "ERROR")))
    for state in states:
        if state not in JOB_STATES:
            raise ConfigError(f"RESYNC_ALERT_STATES: {state!r} is not a TWS job state{did_you_mean(state, JOB_STATES)}; "
                              f"known: {', '.join(sorted(JOB_STATES))}")
    match = (s.str("RESYNC_ALERT_MATCH", "alerts.match", "first") or "first").lower()
    if match not in {"first", "all"}:
        raise ConfigError(f"RESYNC_ALERT_MATCH must be first or all, got {match!r}")
    routes = []
    raw_routes = s.table("alerts.routes")
    raw_routes = [] if raw_routes is _MISSING else raw_routes
    if not isinstance(raw_routes, list):
        raise ConfigError("[[alerts.routes]] must be an array of tables")
    for index, raw in enumerate(raw_routes):
        where = f"[[alerts.routes]] #{index + 1}"
        _check_table(where, raw, {"targets": (list, str), "channels": (list, str), "stream": str, "job": str,
                                  "workstation": str, "mute": bool})
        targets = raw.get("targets", raw.get("channels", []))
        targets = [targets] if isinstance(targets, str) else targets
        if not all(isinstance(t, str) for t in targets):
            raise ConfigError(f"{where} targets must be a list of strings")
        mute = raw.get("mute", False)
        if not targets and not mute:
            raise ConfigError(f"{where} needs targets (or mute = true)")
        routes.append(AlertRoute(
            targets=tuple(_target(where, str(t)) for t in targets),
            stream=str(raw.get("stream", "*")).upper(), job=str(raw.get("job", "*")).upper(),
            workstation=str(raw.get("workstation", "*")).upper(), mute=mute))
    lang = (s.str("RESYNC_ALERT_LANG", "alerts.lang", "en") or "en").lower().replace("pt-br", "pt")
    if lang not in {"en", "pt"}:
        raise ConfigError(f"RESYNC_ALERT_LANG must be en or pt (pt-BR), got {lang!r}")
    default_targets = tuple(_target("RESYNC_ALERT_CHANNELS", t) for t in s.items("RESYNC_ALERT_CHANNELS", "alerts.channels"))
    return AlertSettings(
        lang=lang,
        enabled=s.flag("RESYNC_ALERTS", "alerts.enabled", True),
        poll_interval=s.number("RESYNC_POLL_INTERVAL", "alerts.poll_interval", 30.0, minimum=1),
        states=states,
        notify_pend=s.flag("RESYNC_ALERT_PEND", "alerts.notify_pend", True),
        notify_late=s.flag("RESYNC_ALERT_LATE", "alerts.notify_late", False),
        routes=tuple(routes),
        default_targets=default_targets,
        match=match,
        burst_threshold=s.integer("RESYNC_ALERT_BURST", "alerts.burst_threshold", 5, minimum=1),
        burst_window=s.number("RESYNC_ALERT_BURST_WINDOW", "alerts.burst_window", 300.0, minimum=1),
        lock_ttl=s.number("RESYNC_LOCK_TTL", "alerts.lock_ttl", 6.0, minimum=2),
        baseline=_choice(s, "RESYNC_ALERT_BASELINE", "alerts.baseline", "summary", ("summary", "alert", "ignore")),
        channel_burst=s.integer("RESYNC_ALERT_CHANNEL_BURST", "alerts.channel_burst", 20, minimum=1),
        long_factor=s.number("RESYNC_ALERT_LONG_FACTOR", "alerts.long_factor", 3.0, minimum=1),
        digests=_digests(s),
        pagerduty_url=_url("PAGERDUTY_EVENTS_URL", s.str("PAGERDUTY_EVENTS_URL", "alerts.pagerduty_url",
                                                       "https://events.pagerduty.com/v2/enqueue") or ""),
        pagerduty_keys=_pagerduty_keys(s, [*routes, AlertRoute(targets=default_targets)]),
    )


def _pagerduty_keys(s: _Source, routes: list[AlertRoute]) -> tuple[tuple[str, str], ...]:
    """The routing key of every ``pagerduty:<name>`` target, from ``PAGERDUTY_ROUTING_KEY_<NAME>``."""
    keys: dict[str, str] = {}
    for route in routes:
        for target in route.targets:
            if target.startswith("pagerduty:"):
                name = target.removeprefix("pagerduty:")
                env_name = "PAGERDUTY_ROUTING_KEY_" + "".join(c if c.isalnum() else "_" for c in name.upper())
                key = s.env.get(env_name, "").strip()
                if not key:
                    raise ConfigError(f"{env_name} is required for the alert target {target!r}")
                keys[name] = key
    return tuple(keys.items())


def _choice(s: _Source, env_name: str, toml_path: str, default: str, allowed: tuple[str, ...]) -> str:
    value = (s.str(env_name, toml_path, default) or default).lower()
    if value not in allowed:
        raise ConfigError(f"{env_name} must be {', '.join(allowed[:-1])} or {allowed[-1]}, got {value!r}")
    return value


def _digests(s: _Source) -> tuple[DigestSettings, ...]:
    """``[[alerts.digests]]``: targets, ``at`` (local HH:MM) and ``timezone`` (IANA name)."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    raw_digests = s.table("alerts.digests")
    raw_digests = [] if raw_digests is _MISSING else raw_digests
    digests = []
    for index, raw in enumerate(raw_digests if isinstance(raw_digests, list) else [raw_digests]):
        where = f"[[alerts.digests]] #{index + 1}"
        _check_table(where, raw, {"targets": (list, str), "at": str, "timezone": str})
        targets = raw.get("targets", [])
        targets = [targets] if isinstance(targets, str) else targets
        if not targets or not isinstance(targets, list):
            raise ConfigError(f"{where} needs targets")
        at = str(raw.get("at", "08:00"))
        hour, _, minute = at.partition(":")
        if not (hour.isdigit() and minute.isdigit() and int(hour) < 24 and int(minute) < 60):
            raise ConfigError(f"{where} at must be a local time HH:MM, got {at!r}")
        zone = str(raw.get("timezone", "UTC"))
        try:
            ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ConfigError(f"{where} timezone: unknown time zone {zone!r} (use an IANA name such as "
                              "America/Sao_Paulo)") from None
        digests.append(DigestSettings(targets=tuple(_target(where, str(t)) for t in targets),
                                      at=f"{int(hour):02d}:{int(minute):02d}", timezone=zone))
    return tuple(digests)


def _slack(s: _Source) -> SlackSettings | None:
    token, secret = s.str("SLACK_BOT_TOKEN", "slack.bot_token"), s.str("SLACK_SIGNING_SECRET", "slack.signing_secret")
    app_token = s.str("SLACK_APP_TOKEN", "slack.app_token")
    api_url = s.str("SLACK_API_URL", "slack.api_url")  # read even when Slack is off: known keys
    command = s.str("SLACK_COMMAND", "slack.command", "/tws") or "/tws"
    if not token and not secret and not app_token:
        return None
    if not token:
        raise ConfigError("SLACK_BOT_TOKEN is required when Slack is configured")
    if not secret and not app_token:
        raise ConfigError("SLACK_SIGNING_SECRET is required for Slack over HTTP (or set SLACK_APP_TOKEN for Socket Mode)")
    if app_token and not app_token.startswith("xapp-"):
        raise ConfigError("SLACK_APP_TOKEN must be an app-level token (xapp-...)")
    return SlackSettings(
        bot_token=token, signing_secret=secret or "", app_token=app_token or None,
        api_url=_url("SLACK_API_URL", api_url) + "/" if api_url else None,
        command=command if command.startswith("/") else "/" + command,
    )


def _llm(s: _Source) -> LlmSettings | None:
    model = s.str("LLM_MODEL", "llm.model")
    api_base, api_key = s.str("LLM_API_BASE", "llm.api_base"), s.str("LLM_API_KEY", "llm.api_key")
    timeout = s.number("LLM_TIMEOUT", "llm.timeout", 20.0, minimum=1)
    if not model:
        return None
    return LlmSettings(
        model=model, api_base=_url("LLM_API_BASE", api_base) if api_base else None,
        api_key=api_key or None, timeout=timeout,
    )


def load_kb_settings(env: Mapping[str, str] | None = None) -> KbSettings:
    """Only the knowledge-base slice: for ``resync kb``, which needs no TWS settings."""
    env = os.environ if env is None else env
    return _kb(_Source(env, _read_toml(env.get("RESYNC_CONFIG", ""))))


def _kb(s: _Source) -> KbSettings:
    url = s.str("QDRANT_URL", "kb.qdrant_url")
    return KbSettings(path=_store(s).data_dir / "kb", qdrant_url=_url("QDRANT_URL", url) if url else None,
                      qdrant_api_key=s.str("QDRANT_API_KEY", "kb.qdrant_api_key") or None,
                      alert_min_score=s.number("RESYNC_KB_MIN_SCORE", "kb.min_score", KbSettings().alert_min_score))


_TEAMS_APP_TYPES = {"multitenant": "MultiTenant", "singletenant": "SingleTenant", "userassignedmsi": "UserAssignedMSI"}
_TEAMS_URLS = {"ToChannelFromBotLoginUrl": "login_url", "ToBotFromChannelOpenIdMetadataUrl": "openid_metadata_url",
               "OAuthUrl": "oauth_url"}
_TEAMS_TEXTS = {"ChannelService": "channel_service", "ToChannelFromBotOAuthScope": "oauth_scope",
                "ToBotFromChannelTokenIssuer": "token_issuer"}


def _teams(s: _Source, *, secret_needed: bool = True) -> TeamsSettings | None:
    """On when ``MicrosoftAppId`` is set; never without authentication (the SDK's "auth disabled"
    mode trusts any serviceUrl)."""
    app_id = s.str("MicrosoftAppId", "teams.MicrosoftAppId")
    names = ("MicrosoftAppPassword", "MicrosoftAppType", "MicrosoftAppTenantId", "ValidateAuthority",
             "TEAMS_ALLOWED_TENANTS", "TEAMS_APP_NAME", *_TEAMS_URLS, *_TEAMS_TEXTS)
    given = {name: s.str(name, f"teams.{name}") if name not in ("ValidateAuthority", "TEAMS_ALLOWED_TENANTS") else None
             for name in names}  # those two are a flag and a list, read below
    if not app_id:
        present = [n for n in names if s.raw(n, f"teams.{n}") not in (_MISSING, "")]
        if present:
            raise ConfigError(f"MicrosoftAppId is required when Teams is configured ({', '.join(present)} set): "
                              "Teams never runs without authentication")
        return None
    app_type = _TEAMS_APP_TYPES.get((given["MicrosoftAppType"] or "MultiTenant").lower())
    if app_type is None:
        raise ConfigError(f"MicrosoftAppType must be MultiTenant, SingleTenant or UserAssignedMSI, "
                          f"got {given['MicrosoftAppType']!r}")
    password, tenant = given["MicrosoftAppPassword"] or None, given["MicrosoftAppTenantId"] or None
    if app_type != "UserAssignedMSI" and not password and secret_needed:
        raise ConfigError(f"MicrosoftAppPassword is required for a {app_type} Teams app")
    if app_type != "MultiTenant" and not tenant:
        raise ConfigError(f"MicrosoftAppTenantId is required for a {app_type} Teams app")
    urls = {attr: _url(name, given[name]) if given[name] else None for name, attr in _TEAMS_URLS.items()}
    texts = {attr: given[name] or None for name, attr in _TEAMS_TEXTS.items()}
    custom = [n for n in ("ToBotFromChannelOpenIdMetadataUrl", "ToBotFromChannelTokenIssuer", "ToChannelFromBotLoginUrl",
                          "ToChannelFromBotOAuthScope") if given[n]]
    if custom and len(custom) < 4:
        missing = sorted({"ToBotFromChannelOpenIdMetadataUrl", "ToBotFromChannelTokenIssuer", "ToChannelFromBotLoginUrl",
                          "ToChannelFromBotOAuthScope"} - set(custom))
        raise ConfigError(f"{', '.join(missing)} must be set too: a custom Bot Framework cloud needs all four endpoints")
    name = given["TEAMS_APP_NAME"] or "Resync"
    if len(name) > 30:
        raise ConfigError(f"TEAMS_APP_NAME must be at most 30 characters (Teams' short name), got {len(name)}")
    return TeamsSettings(app_name=name,
        app_id=app_id, app_password=password, app_type=app_type, tenant_id=tenant,
        validate_authority=s.flag("ValidateAuthority", "teams.ValidateAuthority", True),
        allowed_tenants=s.items("TEAMS_ALLOWED_TENANTS", "teams.TEAMS_ALLOWED_TENANTS"), **urls, **texts)


def _url_password(url: str) -> str | None:
    return urlsplit(url).password
