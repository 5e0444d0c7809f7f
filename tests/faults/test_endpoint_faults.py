"""Subscribers whose endpoints misbehave, side by side with a healthy one: one is down for a
while, one answers 500 to every third request, one hangs past amebo's timeout now and then,
one closes the connection mid-response, one before answering at all. Each gets every event,
none twice (nothing crashed, so nothing may be duplicated), and the healthy one is not held
back by the others."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.faults.harness import (
    CUT,
    DROP,
    FAIL,
    HANG,
    OK,
    AmeboProcess,
    Behaviour,
    Endpoint,
    Publisher,
    always_ok,
    processes,
    projections_match_log,
    register,
    scale,
    settled,
    tally,
)

EVENTS = scale(300, 3000)
RATE = scale(100, 100)
TIMEOUT = 2  # amebo's delivery timeout, seconds
DOWN_FOR = scale(3, 15)  # seconds the "down" endpoint refuses connections


def every(nth: int, answer: str) -> Behaviour:
    def behaviour(n: int) -> str:
        return answer if n % nth == 0 else OK

    return behaviour


async def test_misbehaving_endpoints(database_url: str, tmp_path: Path) -> None:
    endpoints = {
        "steady": Endpoint(always_ok),
        "down": Endpoint(always_ok),
        "flaky": Endpoint(every(3, FAIL)),
        "stuck": Endpoint(every(10, HANG), hang_seconds=TIMEOUT + 1),
        "cutter": Endpoint(every(4, CUT)),
        "dropper": Endpoint(every(4, DROP)),
    }
    for endpoint in endpoints.values():
        await endpoint.start()
    try:
        async with processes() as started:
            # Two seconds, not the harness's one: a healthy answer read late on a busy machine
            # would be retried and counted as a duplicate that no fault caused.
            serve = AmeboProcess(
                "serve",
                database_url,
                tmp_path,
                AMEBO_DELIVERY_TIMEOUT=str(TIMEOUT),
                AMEBO_LEASE_SECONDS=str(TIMEOUT + 3),
            )
            started.append(serve)
            await serve.start()
            auth = await register(serve.url, endpoints)
            publisher = Publisher(serve.url, auth)
            publishing = asyncio.create_task(publisher.run(range(EVENTS), RATE))

            await asyncio.sleep(EVENTS / RATE / 4)  # pacing: the outage starts mid-run
            await endpoints["down"].down()
            steady_before = len(endpoints["steady"].delivered)
            await asyncio.sleep(DOWN_FOR)  # the outage itself
            steady_during = len(endpoints["steady"].delivered) - steady_before
            await endpoints["down"].up()
            await publishing

            accepted = set(publisher.accepted.values())
            assert len(accepted) == EVENTS
            assert not publisher.unexpected, publisher.unexpected[:5]
            results = []
            for name, endpoint in endpoints.items():
                expected = {(event, name) for event in accepted}
                await endpoint.wait_for(expected, timeout=scale(60, 180))
            for name, endpoint in endpoints.items():
                results.append(
                    tally(
                        f"endpoint {name} ({dict(endpoint.answers)})",
                        EVENTS,
                        accepted,
                        [name],
                        endpoint.delivered,
                    )
                )
            assert all(r.lost == 0 for r in results)
            assert all(r.duplicated == 0 for r in results)
            assert steady_during > 0, "the healthy endpoint was held back by the others"
            for name in ("flaky", "stuck", "cutter", "dropper"):
                assert endpoints[name].answers[OK] < endpoints[name].requests, name
            state = await settled(database_url)
            assert state["events"] == EVENTS
            assert "unhandled error" not in serve.logs()
        await projections_match_log(database_url)
    finally:
        for endpoint in endpoints.values():
            await endpoint.stop()
