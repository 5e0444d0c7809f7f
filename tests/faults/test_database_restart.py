"""PostgreSQL crashes mid-run and comes back (a private server, never the shared one).

While it is away the API answers every publish promptly with 503, a problem document and a
Retry-After, never a 500 and never a hang; amebo reconnects by itself; every event that got a
2xx is delivered afterwards.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from tests.faults.harness import (
    AmeboProcess,
    Endpoint,
    Publisher,
    processes,
    projections_match_log,
    register,
    scale,
    settled,
    tally,
)
from tests.faults.postgres import PrivatePostgres, private_postgres

SUBSCRIBERS = ("billing", "shipping")
# The pool waits this long for a connection before the API gives up with a 503 (runtime.py):
# a shorter outage only delays answers, so each outage outlasts it. A publish can wait for two
# such timeouts: queued behind a group commit that is itself waiting for a connection.
POOL_TIMEOUT = 10.0
SLOWEST_ANSWER = 2 * POOL_TIMEOUT + 3
EVENTS = scale(200, 3000)
RATE = scale(50, 100)
RESTARTS = scale(1, 3)
OUTAGE = scale(12, 20)  # seconds the database stays down each time


@pytest.fixture
def postgres() -> Iterator[PrivatePostgres]:
    with private_postgres() as server:
        yield server


async def test_database_crash_and_restart(postgres: PrivatePostgres, tmp_path: Path) -> None:
    url = postgres.url("amebo")
    endpoint = Endpoint()
    await endpoint.start()
    try:
        async with processes() as started:
            serve = AmeboProcess("serve", url, tmp_path)
            started.append(serve)
            await serve.start()
            auth = await register(serve.url, dict.fromkeys(SUBSCRIBERS, endpoint))
            publisher = Publisher(serve.url, auth, request_timeout=SLOWEST_ANSWER + 5)
            publishing = asyncio.create_task(publisher.run(range(EVENTS), RATE))

            outages = []
            interval = EVENTS / RATE / (RESTARTS + 1)
            for _ in range(RESTARTS):
                await asyncio.sleep(interval)  # pacing the faults through the run
                postgres.stop("immediate")
                down_at = asyncio.get_running_loop().time()
                health = await _health_while_down(serve.url, OUTAGE)
                postgres.start()
                outages.append((down_at, asyncio.get_running_loop().time()))
                assert health and all(status == 503 for status in health), health
            await publishing

            # The API came back by itself: no restart of amebo, and publishes succeed again.
            assert serve.alive() and serve.starts == 1
            answered_in_outage = [
                took
                for at, took in publisher.latencies
                if any(start <= at <= end + 1 for start, end in outages)
            ]
            assert publisher.answers["503"] > 0, publisher.answers
            assert not publisher.unexpected, publisher.unexpected[:5]
            assert publisher.slowest <= SLOWEST_ANSWER, publisher.slowest
            assert all(code in ("200", "201", "503") for code in publisher.answers), (
                publisher.answers
            )

            accepted = set(publisher.accepted.values())
            expected = {(event, name) for event in accepted for name in SUBSCRIBERS}
            await endpoint.wait_for(expected, timeout=scale(60, 180))
            result = tally(
                f"PostgreSQL crashed x{RESTARTS} for {OUTAGE}s",
                EVENTS,
                accepted,
                SUBSCRIBERS,
                endpoint.delivered,
            )
            print(
                f"  during the outage: {publisher.answers['503']} answers of 503, slowest "
                f"answer {max(answered_in_outage, default=0):.2f}s"
            )
            assert result.lost == 0
            # Sends whose outcome could not be recorded while the database was away are made
            # again: at most what was in flight (AMEBO_DELIVERY_CONCURRENCY) per crash.
            assert result.duplicated <= RESTARTS * 64
            assert len(accepted) == EVENTS
            state = await settled(url)
            assert state["events"] == state["dedupers"] == EVENTS, state
            logs = serve.logs()
            assert "unhandled error" not in logs
            assert "Traceback" not in logs
        await projections_match_log(url)
    finally:
        await endpoint.stop()


async def _health_while_down(base_url: str, seconds: float) -> list[int]:
    """Polls /health for ``seconds``: each answer must come within its own short deadline."""
    statuses = []
    timeout = aiohttp.ClientTimeout(total=POOL_TIMEOUT + 2)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        deadline = asyncio.get_running_loop().time() + seconds
        while asyncio.get_running_loop().time() < deadline:
            async with session.get(f"{base_url}/health") as response:
                statuses.append(response.status)
                if response.status == 503:
                    assert response.headers.get("Retry-After")
                    assert response.content_type == "application/problem+json"
            await asyncio.sleep(0.2)  # pacing the probe
    return statuses
