"""The ``resync`` command as a user runs it: a real process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _resync(*args: str, stdin: str | None = None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("TWS_", "SLACK_", "LLM_", "RESYNC_", "REDIS_"))}
    return subprocess.run([sys.executable, "-m", "bot", *args], input=stdin, capture_output=True, text=True,
                          cwd=ROOT, env={**clean, **(env or {})}, timeout=180)


def test_ask_dry_run_json_reads_stdin() -> None:
    result = _resync("ask", "--dry-run", "--json", "-", stdin="rerun CPU1#PAYROLL_DAILY.EXTRACT01\nblorp zorp\nhelp\n")
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert lines[0] == {"tool": "rerun_job", "args": {"job": "EXTRACT01", "stream": "PAYROLL_DAILY", "workstation": "CPU1"}}
    assert lines[1] == {"tool": None, "args": {}}
    assert lines[2] == {"tool": "help", "args": {}}


def test_missing_setting_is_one_clear_line(tmp_path: Path) -> None:
    result = _resync("tws", "health", env={"RESYNC_DATA_DIR": str(tmp_path)})
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "resync: TWS_URL is required (e.g. https://mdm.example.com:31116; comma-separate backups)"]


def test_unreachable_redis_stops_start_up(tmp_path: Path) -> None:
    result = _resync("audit", "tail", env={"REDIS_URL": "redis://:hunter2pw@127.0.0.1:1/0"})
    assert result.returncode == 2 and "redis unreachable" in result.stderr
    assert "hunter2pw" not in result.stderr + result.stdout


def test_demo_answers_in_the_console(tmp_path: Path) -> None:
    script = "quais jobs abendaram?\nhelp\nexit\n"
    result = _resync("demo", "--jobs", "500", stdin=script, env={"RESYNC_DATA_DIR": str(tmp_path)})
    assert result.returncode == 0, result.stderr
    assert "Resync demo" in result.stdout and "job(s)" in result.stdout and "What I can do" in result.stdout
