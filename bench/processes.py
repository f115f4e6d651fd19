"""Child processes for the benchmarks: the simulator and the bot run apart from the load, as in
production, so their figures do not share one event loop with the measuring side."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
USER = PASSWORD = "resync"


# A program under cProfile timed by its main thread's CPU clock: the event loop's own cost, without
# the time spent waiting (for the GIL, the network, the SQLite thread, an SDK's requests threads).
# ``resync serve`` leaves with ``os._exit`` once its app has closed: write the statistics first.
_PROFILED = """
import cProfile, os, runpy, sys, time
out, target = sys.argv[1], sys.argv[2]
sys.argv = [target, *sys.argv[3:]]
profile = cProfile.Profile(time.thread_time)
leave = os._exit
def _exit(code):
    profile.disable()
    profile.dump_stats(out)
    leave(code)
os._exit = _exit
try:
    if target.endswith(".py"):
        profile.runcall(runpy.run_path, target, run_name="__main__")
    else:
        profile.runcall(runpy.run_module, target, run_name="__main__", alter_sys=True)
finally:
    profile.dump_stats(out)
"""


def profiled(out: Path) -> list[str]:
    """The command prefix that runs a module (``bot``) or a script (``x.py``), with its arguments
    after it, under cProfile, writing the statistics to ``out`` when it stops."""
    return [sys.executable, "-c", _PROFILED, str(out)]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@asynccontextmanager
async def resync_process(args: list[str], env: dict[str, str], ready_url: str, *, root: Path = ROOT,
                         command: list[str] | None = None) -> AsyncIterator[subprocess.Popen[bytes]]:
    """A ``resync`` subcommand (``python -m bot``, run from ``root``) in its own process, until
    ``ready_url`` answers 200; ``command`` runs another program instead."""
    # ``python -m bot`` from the checkout: the same command whether or not the project is installed
    errors = tempfile.TemporaryFile()  # not a pipe: a chatty child would block once it filled up
    process = subprocess.Popen(command or [sys.executable, "-m", "bot", *args], cwd=root,
                               env={**os.environ, "LOG_LEVEL": "WARNING", **env},
                               stdout=subprocess.DEVNULL, stderr=errors)
    try:
        async with aiohttp.ClientSession() as session:
            for _ in range(600):
                if process.poll() is not None:
                    errors.seek(0)
                    why = errors.read().decode(errors="replace")[-2000:]
                    raise SystemExit(f"{args[0]} exited: {why}")
                try:
                    async with session.get(ready_url) as response:
                        if response.status == 200:
                            break
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.1)
            else:
                raise SystemExit(f"{args[0]} did not become ready at {ready_url}")
        yield process
    finally:
        process.terminate()
        process.wait(timeout=15)
        errors.close()


@asynccontextmanager
async def simulator(jobs: int, *, seed: int = 42, failure_rate: float = 0.05, speed: float = 0.0) -> AsyncIterator[str]:
    """``resync simulator`` in a child process; yields its base URL once it answers."""
    port = free_port()
    args = ["simulator", "--port", str(port), "--jobs", str(jobs), "--seed", str(seed),
            "--failure-rate", str(failure_rate), "--speed", str(speed)]
    base = f"http://127.0.0.1:{port}/twsd"
    async with resync_process(args, {"TWS_USER": USER, "TWS_PASSWORD": PASSWORD}, f"{base}/sim/stats"):
        yield base
