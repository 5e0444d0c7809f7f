"""Delivery across real processes: `amebo worker` killed with SIGKILL mid-run loses nothing,
and several workers sharing one database deliver each event once."""

from __future__ import annotations

import asyncio
import collections
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator

import pytest
from aiohttp import web

from tests.support.api import Api, amebo_api
from tests.support.receiver import Receiver

EVENTS = 400


def _start_worker(database_url: str) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "AMEBO_DATABASE_URL": database_url,
        "AMEBO_LEASE_SECONDS": "3",
        "AMEBO_DELIVERY_TIMEOUT": "1",
        "AMEBO_POLL_INTERVAL": "0.5",
        "AMEBO_LOG_LEVEL": "warning",
        "AMEBO_DELIVERY_CONCURRENCY": "16",
    }
    return subprocess.Popen(
        [sys.executable, "-m", "amebo", "worker"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


@pytest.fixture
def workers() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.terminate()
    for process in started:
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


async def _backlog(api: Api, handler: str) -> set[str]:
    auth = await api.register_application("shop")
    await api.register_action(auth, "shop", "orders.v1.placed")
    await api.subscribe(auth, "shop", "orders.v1.placed", handler)
    response = await api.client.post(
        "/v1/events/batch",
        json={
            "events": [{"action": "orders.v1.placed", "payload": {"n": n}} for n in range(EVENTS)]
        },
        headers=auth,
    )
    assert response.status == 200, await response.text()
    return {result["id"] for result in (await response.json())["results"]}


def _event_ids(receiver: Receiver) -> collections.Counter[str]:
    return collections.Counter(json.loads(r.body)["id"] for r in receiver.received)


async def _slowly(request: web.Request, body: bytes) -> web.StreamResponse:
    await asyncio.sleep(0.005)  # a real endpoint takes time: keeps work in flight at the kill
    return web.Response(status=204)


async def test_sigkill_mid_run_loses_nothing(
    database_url: str, receiver: Receiver, workers: list[subprocess.Popen[bytes]]
) -> None:
    receiver.respond = _slowly
    async with amebo_api(database_url, deliver=False) as api:
        published = await _backlog(api, receiver.url)
        first = _start_worker(database_url)
        workers.append(first)
        await receiver.wait_for(EVENTS // 4, timeout=30)
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
        workers.append(_start_worker(database_url))

        async def everything_arrived() -> None:
            while set(_event_ids(receiver)) != published:
                await receiver.wait_for(len(receiver.received) + 1, timeout=30)

        await asyncio.wait_for(everything_arrived(), timeout=60)
        counts = _event_ids(receiver)
        duplicates = sum(count - 1 for count in counts.values())
        # Only work the killed worker had sent but not yet recorded can arrive twice: at
        # most its in-flight sends (16) plus the outcomes waiting for their batched write.
        assert duplicates < EVENTS // 4, f"{duplicates} duplicates"
        print(f"sigkill: {EVENTS} events, lost 0, duplicated {duplicates}")


async def test_several_workers_deliver_each_event_once(
    database_url: str, receiver: Receiver, workers: list[subprocess.Popen[bytes]]
) -> None:
    async with amebo_api(database_url, deliver=False) as api:
        published = await _backlog(api, receiver.url)
        workers.extend(_start_worker(database_url) for _ in range(3))
        await receiver.wait_for(EVENTS, timeout=60)
        counts = _event_ids(receiver)
        assert set(counts) == published
        assert max(counts.values()) == 1, "an event was delivered twice in normal operation"
        assert len(receiver.received) == EVENTS
