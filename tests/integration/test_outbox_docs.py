"""docs/outbox.md runs as written: its Python examples, as a least-privilege producer, against
a running amebo; and the GRANTs it lists are the ones the migration makes."""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
from pathlib import Path
from typing import Any

import psycopg
from psycopg.conninfo import make_conninfo

from amebo.db.sql import sql_root
from tests.conftest import wait_until
from tests.support.receiver import Receiver

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "outbox.md"
_BLOCK = re.compile(r"^```(?P<lang>\w*)\n(?P<code>.*?)^```$", re.MULTILINE | re.DOTALL)
ORDER_SCHEMA = {
    "type": "object",
    "properties": {"order_id": {"type": "integer"}, "total": {"type": "number"}},
    "required": ["order_id", "total"],
}


def _blocks(language: str) -> list[str]:
    return [m["code"] for m in _BLOCK.finditer(GUIDE.read_text()) if m["lang"] == language]


async def test_the_guides_examples_publish_on_commit_and_nothing_on_rollback(
    api: Any, receiver: Receiver, database_url: str, conn: psycopg.AsyncConnection[Any]
) -> None:
    shop = await api.register_application("shop")
    await api.register_action(shop, "shop", "orders.v1.placed", ORDER_SCHEMA)
    await api.subscribe(shop, "shop", "orders.v1.placed", receiver.url)
    # The service's own table. Its login would own it and be a member of amebo_producer; here
    # the examples run as amebo_producer itself, granted just this table besides.
    await conn.execute(
        "CREATE TABLE orders"
        " (id serial PRIMARY KEY, customer text NOT NULL, total numeric NOT NULL);"
        "GRANT SELECT, INSERT ON orders TO amebo_producer;"
        "GRANT USAGE ON SEQUENCE orders_id_seq TO amebo_producer"
    )
    script = "\n\n".join(_blocks("python"))
    producer_url = make_conninfo(database_url, options="-c role=amebo_producer")
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        script,
        env={**os.environ, "DATABASE_URL": producer_url},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 0, err.decode()
    lines = out.decode().splitlines()
    assert lines[0].startswith("order 1 saved; event ")
    assert lines[1] == "order 2 was never saved and its event never existed"
    assert lines[2].startswith("event ") and len(lines) == 3

    received = await receiver.wait_for(2)
    assert sorted(json.loads(r.body)["data"]["order_id"] for r in received) == [0, 1]
    assert json.loads(received[0].body)["id"] in out.decode()

    async def drained() -> bool:
        cursor = await conn.execute("SELECT count(*) FROM amebo.outbox")
        row = await cursor.fetchone()
        return row is not None and row[0] == 0

    await wait_until(drained)
    cursor = await conn.execute("SELECT id, customer FROM orders")
    assert await cursor.fetchall() == [(1, "ada")]
    cursor = await conn.execute("SELECT count(*) FROM amebo.events")
    assert await cursor.fetchone() == (2,)


def test_the_grants_in_the_guide_are_the_migrations() -> None:
    [listed] = [code for code in _blocks("sql") if "What amebo's migration runs" in code]
    migration = " ".join((sql_root() / "migrations" / "0004_outbox.sql").read_text().split())
    statements = [line for line in listed.splitlines() if line and not line.startswith("--")]
    assert len(statements) == 5
    for statement in statements:
        assert " ".join(statement.split()) in migration
