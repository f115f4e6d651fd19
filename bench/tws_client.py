"""Benchmark of the TWS client against the simulator: `python bench/tws_client.py [--quick]`.

The simulator runs in its own process (as a real TWS would), on a free loopback port, so the
figures are the client's pipeline plus a real HTTP server, not two halves of one event loop.
Request and byte counts come from the simulator's /sim/stats.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.processes import simulator  # noqa: E402
from bot.config import TwsSettings
from bot.tws.client import TwsClient  # noqa: E402
from bot.tws.names import JobRef  # noqa: E402


async def sim_stats(base: str) -> dict[str, Any]:
    async with aiohttp.ClientSession() as session, session.get(f"{base}/sim/stats") as response:
        return await response.json()


def tws(base: str) -> TwsClient:
    return TwsClient(TwsSettings(urls=(base,), user="resync", password="resync", timeout=60.0))


async def measured(base: str, work: Callable[[], Awaitable[Any]]) -> tuple[Any, float, int, int]:
    """(result, seconds, requests, bytes) of one piece of work."""
    before = await sim_stats(base)
    started = time.perf_counter()
    result = await work()
    seconds = time.perf_counter() - started
    after = await sim_stats(base)
    return result, seconds, after["requests"] - before["requests"], after["bytes"] - before["bytes"]


def percentiles(samples: list[float]) -> str:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return f"p50 {statistics.median(ordered) * 1000:7.2f} ms   p99 {p99 * 1000:7.2f} ms   (n={len(ordered)})"


async def full_query(base: str, jobs: int) -> list[Any]:
    plan: list[Any] = []
    async with tws(base) as client:
        await client.engine_info()  # warm the connection pool
        for page_size in (500, 1000):
            plan, seconds, requests, size = await measured(base, lambda: client.query_jobs(page_size=page_size))
            assert len(plan) == jobs, (len(plan), jobs)
            print(f"  full plan query, page {page_size:4}: {len(plan):7,} jobs in {seconds:6.2f} s = "
                  f"{len(plan) / seconds:9,.0f} jobs/s   ({requests} requests, {size / 1e6:6.1f} MB)")
    return plan


async def lookups(base: str, plan: list[Any], samples: int) -> None:
    rng = random.Random(7)
    picks = rng.sample(plan, min(samples, len(plan)))
    async with tws(base) as client:
        await client.engine_info()
        timings = []
        for job in picks:
            started = time.perf_counter()
            await client.get_job(job.id)
            timings.append(time.perf_counter() - started)
        print(f"  get_job      {percentiles(timings)}")
        timings = []
        for job in picks[: max(20, samples // 4)]:
            started = time.perf_counter()
            found = await client.resolve_job(JobRef(job=job.name, stream=job.stream, workstation=job.workstation))
            timings.append(time.perf_counter() - started)
            assert found.id == job.id
        print(f"  resolve_job  {percentiles(timings)}   (WS#STREAM.JOB, the server scans the plan)")


async def failed_query(base: str) -> None:
    async with tws(base) as client:
        await client.engine_info()
        failed, seconds, requests, size = await measured(base, lambda: client.query_jobs(status="FAILED"))
        print(f"  FAILED query: {len(failed)} jobs, {requests} request(s), {size:,} bytes, {seconds * 1000:.1f} ms")
        count, seconds, requests, size = await measured(base, lambda: client.count_jobs(status="FAILED"))
        print(f"  FAILED count: {count} jobs, {requests} request(s), {size:,} bytes, {seconds * 1000:.1f} ms")
        job = failed[0]
        log, seconds, requests, size = await measured(base, lambda: client.job_log(job.id, tail=50, run_id=job.run_id))
        print(f"  log tail 50 of {log.total_lines} lines: {requests} request(s), {size:,} bytes, {seconds * 1000:.1f} ms")


async def main(quick: bool) -> None:
    sizes = (2_000, 10_000) if quick else (10_000, 100_000)
    samples = 100 if quick else 400
    for jobs in sizes:
        print(f"plan of {jobs:,} jobs")
        async with simulator(jobs, seed=42, speed=0) as base:
            plan = await full_query(base, jobs)
            await lookups(base, plan, samples)
            if jobs == sizes[-1]:
                await failed_query(base)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller plans, fewer samples")
    asyncio.run(main(parser.parse_args().quick))
