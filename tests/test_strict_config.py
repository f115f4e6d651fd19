"""Issue 10, item 7: a configuration typo stops start-up, naming the key, instead of passing silently.

The failures: policy ``read = "no"`` granted read; misspelt keys or tables (``actons``, ``[binding]``,
``[tws] timout``) were ignored; ``RESYNC_ALERT_STATES=ABNED`` was accepted; ``resync serve --port
99999`` and a busy port ended in tracebacks after the store and the poller had started.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bot.config import load_settings
from bot.errors import ConfigError
from bot.policy import load_policy

ROOT = Path(__file__).resolve().parent.parent
BASE = {"TWS_URL": "http://127.0.0.1:9", "TWS_USER": "u", "TWS_PASSWORD": "p"}


def _config(tmp_path: Path, text: str) -> dict[str, str]:
    path = tmp_path / "resync.toml"
    path.write_text(text)
    return {**BASE, "RESYNC_CONFIG": str(path)}


@pytest.mark.parametrize(("toml", "named"), [
    ("[tws]\ntimout = 5\n", "unknown setting [tws] timout (did you mean timeout?)"),
    ("[alert]\nstates = ['ABEND']\n", "unknown table [alert] (did you mean alerts?)"),
    ("[store]\nredis_max_conection = 5\n", "did you mean redis_max_connections?"),
    ("[[alerts.routes]]\nstram = 'X'\ntargets = ['slack:C1']\n", "unknown key 'stram' (did you mean stream?)"),
    ("[[alerts.routes]]\nstream = 'X'\nmute = 'yes'\n", "mute has the wrong type"),
    ("[alerts]\nenabled = 1\n", "RESYNC_ALERTS ([alerts.enabled]) must be true or false"),
    ("[alerts]\nstates = ['ABEND', 3]\n", "must be a comma-separated list"),
    ("[tws]\nretries = 2.5\n", "TWS_RETRIES ([tws.retries]) must be a whole number"),
    ("[tws]\ntimeout = true\n", "TWS_TIMEOUT ([tws.timeout]) must be a number"),
    ("[alerts]\nstates = ['ABNED']\n", "'ABNED' is not a TWS job state (did you mean ABEND?)"),
    ("tws = 3\n", "tws must be a table"),
])
def test_config_typos_stop_start_up_naming_the_key(tmp_path: Path, toml: str, named: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(_config(tmp_path, toml))
    assert named in str(caught.value)


def test_alert_states_from_the_environment_are_checked() -> None:
    with pytest.raises(ConfigError, match="did you mean ABEND"):
        load_settings({**BASE, "RESYNC_ALERT_STATES": "ABNED,FAIL"})
    assert load_settings({**BASE, "RESYNC_ALERT_STATES": "abend,FAIL"}).alerts.states == ("ABEND", "FAIL")


def test_the_example_config_and_known_keys_still_load(tmp_path: Path) -> None:
    settings = load_settings({**BASE, "RESYNC_CONFIG": str(ROOT / "config" / "resync.example.toml"),
                              "SLACK_BOT_TOKEN": "", "RESYNC_ALERT_CHANNELS": ""})
    assert settings.alerts.routes and settings.web.port == 8080
    # Keys of a feature that is off are still known (no Slack token, no LLM model here).
    load_settings(_config(tmp_path, "[slack]\ncommand = '/ops'\n[llm]\ntimeout = 5\n"))


@pytest.mark.parametrize(("policy", "named"), [
    ('[roles.viewer]\nread = "no"\n[bindings]\n"http:ana" = ["viewer"]\n', "read must be true or false, got 'no'"),
    ('[roles.op]\nactons = ["rerun"]\n[bindings]\n"http:ana" = ["op"]\n', "unknown key 'actons' (did you mean actions?)"),
    ('[roles.op]\nactions = ["rerun"]\n[binding]\n"http:ana" = ["op"]\n', "unknown table [binding] (did you mean bindings?)"),
    ('[group]\nops = ["http:ana"]\n', "unknown table [group] (did you mean groups?)"),
])
def test_policy_typos_stop_start_up_naming_the_key(tmp_path: Path, policy: str, named: str) -> None:
    path = tmp_path / "policy.toml"
    path.write_text(policy)
    with pytest.raises(ConfigError) as caught:
        load_policy(path)
    assert named in str(caught.value)


def _resync(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bot", *args], cwd=ROOT, env={**os.environ, **env},
                          capture_output=True, text=True, timeout=60)


def test_a_bad_port_is_one_line_before_anything_starts(tmp_path: Path) -> None:
    done = _resync("serve", "--port", "99999", env={**BASE, "RESYNC_DATA_DIR": str(tmp_path)})
    assert done.returncode == 2
    assert "99999 is not a port (0-65535)" in done.stderr and "Traceback" not in done.stderr + done.stdout
    assert not (tmp_path / "state.db").exists()  # the store never opened


def test_a_busy_port_is_one_line_before_anything_starts(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        started = time.monotonic()
        done = _resync("serve", "--host", "127.0.0.1", "--port", str(port),
                       env={**BASE, "RESYNC_DATA_DIR": str(tmp_path), "LOG_LEVEL": "INFO"})
    assert done.returncode == 2 and time.monotonic() - started < 30
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert lines == [f"resync: cannot listen on 127.0.0.1:{port}: Address already in use"], done.stderr
    assert "store_opened" not in done.stdout and not (tmp_path / "state.db").exists()


def test_a_config_error_never_shows_a_traceback(tmp_path: Path) -> None:
    done = _resync("serve", env={**_config(tmp_path, "[tws]\ntimout = 5\n"), "RESYNC_DATA_DIR": str(tmp_path)})
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.strip() == "resync: RESYNC_CONFIG: unknown setting [tws] timout (did you mean timeout?)"
