"""Least privilege: the amebo_producer role may add to the outbox and nothing else."""

from __future__ import annotations

import json
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from tests.conftest import wait_until
from tests.support.receiver import Receiver

ACTION = "orders.v1.placed"

FORBIDDEN = [
    "SELECT * FROM amebo.outbox",
    "UPDATE amebo.outbox SET payload = '{}'",
    "DELETE FROM amebo.outbox",
    "TRUNCATE amebo.outbox",
    # RETURNING reads what was written, which needs SELECT; amebo.publish returns the id.
    "INSERT INTO amebo.outbox (action, payload) VALUES ('a', '{}') RETURNING id",
    "INSERT INTO amebo.outbox (action, payload, created_at) VALUES ('a', '{}', now())",
    "SELECT * FROM amebo.log",
    "INSERT INTO amebo.log (stream, type, data) VALUES ('s', 't', '{}')",
    "SELECT * FROM amebo.events",
    "SELECT * FROM amebo.rejections",
    "SELECT * FROM amebo.applications",
    "SELECT * FROM amebo.actions",
    "UPDATE amebo.subscriptions SET active = false",
    "DELETE FROM amebo.delivery_queue",
]


async def test_producer_role_publishes_but_cannot_read_or_change_anything(
    api: Any, receiver: Receiver, database_url: str, conn: Any
) -> None:
    shop = await api.register_application("shop")
    await api.register_action(shop, "shop", ACTION)
    await api.subscribe(shop, "shop", ACTION, receiver.url)

    async with await psycopg.AsyncConnection.connect(database_url) as producer:
        async with producer.transaction():
            await producer.execute("SET LOCAL ROLE amebo_producer")
            cursor = await producer.execute(
                "SELECT amebo.publish(%s, %s)", (ACTION, Jsonb({"via": "function"}))
            )
            row = await cursor.fetchone()
            assert row is not None
            await producer.execute(
                "INSERT INTO amebo.outbox (action, payload, deduper) VALUES (%s, %s, %s)",
                (ACTION, Jsonb({"via": "insert"}), "insert-1"),
            )
        refused = []
        async with producer.transaction():
            await producer.execute("SET LOCAL ROLE amebo_producer")
            for statement in FORBIDDEN:
                try:
                    async with producer.transaction():
                        await producer.execute(statement)
                except psycopg.errors.InsufficientPrivilege:
                    refused.append(statement)
    assert refused == FORBIDDEN

    received = await receiver.wait_for(2)
    assert sorted(json.loads(r.body)["data"]["via"] for r in received) == ["function", "insert"]
    assert str(row[0]) in {json.loads(r.body)["id"] for r in received}

    async def relayed() -> bool:
        cursor = await conn.execute("SELECT count(*) FROM amebo.outbox")
        found = await cursor.fetchone()
        return found is not None and found[0] == 0

    await wait_until(relayed)


async def test_producer_role_holds_no_privilege_beyond_its_grants(conn: Any) -> None:
    """Checked against the catalog, so tables that later migrations add are covered too."""
    cursor = await conn.execute(
        """
        SELECT c.relname, p.privilege
        FROM pg_class AS c
        JOIN pg_namespace AS n ON n.oid = c.relnamespace
        CROSS JOIN unnest(ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE',
                                'REFERENCES', 'TRIGGER']) AS p (privilege)
        WHERE n.nspname = 'amebo' AND c.relkind IN ('r', 'v', 'm', 'p', 'S')
          AND CASE WHEN p.privilege IN ('SELECT', 'INSERT', 'UPDATE', 'REFERENCES')
                   THEN has_any_column_privilege('amebo_producer', c.oid, p.privilege)
                   ELSE has_table_privilege('amebo_producer', c.oid, p.privilege) END
        ORDER BY 1, 2
        """
    )
    assert await cursor.fetchall() == [("outbox", "INSERT")]
    cursor = await conn.execute(
        """
        SELECT p.proname
        FROM pg_proc AS p
        JOIN pg_namespace AS n ON n.oid = p.pronamespace
        WHERE n.nspname = 'amebo' AND has_function_privilege('amebo_producer', p.oid, 'EXECUTE')
          AND NOT has_function_privilege('public', p.oid, 'EXECUTE')
        """
    )
    assert await cursor.fetchall() == [("publish",)]
    cursor = await conn.execute(
        "SELECT rolcanlogin, rolsuper, rolcreaterole, rolcreatedb, rolbypassrls"
        " FROM pg_roles WHERE rolname = 'amebo_producer'"
    )
    assert await cursor.fetchone() == (False, False, False, False, False)
