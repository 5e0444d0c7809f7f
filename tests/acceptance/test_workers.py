"""`amebo serve --workers 2`: two processes share the port, both answer, and together they
deliver every event exactly once per subscription; killing the parent outright takes the
child down too."""

from __future__ import annotations

import asyncio
import collections
import json
from typing import Any

import aiohttp
import psutil
import psycopg

from tests.acceptance.conftest import Start
from tests.acceptance.process import ADMIN_TOKEN, Amebo, environment, free_port
from tests.conftest import wait_until
from tests.support.api import basic
from tests.support.receiver import Receiver

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
SHOP = basic("shop", "shop-secret-0001")
EVENTS = 60


def _serving(amebo: Amebo, port: int) -> dict[int, psutil.Process]:
    """amebo's processes that hold a listening socket on the port, by pid."""
    found = {}
    for process in [psutil.Process(amebo.pid), *amebo.children()]:
        try:
            sockets = process.net_connections(kind="tcp")
        except psutil.NoSuchProcess:
            continue
        if any(s.status == psutil.CONN_LISTEN and s.laddr.port == port for s in sockets):
            found[process.pid] = process
    return found


def _accepted(process: psutil.Process, port: int) -> int:
    return sum(
        1
        for s in process.net_connections(kind="tcp")
        if s.status == psutil.CONN_ESTABLISHED and s.laddr.port == port
    )


async def _post(session: aiohttp.ClientSession, path: str, body: Any, **kw: Any) -> Any:
    async with session.post(path, json=body, **kw) as response:
        assert response.status in (200, 201), await response.text()
        return await response.json()


async def test_two_processes_serve_and_deliver_each_event_once(
    start_amebo: Start, database_url: str, receiver: Receiver
) -> None:
    port = free_port()
    amebo = await start_amebo(
        ["--workers", "2", "--address", f"127.0.0.1:{port}", "--database-url", database_url],
        environment(AMEBO_ADMIN_TOKEN=ADMIN_TOKEN),
    )
    base = await amebo.listening()
    await wait_until(lambda: len(_serving(amebo, port)) == 2, timeout=60)
    processes = _serving(amebo, port)

    # Connections kept open, each its own: SO_REUSEPORT spreads them over both processes,
    # and every process must have taken some (all on one: a chance of 2 in 2**24).
    sessions = [
        aiohttp.ClientSession(base, connector=aiohttp.TCPConnector(limit=1)) for _ in range(24)
    ]
    try:
        for session in sessions:
            async with session.get("/health") as response:
                assert response.status == 200
        counts = {pid: _accepted(process, port) for pid, process in processes.items()}
        assert all(count > 0 for count in counts.values()), counts
    finally:
        for session in sessions:
            await session.close()

    async with aiohttp.ClientSession(base) as http:
        await _post(
            http,
            "/v1/applications",
            {"application": "shop", "secret": "shop-secret-0001", "address": receiver.url},
            headers=ADMIN,
        )
        await _post(
            http,
            "/v1/actions",
            {"action": "shop.v1.ordered", "application": "shop", "schemata": {"type": "object"}},
            headers=SHOP,
        )
        for path in ("/one", "/two"):
            subscription = {"application": "shop", "action": "shop.v1.ordered"}
            await _post(
                http,
                "/v1/subscriptions",
                {**subscription, "handler": receiver.url + path},
                headers=SHOP,
            )

    async def publish(n: int) -> str:
        # A fresh connection per event, so both processes take publishes.
        async with aiohttp.ClientSession(
            base, connector=aiohttp.TCPConnector(force_close=True)
        ) as s:
            body = {"action": "shop.v1.ordered", "payload": {"n": n}}
            published = await _post(s, "/v1/events", body, headers=SHOP)
            return str(published["id"])

    ids = await asyncio.gather(*(publish(n) for n in range(EVENTS)))
    assert len(set(ids)) == EVENTS

    received = await receiver.wait_for(2 * EVENTS, timeout=60)
    pairs = collections.Counter((json.loads(r.body)["id"], r.path) for r in received)
    assert set(pairs) == {(event, path) for event in ids for path in ("/one", "/two")}
    assert set(pairs.values()) == {1}

    def statuses() -> list[tuple[str, int, int]]:
        with psycopg.connect(database_url) as conn:
            query = "SELECT status::text, attempts, count(*) FROM amebo.deliveries GROUP BY 1, 2"
            return conn.execute(query).fetchall()

    # One attempt each: no delivery was sent twice.
    await wait_until(lambda: statuses() == [("succeeded", 1, 2 * EVENTS)], timeout=30)

    assert await amebo.stop() == 0
    for process in processes.values():
        assert not process.is_running() or process.status() == psutil.STATUS_ZOMBIE


async def test_children_stop_when_the_parent_is_killed(
    start_amebo: Start, database_url: str
) -> None:
    port = free_port()
    amebo = await start_amebo(
        ["serve", "-w", "3", "-a", f"127.0.0.1:{port}", "--database-url", database_url],
        environment(AMEBO_ADMIN_TOKEN=ADMIN_TOKEN),
    )
    await amebo.listening()
    await wait_until(lambda: len(_serving(amebo, port)) == 3, timeout=60)
    children = [p for pid, p in _serving(amebo, port).items() if pid != amebo.pid]
    await amebo.kill()

    def gone() -> bool:
        return not any(c.is_running() and c.status() != psutil.STATUS_ZOMBIE for c in children)

    await wait_until(gone, timeout=30)
