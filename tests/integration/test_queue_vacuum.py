"""Workers vacuum the delivery queue once enough deliveries finished (amebo/delivery/upkeep.py)."""

from __future__ import annotations

from typing import Any

import psycopg

from tests.conftest import wait_until
from tests.support.api import amebo_api, test_settings
from tests.support.receiver import Receiver


async def _vacuums(conn: psycopg.AsyncConnection[Any]) -> int:
    await conn.execute("SELECT pg_stat_clear_snapshot()")
    cursor = await conn.execute(
        "SELECT vacuum_count FROM pg_stat_user_tables"
        " WHERE schemaname = 'amebo' AND relname = 'delivery_queue'"
    )
    row = await cursor.fetchone()
    assert row is not None
    return int(row[0])


async def test_finished_deliveries_get_the_queue_vacuumed(
    database_url: str, receiver: Receiver, conn: psycopg.AsyncConnection[Any]
) -> None:
    before = await _vacuums(conn)
    async with amebo_api(database_url, test_settings(queue_vacuum_after=20)) as api:
        auth = await api.register_application("shop")
        await api.register_action(auth, "shop", "orders.v1.placed")
        await api.subscribe(auth, "shop", "orders.v1.placed", receiver.url)
        batch = [{"action": "orders.v1.placed", "payload": {"n": n}} for n in range(50)]
        response = await api.client.post("/v1/events/batch", json={"events": batch}, headers=auth)
        assert response.status == 200, await response.text()
        await receiver.wait_for(50, timeout=10)
        vacuum = api.runtime.worker.queue_vacuum
        await wait_until(lambda: vacuum.vacuumed >= 1, timeout=10)
    # PostgreSQL's own count agrees: the VACUUM ran, on the queue.
    await wait_until(lambda: _more_vacuums(conn, before), timeout=10)


async def _more_vacuums(conn: psycopg.AsyncConnection[Any], before: int) -> bool:
    return await _vacuums(conn) > before


async def test_zero_leaves_the_queue_to_autovacuum(
    database_url: str, receiver: Receiver, conn: psycopg.AsyncConnection[Any]
) -> None:
    async with amebo_api(database_url, test_settings(queue_vacuum_after=0)) as api:
        auth = await api.register_application("shop")
        await api.register_action(auth, "shop", "orders.v1.placed")
        await api.subscribe(auth, "shop", "orders.v1.placed", receiver.url)
        for n in range(30):
            await api.publish(auth, "orders.v1.placed", {"n": n})
        await receiver.wait_for(30, timeout=10)
        await wait_until(lambda: _queue_empty(conn), timeout=10)  # every outcome recorded
        assert api.runtime.worker.queue_vacuum.vacuumed == 0


async def _queue_empty(conn: psycopg.AsyncConnection[Any]) -> bool:
    cursor = await conn.execute("SELECT count(*) FROM amebo.delivery_queue")
    row = await cursor.fetchone()
    return row is not None and row[0] == 0
