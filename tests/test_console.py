"""The console reads like a terminal program: rendered markup, alerts above the prompt, Ctrl-C at once,
``resync ask`` printing only the answer."""

from __future__ import annotations

import asyncio
import io
import os
import pty
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

from adapters.console import ConsoleNotifier, Terminal, render, to_terminal
from bot.events import Button, Field, Reply
from bot.simulator import run_simulator

ROOT = Path(__file__).resolve().parents[1]


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_slack_markup_is_rendered_for_a_terminal() -> None:
    reply = Reply(title="CPU1#S.J", text="`CPU1#S.J`: *ABEND* see <https://x.example/r|the runbook>\n> AWSBIN076E",
                  fields=(Field(label="Status", value="*ABEND* (Error)"),), context="_requested by ana_")
    shown = render(reply)
    assert "`" not in shown and "*" not in shown and "_requested" not in shown
    assert "CPU1#S.J: ABEND" in shown and "the runbook (https://x.example/r)" in shown and "│ AWSBIN076E" in shown
    assert "\x1b[1mABEND\x1b[0m" in render(reply, styled=True)
    assert to_terminal("5 &lt; 6 &amp; `code_name`") == "5 < 6 & code_name"


def test_code_blocks_stay_verbatim() -> None:
    reply = Reply(text="log", code="rc=*8* `x`")
    assert "rc=*8* `x`" in render(reply)


async def test_an_alert_while_typing_prints_above_the_prompt() -> None:
    out = _Tty()
    terminal = Terminal(out)
    terminal._prompt = "you> "  # the operator is at the prompt (set by Terminal.read while input() blocks)
    await ConsoleNotifier(terminal=terminal).post("console", Reply(title="ALERT X", text="*ABEND*",
                                                                   buttons=(Button(label="Ack", action_id="a", value="v"),)))
    written = out.getvalue()
    assert written.startswith("\r\x1b[2K") and written.endswith("you> ")
    assert "ABEND" in written and "*ABEND*" not in written and "button: Ack" in written


async def test_an_alert_in_portuguese_is_portuguese() -> None:
    out = io.StringIO()
    await ConsoleNotifier(terminal=Terminal(out)).post("console", Reply(text="x", lang="pt",
                                                                        buttons=(Button(label="Reconhecer", action_id="a", value="v"),)))
    assert "[ALERTA]" in out.getvalue() and "botão: Reconhecer" in out.getvalue()


def _read_until(fd: int, marker: bytes, timeout: float) -> bytes:
    seen = b""
    deadline = time.monotonic() + timeout
    while marker not in seen and time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.2)
        if ready:
            try:
                seen += os.read(fd, 65536)
            except OSError:
                break
    return seen


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("TWS_", "SLACK_", "LLM_", "RESYNC_", "REDIS_", "LOG_"))}
    return {**clean, "RESYNC_DATA_DIR": str(tmp_path), **extra}


def test_ctrl_c_ends_the_demo_at_once(tmp_path: Path) -> None:
    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "bot", "demo", "--jobs", "300"], cwd=ROOT, env=_env(tmp_path),
                            stdin=slave, stdout=slave, stderr=slave, start_new_session=True)
    os.close(slave)
    try:
        assert b"you> " in _read_until(master, b"you> ", 60)
        started = time.monotonic()
        os.killpg(proc.pid, signal.SIGINT)  # what the terminal does on Ctrl-C
        proc.wait(timeout=10)
        assert time.monotonic() - started < 5
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(master)


async def test_ask_at_a_terminal_prints_only_the_answer(tmp_path: Path) -> None:
    async with run_simulator(jobs=300, seed=3) as (_sim, url):
        master, slave = pty.openpty()  # stderr is a terminal, stdout is read
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", "ask", "how many jobs are there?", cwd=ROOT, stdout=subprocess.PIPE,
            stderr=slave, stdin=subprocess.DEVNULL,
            env=_env(tmp_path, TWS_URL=url, TWS_USER="resync", TWS_PASSWORD="resync"))
        os.close(slave)
        out, _ = await asyncio.wait_for(proc.communicate(), 60)
        errors = await asyncio.to_thread(_read_until, master, b"\x00", 0.5)
        os.close(master)
    assert proc.returncode == 0
    assert out.decode().strip() == "• 300 job(s) in the current plan."
    assert b'{"' not in errors, errors
