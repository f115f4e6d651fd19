"""Configuration: every bad value stops start-up with one line naming the setting."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.config import load_settings
from bot.errors import ConfigError

BASE = {"TWS_URL": "https://mdm.example.com:31116", "TWS_USER": "resync", "TWS_PASSWORD": "s3cret-pass"}


def test_minimal_environment_gives_defaults() -> None:
    settings = load_settings(BASE)
    assert settings.tws.urls == ("https://mdm.example.com:31116/twsd",)
    assert settings.store.redis_url is None and settings.store.data_dir == Path(".resync")
    assert settings.web.port == 8080 and settings.log.format == "json"
    assert settings.slack is None and settings.llm is None
    assert settings.alerts.poll_interval == 30 and settings.alerts.states == ("ABEND", "FAIL", "ERROR")


def test_master_and_backups_in_order() -> None:
    settings = load_settings({**BASE, "TWS_URL": "https://a:31116/twsd, https://b:31116"})
    assert settings.tws.urls == ("https://a:31116/twsd", "https://b:31116/twsd")


@pytest.mark.parametrize(("env", "named"), [
    ({"TWS_URL": ""}, "TWS_URL"),
    ({"TWS_URL": "ftp://x"}, "TWS_URL"),
    ({"TWS_URL": "https://u:p@x"}, "TWS_URL"),
    ({"TWS_PASSWORD": ""}, "TWS_PASSWORD"),
    ({"TWS_TIMEOUT": "soon"}, "TWS_TIMEOUT"),
    ({"TWS_VERIFY_TLS": "maybe"}, "TWS_VERIFY_TLS"),
    ({"TWS_CA_BUNDLE": "/nonexistent/ca.pem"}, "TWS_CA_BUNDLE"),
    ({"REDIS_URL": "http://x"}, "REDIS_URL"),
    ({"PORT": "99999"}, "PORT"),
    ({"LOG_LEVEL": "LOUD"}, "LOG_LEVEL"),
    ({"LOG_FORMAT": "xml"}, "LOG_FORMAT"),
    ({"SLACK_BOT_TOKEN": "xoxb-1"}, "SLACK_SIGNING_SECRET"),
    ({"SLACK_SIGNING_SECRET": "abc"}, "SLACK_BOT_TOKEN"),
    ({"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_APP_TOKEN": "nope"}, "SLACK_APP_TOKEN"),
    ({"RESYNC_ALERT_CHANNELS": "C0123"}, "RESYNC_ALERT_CHANNELS"),
    ({"RESYNC_POLL_INTERVAL": "0"}, "RESYNC_POLL_INTERVAL"),
    ({"RESYNC_POLICY": "/nonexistent.toml"}, "RESYNC_POLICY"),
    ({"RESYNC_CONFIG": "/nonexistent.toml"}, "RESYNC_CONFIG"),
])
def test_bad_value_names_the_setting(env: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings({**BASE, **env})
    assert named in str(caught.value)
    assert "\n" not in str(caught.value)


def test_toml_file_and_environment_precedence(tmp_path: Path) -> None:
    path = tmp_path / "resync.toml"
    path.write_text('[tws]\nurl = "https://from-file:31116"\ntimeout = 4\n[alerts]\nchannels = ["slack:C1"]\n'
                    '[[alerts.routes]]\nstream = "PAY@"\ntargets = "slack:C2"\n')
    settings = load_settings({"RESYNC_CONFIG": str(path), "TWS_API_KEY": "key-123456", "TWS_TIMEOUT": "7"})
    assert settings.tws.urls == ("https://from-file:31116/twsd",)
    assert settings.tws.timeout == 7.0  # the environment wins
    assert settings.alerts.default_targets == ("slack:C1",)
    assert settings.alerts.routes[0].stream == "PAY@" and settings.alerts.routes[0].targets == ("slack:C2",)


def test_example_config_is_valid() -> None:
    root = Path(__file__).resolve().parents[1]
    settings = load_settings({"RESYNC_CONFIG": str(root / "config/resync.example.toml"), "TWS_PASSWORD": "x" * 8})
    assert len(settings.tws.urls) == 2 and len(settings.alerts.routes) == 3


def test_secrets_are_not_in_repr() -> None:
    settings = load_settings({**BASE, "SLACK_BOT_TOKEN": "xoxb-very-secret", "SLACK_SIGNING_SECRET": "sign-secret",
                              "LLM_MODEL": "openai/x", "LLM_API_KEY": "sk-live-key", "RESYNC_API_TOKEN": "tok-12345"})
    text = repr(settings)
    for secret in ("s3cret-pass", "xoxb-very-secret", "sign-secret", "sk-live-key", "tok-12345"):
        assert secret not in text
        assert secret in settings.secrets()
