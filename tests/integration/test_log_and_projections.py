"""The log cannot be rewritten, and the projections are a function of it: after a workload
that reaches every state (successes, scheduled retries, dead deliveries, a manual retry,
duplicates, a rotated secret, a deactivated subscription, an outbox row refused), rebuilding
from the log alone yields exactly the rows the live path wrote."""

from __future__ import annotations

import asyncio
import collections
import re
import sys
from typing import Any

import psycopg
import pytest
from aiohttp import web
from psycopg import sql

from amebo import projections, registry
from amebo.projections.rebuild import rebuild
from tests.conftest import wait_until
from tests.support.api import ADMIN, Api
from tests.support.receiver import Receiver

# The parts of delivery_queue that are a worker's claim, not a fact (see projections.deliveries).
LEASE_COLUMNS = {"lease_token"}


# -- the log refuses rewrites -------------------------------------------------------------


async def _one_fact(api: Api) -> None:
    await api.register_application("shop")


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE amebo.log SET type = 'forged'",
        "UPDATE amebo.log SET data = '{}' WHERE position = (SELECT min(position) FROM amebo.log)",
        "DELETE FROM amebo.log",
        "TRUNCATE amebo.log",
        "TRUNCATE amebo.log CASCADE",
    ],
)
async def test_log_refuses_rewrites_even_from_its_owner_as_superuser(
    api: Api, conn: psycopg.AsyncConnection[Any], statement: str
) -> None:
    await _one_fact(api)
    cursor = await conn.execute(
        "SELECT r.rolsuper, pg_get_userbyid(c.relowner) = current_user"
        " FROM pg_roles r, pg_class c"
        " WHERE r.rolname = current_user AND c.oid = 'amebo.log'::regclass"
    )
    assert await cursor.fetchone() == (True, True), "the claim needs a superuser that owns the log"
    before = await (await conn.execute("SELECT to_jsonb(l)::text FROM amebo.log l")).fetchall()

    with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState, match="append-only"):
        await conn.execute(statement)

    after = await (await conn.execute("SELECT to_jsonb(l)::text FROM amebo.log l")).fetchall()
    assert after == before


async def test_log_accepts_appends(api: Api, conn: psycopg.AsyncConnection[Any]) -> None:
    await _one_fact(api)
    await api.register_application("billing")
    cursor = await conn.execute("SELECT type FROM amebo.log ORDER BY position")
    assert [row[0] for row in await cursor.fetchall()] == ["application.registered"] * 2


# -- rebuild yields the same rows ---------------------------------------------------------


async def _dump(conn: psycopg.AsyncConnection[Any]) -> dict[str, list[str]]:
    """Every projection table, every column, sorted; leases left out, and run_at compared
    only where the row is not leased (a lease moves it; a rebuild starts with none)."""
    dumped = {}
    for table in projections.TABLES:
        schema, name = table.split(".")
        cursor = await conn.execute(
            "SELECT column_name FROM information_schema.columns"
            " WHERE table_schema = %s AND table_name = %s ORDER BY ordinal_position",
            (schema, name),
        )
        columns = [column for (column,) in await cursor.fetchall() if column not in LEASE_COLUMNS]
        assert columns, table
        selected = [
            sql.SQL("CASE WHEN lease_token IS NULL THEN run_at END AS run_at")
            if table == "amebo.delivery_queue" and column == "run_at"
            else sql.Identifier(column)
            for column in columns
        ]
        statement = sql.SQL("SELECT to_jsonb(t)::text FROM (SELECT {} FROM {}.{}) AS t").format(
            sql.SQL(", ").join(selected), sql.Identifier(schema), sql.Identifier(name)
        )
        cursor = await conn.execute(statement)
        dumped[table] = sorted(row for (row,) in await cursor.fetchall())
    return dumped


def _answers_by_path() -> Any:
    seen: collections.Counter[str] = collections.Counter()

    async def respond(request: web.Request, body: bytes) -> web.StreamResponse:
        seen[request.headers["webhook-id"]] += 1
        if request.path == "/ok":
            return web.Response(status=204)
        if request.path == "/second":  # fails once per delivery, then takes it
            return web.Response(status=500 if seen[request.headers["webhook-id"]] == 1 else 204)
        return web.Response(status=500)

    return respond


async def _statuses(conn: psycopg.AsyncConnection[Any]) -> dict[tuple[str, str, int], int]:
    cursor = await conn.execute(
        "SELECT s.handler, d.status::text, d.attempts, count(*)"
        " FROM amebo.deliveries d JOIN amebo.subscriptions s ON s.id = d.subscription_id"
        " GROUP BY 1, 2, 3"
    )
    return {
        (re.sub(r"^http://[^/]+", "", handler), status, attempts): count
        for handler, status, attempts, count in await cursor.fetchall()
    }


async def _quiet(conn: psycopg.AsyncConnection[Any]) -> bool:
    """Nothing claimed, nothing due, nothing waiting in the outbox."""
    cursor = await conn.execute(
        "SELECT (SELECT count(*) FROM amebo.delivery_queue"
        "        WHERE lease_token IS NOT NULL OR run_at <= now())"
        "     + (SELECT count(*) FROM amebo.outbox)"
    )
    row = await cursor.fetchone()
    return row is not None and row[0] == 0


async def _workload(api: Api, conn: psycopg.AsyncConnection[Any], receiver: Receiver) -> None:
    receiver.respond = _answers_by_path()
    shop = await api.register_application("shop")
    partner = await api.register_application("partner")
    await api.register_action(
        shop,
        "shop",
        "shop.v1.ordered",
        {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]},
    )
    later = {"retry_schedule": [3600], "max_retries": 3}
    subscriptions = {
        "/ok": await api.subscribe(partner, "partner", "shop.v1.ordered", receiver.url + "/ok"),
        "/later": await api.subscribe(
            partner, "partner", "shop.v1.ordered", receiver.url + "/later", **later
        ),
        "/dead": await api.subscribe(
            partner, "partner", "shop.v1.ordered", receiver.url + "/dead", max_retries=0
        ),
        "/second": await api.subscribe(
            partner, "partner", "shop.v1.ordered", receiver.url + "/second", retry_schedule=[0.1]
        ),
        "/gone": await api.subscribe(
            partner, "partner", "shop.v1.ordered", receiver.url + "/gone", **later
        ),
    }
    rotated = await api.client.post(
        f"/v1/subscriptions/{subscriptions['/ok']['id']}/rotate-secret", headers=partner
    )
    assert rotated.status == 200, await rotated.text()
    await registry.ensure_admin_token(conn)

    for n in range(4):
        await api.publish(shop, "shop.v1.ordered", {"n": n}, deduper=f"order-{n}")
    for n in range(2):  # duplicates: nothing new
        again = await api.publish(shop, "shop.v1.ordered", {"n": n}, deduper=f"order-{n}")
        assert again["created"] is False
    await api.publish(shop, "shop.v1.ordered", {"n": 4})
    # From SQL through the outbox: one event accepted, one refused by the schema.
    await conn.execute("SELECT amebo.publish('shop.v1.ordered', '{\"n\": 5}')")
    await conn.execute("SELECT amebo.publish('shop.v1.ordered', '{\"n\": \"five\"}')")

    six = {
        ("/ok", "succeeded", 1): 6,
        ("/later", "failed", 1): 6,
        ("/dead", "dead", 1): 6,
        ("/second", "succeeded", 2): 6,
        ("/gone", "failed", 1): 6,
    }
    await wait_until(lambda: _settled(conn, six), timeout=30)

    # Deactivating ends the queued work of /gone as dead; later events skip it.
    gone = await api.client.patch(
        f"/v1/subscriptions/{subscriptions['/gone']['id']}", json={"active": False}, headers=partner
    )
    assert gone.status == 200, await gone.text()
    await api.publish(shop, "shop.v1.ordered", {"n": 6})
    # A manual retry of one dead delivery: a fresh series, which dies again.
    cursor = await conn.execute(
        "SELECT id FROM amebo.deliveries WHERE subscription_id = %s LIMIT 1",
        (subscriptions["/dead"]["id"],),
    )
    [(dead_id,)] = await cursor.fetchall()
    retried = await api.client.post(f"/v1/deliveries/{dead_id}/retry", headers=partner)
    assert retried.status == 202, await retried.text()

    final = {
        ("/ok", "succeeded", 1): 7,
        ("/later", "failed", 1): 7,
        ("/dead", "dead", 1): 6,
        ("/dead", "dead", 2): 1,
        ("/second", "succeeded", 2): 7,
        ("/gone", "dead", 1): 6,
    }
    await wait_until(lambda: _settled(conn, final), timeout=30)
    cursor = await conn.execute("SELECT count(*) FROM amebo.rejections")
    assert await cursor.fetchone() == (1,)


async def _settled(
    conn: psycopg.AsyncConnection[Any], expected: dict[tuple[str, str, int], int]
) -> bool:
    return await _statuses(conn) == expected and await _quiet(conn)


async def test_rebuild_yields_the_same_rows(
    api: Api, conn: psycopg.AsyncConnection[Any], receiver: Receiver
) -> None:
    await _workload(api, conn, receiver)
    live = await _dump(conn)
    assert all(live[table] for table in projections.TABLES), "every projection has rows"

    applied = await rebuild(conn)

    cursor = await conn.execute("SELECT count(*) FROM amebo.log")
    assert await cursor.fetchone() == (applied,)
    rebuilt = await _dump(conn)
    for table in projections.TABLES:
        assert rebuilt[table] == live[table], table
    # The live path goes on from the rebuilt rows.
    response = await api.client.get("/v1/events?limit=1000", headers=ADMIN)
    assert response.status == 200


async def test_rebuild_command_yields_the_same_rows(
    api: Api, conn: psycopg.AsyncConnection[Any], receiver: Receiver, database_url: str
) -> None:
    await _workload(api, conn, receiver)
    live = await _dump(conn)

    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "amebo",
        "projections",
        "rebuild",
        "--database-url",
        database_url,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode == 0, err.decode()
    cursor = await conn.execute("SELECT count(*) FROM amebo.log")
    [(facts,)] = await cursor.fetchall()
    assert out.decode().strip() == f"amebo: projections rebuilt from {facts} log entries"

    rebuilt = await _dump(conn)
    for table in projections.TABLES:
        assert rebuilt[table] == live[table], table
