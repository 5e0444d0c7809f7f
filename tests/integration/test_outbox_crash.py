"""A relay stopped between claiming a batch and committing it loses and repeats nothing.

To stop it exactly there, the test holds a SHARE lock on amebo.events: the relay claims its
batch, appends to the log, then waits to write the events projection. Only then is it killed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from amebo.outbox import OutboxRelay, RelayConfig
from amebo.publishing import ActionCatalog
from amebo.runtime import open_pool
from tests.conftest import wait_until
from tests.support.api import amebo_api
from tests.support.receiver import Receiver

ACTION = "orders.v1.placed"
ROWS = 50


async def _scalar(conn: psycopg.AsyncConnection[Any], sql: Any) -> Any:
    cursor = await conn.execute(sql)
    row = await cursor.fetchone()
    assert row is not None
    return row[0]


async def _prepare(database_url: str, handler: str) -> list[str]:
    """Registers an action and a subscriber, then commits ROWS outbox rows at once."""
    async with amebo_api(database_url, deliver=False) as api:  # no relay of its own
        shop = await api.register_application("shop")
        await api.register_action(shop, "shop", ACTION)
        await api.subscribe(shop, "shop", ACTION, handler)
    ids = []
    async with (
        await psycopg.AsyncConnection.connect(database_url) as producer,
        producer.transaction(),
    ):
        for n in range(ROWS):
            cursor = await producer.execute(
                "SELECT amebo.publish(%s, %s)", (ACTION, Jsonb({"n": n}))
            )
            row = await cursor.fetchone()
            assert row is not None
            ids.append(str(row[0]))
    return ids


@contextlib.asynccontextmanager
async def _events_held(database_url: str) -> AsyncIterator[None]:
    """Blocks writers of amebo.events until the block ends."""
    async with (
        await psycopg.AsyncConnection.connect(database_url) as blocker,
        blocker.transaction(),
    ):
        await blocker.execute("LOCK TABLE amebo.events IN SHARE MODE")
        yield


async def _relay_waiting(conn: psycopg.AsyncConnection[Any]) -> bool:
    waiting = (
        "SELECT count(*) FROM pg_locks WHERE NOT granted AND relation = 'amebo.events'::regclass"
    )
    return bool(await _scalar(conn, waiting))


async def _assert_each_row_became_one_event(
    conn: psycopg.AsyncConnection[Any], ids: list[str]
) -> None:
    assert await _scalar(conn, "SELECT count(*) FROM amebo.outbox") == 0
    cursor = await conn.execute("SELECT id::text FROM amebo.events")
    assert sorted(row[0] for row in await cursor.fetchall()) == sorted(ids)
    published = "SELECT count(*) FROM amebo.log WHERE type = 'event.published'"
    assert await _scalar(conn, published) == len(ids)
    assert await _scalar(conn, "SELECT count(*) FROM amebo.deliveries") == len(ids)


async def test_relay_cancelled_mid_batch_loses_and_repeats_nothing(
    database_url: str, conn: psycopg.AsyncConnection[Any]
) -> None:
    ids = await _prepare(database_url, "http://127.0.0.1:9/unused")
    async with open_pool(database_url, max_size=4) as pool:
        config = RelayConfig(poll_interval=0.2)
        stopped = OutboxRelay(pool, ActionCatalog(pool), config)
        async with _events_held(database_url):
            stopped.start()
            await wait_until(lambda: _relay_waiting(conn))
            # Claimed, and the facts appended, but not committed: others still see the rows.
            assert await _scalar(conn, "SELECT count(*) FROM amebo.outbox") == ROWS
            await stopped.stop()
        assert stopped.claimed == 0

        successor = OutboxRelay(pool, ActionCatalog(pool), config)
        successor.start()
        try:

            async def drained() -> bool:
                return await _scalar(conn, "SELECT count(*) FROM amebo.outbox") == 0

            await wait_until(drained)
        finally:
            await successor.stop()
    assert successor.claimed == ROWS
    await _assert_each_row_became_one_event(conn, ids)


async def _start_worker(database_url: str, log: Path) -> asyncio.subprocess.Process:
    env = {
        **os.environ,
        "AMEBO_POLL_INTERVAL": "0.2",
        "AMEBO_LOG_LEVEL": "warning",
        "AMEBO_DATABASE_URL": database_url,
    }
    with log.open("ab") as sink:
        return await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "amebo",
            "worker",
            env=env,
            stdout=sink,
            stderr=sink,
        )


async def test_worker_killed_mid_batch_loses_and_repeats_nothing(
    database_url: str, conn: psycopg.AsyncConnection[Any], receiver: Receiver, tmp_path: Path
) -> None:
    ids = await _prepare(database_url, receiver.url + "/orders")
    log = tmp_path / "worker.log"

    async with _events_held(database_url):
        killed = await _start_worker(database_url, log)
        try:
            await wait_until(lambda: _relay_waiting(conn), timeout=30)
            assert await _scalar(conn, "SELECT count(*) FROM amebo.outbox") == ROWS
        finally:
            killed.send_signal(signal.SIGKILL)
            await asyncio.wait_for(killed.wait(), 10)
    assert killed.returncode == -signal.SIGKILL
    assert receiver.received == []

    restarted = await _start_worker(database_url, log)
    try:
        received = await receiver.wait_for(ROWS, timeout=30)
    finally:
        restarted.send_signal(signal.SIGTERM)
        await asyncio.wait_for(restarted.wait(), 20)
    assert restarted.returncode == 0, log.read_text()

    assert sorted(json.loads(r.body)["id"] for r in received) == sorted(ids)
    await _assert_each_row_became_one_event(conn, ids)
