"""`resync tws ...` as an operator runs it, in a child process against the simulator over HTTP:
both workstation forms list the same jobs, a printed name pastes back, the log costs one request,
and `| head` ends quietly."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from bot.simulator import run_simulator

ROOT = Path(__file__).resolve().parent.parent


async def _resync(url: str, *args: str, tmp: Path) -> tuple[int, str, str]:
    env = {**os.environ, "TWS_URL": url, "TWS_USER": "resync", "TWS_PASSWORD": "resync",
           "RESYNC_DATA_DIR": str(tmp), "LOG_LEVEL": "WARNING"}
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "bot", *args, cwd=ROOT, env=env,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await proc.communicate()
    return proc.returncode or 0, out.decode(), err.decode()


async def test_workstation_forms_paste_back_and_one_log_request(tmp_path: Path) -> None:
    async with run_simulator(jobs=1500, seed=42, failure_rate=0.1, speed=0) as (sim, url):
        rc, bare, _ = await _resync(url, "tws", "jobs", "--workstation", "AGT01", tmp=tmp_path)
        rc2, slashed, _ = await _resync(url, "tws", "jobs", "--workstation", "/AGT01", tmp=tmp_path)
        expected = sum(1 for j in sim.jobs_in_state() if j["workstation"] == "/AGT01")
        assert rc == rc2 == 0 and bare == slashed and bare.splitlines()[-1].startswith(f"{expected} job(s)") and expected
        rc, listed, _ = await _resync(url, "tws", "jobs", "--workstation", "LNX_ETL01", "--status", "FAILED", tmp=tmp_path)
        status, _, name, job_id = listed.splitlines()[0].split()
        assert name.startswith("/ETL/LNX_ETL01#")  # a foldered workstation is printed with its path
        sim.reset_stats()
        rc, shown, err = await _resync(url, "tws", "job", name, "--log", tmp=tmp_path)
        assert rc == 0 and f"id: {job_id}" in shown and "Exit Status" in shown, err
        assert sim.stats["kinds"]["job_log"]["requests"] == 1 and "job_get" not in sim.stats["kinds"]


async def test_a_closed_pipe_ends_quietly(tmp_path: Path) -> None:
    async with run_simulator(jobs=3000, seed=1, speed=0) as (_, url):
        env = {**os.environ, "TWS_URL": url, "TWS_USER": "resync", "TWS_PASSWORD": "resync",
               "RESYNC_DATA_DIR": str(tmp_path), "LOG_LEVEL": "WARNING"}
        read, write = os.pipe()
        proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "bot", "tws", "jobs", "--limit", "3000",
                                                    cwd=ROOT, env=env, stdout=write, stderr=asyncio.subprocess.PIPE)
        os.close(write)
        with os.fdopen(read, "rb") as reader:  # `| head -1`: one line, then the reader goes away
            assert await asyncio.to_thread(reader.readline)  # in a thread: the simulator shares this loop
        _, err = await proc.communicate()
        assert proc.returncode == 141 and b"Traceback" not in err and b"BrokenPipe" not in err, err.decode()


async def test_health_says_what_tws_answered_without_contradiction(tmp_path: Path) -> None:
    async with run_simulator(jobs=50, seed=3, speed=0) as (sim, url):
        sim.set_faults(outage=True)  # a 503 with a TWS message: TWS answered, so it is reachable
        rc, out, err = await _resync(url, "tws", "health", tmp=tmp_path)
        assert rc == 1 and out.startswith("TWS answered with an error: AWSJCO005E"), (out, err)
        assert "NOT reachable" not in out and "TWS answered: " not in out
        sim.set_faults(auth_fail=True)
        rc, out, err = await _resync(url, "tws", "health", tmp=tmp_path)
        assert rc == 1 and out.startswith("TWS is reachable but refused the credentials (HTTP 401"), (out, err)
        assert out.count("refused the credentials") == 1
