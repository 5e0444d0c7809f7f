"""An outbox row amebo cannot store or parse is rejected alone; the rows behind it flow."""

from __future__ import annotations

from typing import Any

import psycopg

from amebo.outbox import relay_batch
from amebo.publishing import ActionCatalog
from tests.support.api import ADMIN, Api, amebo_api


def _nested(depth: int) -> Any:
    document: Any = 1
    for _ in range(depth):
        document = {"a": document}
    return document


async def test_too_deep_payloads_are_rejected_without_stalling_the_outbox(
    database_url: str,
) -> None:
    # No relay of its own: this test runs the relay's batch itself.
    async with amebo_api(database_url, deliver=False) as api:
        await _rejected_alone(api, database_url)


async def _rejected_alone(api: Api, database_url: str) -> None:
    auth = await api.register_application("shop")
    await api.register_action(auth, "shop", "orders.v1.placed")
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as producer:
        for depth in (300, 1100):
            await producer.execute(
                "SELECT amebo.publish('orders.v1.placed', %s::jsonb)",
                (psycopg.types.json.Jsonb(_nested(depth), dumps=_deep_dumps),),
            )
        cursor = await producer.execute(
            "SELECT amebo.publish('orders.v1.placed', '{\"fine\": true}'::jsonb)"
        )
        row = await cursor.fetchone()
        assert row is not None
        good = row[0]
    async with api.runtime.pool.connection() as conn, conn.transaction():
        batch = await relay_batch(conn, ActionCatalog(api.runtime.pool), 10)
    assert (batch.published, batch.rejected) == (1, 2)
    response = await api.client.get(f"/v1/events/{good}", headers=ADMIN)
    assert response.status == 200
    assert (await response.json())["payload"] == {"fine": True}


def _deep_dumps(document: Any) -> str:
    """orjson and json both stop short of 1,100 levels; build the text by hand."""
    depth = 0
    while isinstance(document, dict):
        document = document["a"]
        depth += 1
    return '{"a":' * depth + "1" + "}" * depth
