"""Benchmark of the TWS client against the simulator: `python bench/tws_client.py [--quick]`.

The simulator runs in its own process (as a real TWS would), on a free loopback port, so the
figures are the client's pipeline plus a real HTTP server, not two halves of one event loop.
Request and byte counts come from the simulator's /sim/stats.

The read cache (``TWS_READ_CACHE_TTL``, issue 14 item 4) is measured side by side: 100 identical
questions ("what failed?", "status JOB", "log JOB"), half asked at once and half one after the
other within the TTL, with the cache off (0) and on (the default, 5 s), in TWS requests.
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
from bot.config import LogSettings, TwsSettings  # noqa: E402
from bot.logs import configure_logging  # noqa: E402
from bot.tws.client import TwsClient  # noqa: E402
from bot.tws.names import JobRef  # noqa: E402


async def sim_stats(base: str) -> dict[str, Any]:
    async with aiohttp.ClientSession() as session, session.get(f"{base}/sim/stats") as response:
        return await response.json()


def tws(base: str, cache_ttl: float = 0.0) -> TwsClient:
    return TwsClient(TwsSettings(urls=(base,), user="resync", password="resync", timeout=60.0,
                                 read_cache_ttl=cache_ttl))


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
        await client.job_log(job.id, tail=50, run_id=job.run_id)  # the first learns which documented form works
        log, seconds, requests, size = await measured(base, lambda: client.job_log(job.id, tail=50, run_id=job.run_id))
        total = "an unknown number of" if log.total_lines is None else f"{log.total_lines}"
        print(f"  log tail 50 of {total} lines ({log.source}): {requests} request(s), {size:,} bytes, "
              f"{seconds * 1000:.1f} ms")


async def identical_questions(base: str) -> None:
    """TWS requests per 100 identical questions, read cache off and on."""
    print("  TWS requests per 100 identical questions (50 at once, then 50 one by one):")
    async with tws(base) as probe:
        job = (await probe.query_jobs(status="FAILED"))[0]
    ref = JobRef(job=job.name, stream=job.stream, workstation=job.workstation)
    questions: dict[str, Callable[[TwsClient], Awaitable[Any]]] = {
        "what failed?": lambda c: c.query_jobs(status="FAILED"),
        "status JOB": lambda c: c.resolve_job(ref),
        "log JOB": lambda c: c.job_log(job.id, tail=60, run_id=job.run_id),
    }
    for question, ask in questions.items():
        row = []
        for ttl in (0.0, 5.0):
            async with tws(base, cache_ttl=ttl) as client:
                await client.engine_info()
                await client.job_log(job.id, tail=5, run_id=job.run_id)  # the log form is known, as in steady state

                async def hundred() -> None:
                    await asyncio.gather(*(ask(client) for _ in range(50)))
                    for _ in range(50):
                        await ask(client)

                _, seconds, requests, _ = await measured(base, hundred)
                row.append(f"TTL {ttl:g} s: {requests:3} requests in {seconds * 1000:6.1f} ms")
        print(f"    {question:<13} " + "   ".join(row))


async def main(quick: bool) -> None:
    configure_logging(LogSettings(level="WARNING", format="console"))  # figures on stdout, not debug lines
    sizes = (2_000, 10_000) if quick else (10_000, 100_000)
    samples = 100 if quick else 400
    for jobs in sizes:
        print(f"plan of {jobs:,} jobs")
        async with simulator(jobs, seed=42, speed=0) as base:
            plan = await full_query(base, jobs)
            await lookups(base, plan, samples)
            if jobs == sizes[-1]:
                await failed_query(base)
                await identical_questions(base)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller plans, fewer samples")
    asyncio.run(main(parser.parse_args().quick))
