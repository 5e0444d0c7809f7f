"""SIGKILL of `amebo serve` and `amebo worker` mid-run, again and again, each restarted at
once: every event the API accepted reaches every subscriber; the only duplicates are
deliveries that were in flight at a kill."""

from __future__ import annotations

import asyncio
from pathlib import Path

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

SUBSCRIBERS = ("billing", "shipping")
EVENTS = scale(400, 3000)
RATE = scale(60, 100)  # events per second: publishing spans the whole run of kills
KILLS = scale(4, 16)
CONCURRENCY = 64  # AMEBO_DELIVERY_CONCURRENCY in the harness: the most a kill can leave in flight


async def test_sigkill_serve_and_worker_repeatedly(database_url: str, tmp_path: Path) -> None:
    endpoint = Endpoint()
    await endpoint.start()
    try:
        async with processes() as started:
            serve = AmeboProcess("serve", database_url, tmp_path)
            worker = AmeboProcess("worker", database_url, tmp_path)
            started.extend([serve, worker])
            await serve.start()
            await worker.start()
            auth = await register(serve.url, dict.fromkeys(SUBSCRIBERS, endpoint))
            publisher = Publisher(serve.url, auth)
            publishing = asyncio.create_task(publisher.run(range(EVENTS), RATE))

            interval = EVENTS / RATE / (KILLS + 1)
            for kill in range(KILLS):
                await asyncio.sleep(interval)  # pacing the faults through the run
                victim = serve if kill % 2 == 0 else worker
                victim.kill()
                await victim.start()
            await publishing

            accepted = set(publisher.accepted.values())
            expected = {(event, name) for event in accepted for name in SUBSCRIBERS}
            await endpoint.wait_for(expected, timeout=scale(60, 180))
            result = tally(
                f"SIGKILL x{KILLS} (serve and worker)",
                EVENTS,
                accepted,
                SUBSCRIBERS,
                endpoint.delivered,
            )
            assert result.lost == 0
            assert result.duplicated <= KILLS * CONCURRENCY
            assert len(accepted) == EVENTS
            assert not publisher.unexpected, publisher.unexpected[:5]
            state = await settled(database_url)
            assert state["events"] == state["dedupers"] == EVENTS, state
            for process in started:
                assert "unhandled error" not in process.logs()
        await projections_match_log(database_url)
    finally:
        await endpoint.stop()
