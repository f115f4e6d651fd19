"""The TWS read cache (TWS_READ_CACHE_TTL) over HTTP against the simulator: identical reads in flight
share one request, answers live ``ttl`` seconds, the state check and actions never use it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from bot.config import TwsSettings, load_settings
from bot.simulator import Simulator, run_simulator
from bot.tws.client import TwsClient
from bot.tws.names import JobRef

Sim = tuple[Simulator, str]


@pytest.fixture
async def sim() -> AsyncIterator[Sim]:
    async with run_simulator(jobs=800, seed=4, failure_rate=0.1, speed=0) as pair:
        yield pair


def client(url: str, ttl: float, **overrides: Any) -> TwsClient:
    return TwsClient(TwsSettings(urls=(url,), user="resync", password="resync", timeout=3.0, retries=1,
                                 read_cache_ttl=ttl, **overrides), backoff=0.01)


def requests(sim: Simulator, kind: str) -> int:
    return sim.stats["kinds"].get(kind, {}).get("requests", 0)


async def test_fifty_identical_questions_in_flight_cost_one_request(sim: Sim) -> None:
    simulator, url = sim
    simulator.set_faults(latency_ms=50)  # all fifty are in flight together
    async with client(url, ttl=5) as tws:
        answers = await asyncio.gather(*(tws.query_jobs(status="FAILED") for _ in range(50)))
        assert requests(simulator, "job_query") == 1
        assert len({tuple(j.id for j in a) for a in answers}) == 1 and answers[0]
        again = await tws.query_jobs(status="FAILED")  # within the ttl: reused
        assert requests(simulator, "job_query") == 1 and [j.id for j in again] == [j.id for j in answers[0]]
        await tws.query_jobs(status="HOLD")  # another question is another read
        assert requests(simulator, "job_query") == 2


async def test_answers_expire_and_zero_turns_it_off(sim: Sim) -> None:
    simulator, url = sim
    async with client(url, ttl=0.2) as tws:
        await tws.count_jobs(status="FAILED")
        await tws.count_jobs(status="FAILED")
        assert requests(simulator, "job_count") == 1
        await asyncio.sleep(0.25)
        await tws.count_jobs(status="FAILED")
        assert requests(simulator, "job_count") == 2
    async with client(url, ttl=0) as tws:
        await asyncio.gather(*(tws.count_jobs(status="FAILED") for _ in range(5)))
        assert requests(simulator, "job_count") == 7


async def test_the_state_check_and_the_answer_after_an_action_are_fresh(sim: Sim) -> None:
    simulator, url = sim
    failed = simulator.jobs_in_state("ABEND")[0]
    ref = JobRef(job=failed["name"], stream=failed["jobStreamName"], workstation=failed["workstation"])
    async with client(url, ttl=60) as tws:
        assert (await tws.resolve_job(ref)).status == "ABEND"
        await tws.get_job(failed["id"])
        await tws.get_job(failed["id"])
        assert requests(simulator, "job_get") == 2  # a job read by id is the state check: never cached
        failed_before = {j.id for j in await tws.query_jobs(status="FAILED")}
        await tws.rerun(failed["id"])
        # "status X" right after "rerun X": the new state, not the cached one
        assert (await tws.resolve_job(ref)).status == "READY"
        assert failed["id"] in failed_before and failed["id"] not in {j.id for j in await tws.query_jobs(status="FAILED")}


async def test_a_read_in_flight_during_an_action_is_not_kept(sim: Sim) -> None:
    simulator, url = sim
    failed = simulator.jobs_in_state("ABEND")[0]
    async with client(url, ttl=60) as tws:
        simulator.set_faults(latency_ms=150)
        slow = asyncio.create_task(tws.query_jobs(status="FAILED"))
        await asyncio.sleep(0.05)
        simulator.clear_faults()
        await tws.rerun(failed["id"])  # lands while the query is on its way
        await slow
        after = await tws.query_jobs(status="FAILED")  # asked again, not the pre-action answer
        assert failed["id"] not in {j.id for j in after}
        assert requests(simulator, "job_query") == 2


async def test_a_cancelled_waiter_does_not_cancel_the_others(sim: Sim) -> None:
    simulator, url = sim
    simulator.set_faults(latency_ms=100)
    async with client(url, ttl=5) as tws:
        first = asyncio.create_task(tws.count_jobs(status="FAILED"))
        second = asyncio.create_task(tws.count_jobs(status="FAILED"))
        await asyncio.sleep(0.02)
        first.cancel()
        assert await second > 0 and requests(simulator, "job_count") == 1


async def test_the_uncached_view_shares_the_connection_but_not_the_answers(sim: Sim) -> None:
    simulator, url = sim
    async with client(url, ttl=60) as tws:
        fresh = tws.uncached()
        await tws.count_jobs(status="FAILED")
        await fresh.count_jobs(status="FAILED")
        await fresh.count_jobs(status="FAILED")
        assert requests(simulator, "job_count") == 3
        await fresh.close()  # closes nothing: the session is the cached client's
        assert (await tws.engine_info()).version


def test_the_setting() -> None:
    base = {"TWS_URL": "https://tws.example:31116", "TWS_USER": "u", "TWS_PASSWORD": "p"}
    assert load_settings(base).tws.read_cache_ttl == 5.0
    assert load_settings({**base, "TWS_READ_CACHE_TTL": "0"}).tws.read_cache_ttl == 0.0
    with pytest.raises(Exception, match="TWS_READ_CACHE_TTL"):
        load_settings({**base, "TWS_READ_CACHE_TTL": "-1"})


async def test_a_log_not_retrieved_yet_is_asked_again_not_served_from_the_cache() -> None:
    async with run_simulator(jobs=300, seed=4, speed=0, log_delay=60) as (simulator, url):
        job = simulator.jobs_in_state("SCHED")[0]
        simulator.force_fail(job["id"], 8)
        async with client(url, ttl=60) as tws:
            with pytest.raises(Exception, match="EQQM637I"):
                await tws.job_log(job["id"], tail=10)
            assert requests(simulator, "job_log") == 2  # the pause and the second try reached TWS
            simulator.advance(61)
            assert "Exit Status : 8" in (await tws.job_log(job["id"], tail=10)).text
            assert requests(simulator, "job_log") == 3
