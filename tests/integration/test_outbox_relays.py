"""Several relays at once, fed by concurrent producers: every row is relayed exactly once."""

from __future__ import annotations

import asyncio
import contextlib
import random
import uuid
from collections.abc import AsyncIterator
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from amebo.outbox import CHANNEL, OutboxRelay, RelayConfig
from amebo.publishing import ActionCatalog
from amebo.runtime import open_pool
from amebo.wakeup import Listener
from tests.conftest import wait_until
from tests.support.api import amebo_api

ACTION = "orders.v1.placed"


@contextlib.asynccontextmanager
async def relay(database_url: str, batch_size: int) -> AsyncIterator[OutboxRelay]:
    """A relay with its own pool and LISTEN connection, as in a separate process."""
    async with open_pool(database_url, max_size=4) as pool:
        config = RelayConfig(batch_size=batch_size, poll_interval=0.5)
        relay = OutboxRelay(pool, ActionCatalog(pool), config)
        listener = Listener(database_url)
        listener.on(CHANNEL, relay.wake)
        relay.start()
        listener.start()
        try:
            yield relay
        finally:
            await listener.stop()
            await relay.stop()


async def _produce(database_url: str, seed: int, transactions: int) -> list[uuid.UUID]:
    chance = random.Random(seed)
    ids: list[uuid.UUID] = []
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        for _ in range(transactions):
            async with conn.transaction():
                for _ in range(chance.choice((1, 1, 5, 40))):
                    cursor = await conn.execute(
                        "SELECT amebo.publish(%s, %s)", (ACTION, Jsonb({"seed": seed}))
                    )
                    row = await cursor.fetchone()
                    assert row is not None
                    ids.append(row[0])
    return ids


async def _count(conn: psycopg.AsyncConnection[Any], sql: Any) -> int:
    cursor = await conn.execute(sql)
    row = await cursor.fetchone()
    assert row is not None
    return int(row[0])


async def test_two_relays_relay_every_row_exactly_once(
    database_url: str, conn: psycopg.AsyncConnection[Any]
) -> None:
    async with amebo_api(database_url, deliver=False) as api:  # registry only; no relay
        shop = await api.register_application("shop")
        await api.register_action(shop, "shop", ACTION)
        await api.subscribe(shop, "shop", ACTION, "http://127.0.0.1:9/unused")

    async with relay(database_url, 25) as first, relay(database_url, 25) as second:
        batches = await asyncio.gather(*(_produce(database_url, seed, 30) for seed in range(4)))
        produced = [event_id for batch in batches for event_id in batch]

        async def drained() -> bool:
            return await _count(conn, "SELECT count(*) FROM amebo.outbox") == 0

        await wait_until(drained, timeout=60)

    assert len(produced) == len(set(produced)) > 500
    assert first.claimed + second.claimed == len(produced)
    assert first.claimed > 0 and second.claimed > 0
    cursor = await conn.execute("SELECT id FROM amebo.events")
    assert sorted(row[0] for row in await cursor.fetchall()) == sorted(produced)
    published = "SELECT count(*) FROM amebo.log WHERE type = 'event.published'"
    assert await _count(conn, published) == len(produced)
    assert await _count(conn, "SELECT count(*) FROM amebo.deliveries") == len(produced)
    assert await _count(conn, "SELECT count(*) FROM amebo.rejections") == 0
