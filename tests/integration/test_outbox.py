"""The transactional outbox end to end: a producer's own connection writes to amebo.outbox in
its transaction; the relay running in amebo turns committed rows into delivered events, and
refuses the rest visibly."""

from __future__ import annotations

import json
import uuid
from typing import Any

import psycopg
import pytest
from psycopg.types.json import Jsonb

from amebo.projections.rebuild import rebuild
from tests.conftest import wait_until
from tests.support.api import ADMIN
from tests.support.contract import CONTRACT
from tests.support.receiver import Receiver

ACTION = "orders.v1.placed"
ORDER_SCHEMA = {
    "type": "object",
    "properties": {"order_id": {"type": "integer"}},
    "required": ["order_id"],
}


async def _shop(api: Any, receiver: Receiver) -> dict[str, str]:
    shop = await api.register_application("shop")
    await api.register_action(shop, "shop", ACTION, ORDER_SCHEMA)
    await api.subscribe(shop, "shop", ACTION, receiver.url + "/orders")
    return shop


async def _publish(
    conn: psycopg.AsyncConnection[Any],
    payload: Any,
    deduper: str | None = None,
    action: str = ACTION,
) -> uuid.UUID:
    cursor = await conn.execute(
        "SELECT amebo.publish(%s, %s, %s)", (action, Jsonb(payload), deduper)
    )
    row = await cursor.fetchone()
    assert row is not None
    event_id: uuid.UUID = row[0]
    return event_id


async def _event(api: Any, event_id: uuid.UUID) -> tuple[int, dict[str, Any]]:
    """GET /v1/events/{id}, checked against the OpenAPI document on the way."""
    path = f"/v1/events/{event_id}"
    response = await api.client.get(path, headers=ADMIN)
    raw = await response.read()
    assert CONTRACT.check("GET", path, response.status, response.content_type, raw) == []
    body: dict[str, Any] = json.loads(raw)
    return response.status, body


async def _outbox_empty(conn: psycopg.AsyncConnection[Any]) -> bool:
    cursor = await conn.execute("SELECT count(*) FROM amebo.outbox")
    row = await cursor.fetchone()
    return row is not None and row[0] == 0


async def _scalar(conn: psycopg.AsyncConnection[Any], sql: Any, *args: Any) -> Any:
    cursor = await conn.execute(sql, args)
    row = await cursor.fetchone()
    assert row is not None
    return row[0]


@pytest.fixture
async def producer(database_url: str) -> Any:
    """A producing service's own connection, with transactions of its own."""
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        yield conn


async def test_commit_publishes_and_delivers_under_the_outbox_id(
    api: Any, receiver: Receiver, producer: Any, conn: Any
) -> None:
    await _shop(api, receiver)
    await conn.execute("CREATE TABLE orders (id integer PRIMARY KEY, total numeric NOT NULL)")

    async with producer.transaction():
        await producer.execute("INSERT INTO orders VALUES (7, 42.5)")
        event_id = await _publish(producer, {"order_id": 7}, "order-7")

    [request] = await receiver.wait_for(1)
    envelope = json.loads(request.body)
    assert request.path == "/orders"
    assert envelope["id"] == str(event_id)
    assert envelope["type"] == ACTION
    assert envelope["data"] == {"order_id": 7}
    status, body = await _event(api, event_id)
    assert status == 200
    assert body["status"] == "published"
    assert body["application"] == "shop"
    assert body["deduper"] == "order-7"
    await wait_until(lambda: _outbox_empty(conn))


async def test_rollback_leaves_no_trace(
    api: Any, receiver: Receiver, producer: Any, conn: Any
) -> None:
    await _shop(api, receiver)
    await conn.execute("CREATE TABLE orders (id integer PRIMARY KEY)")

    rolled_back = None
    with pytest.raises(RuntimeError):
        async with producer.transaction():
            await producer.execute("INSERT INTO orders VALUES (1)")
            rolled_back = await _publish(producer, {"order_id": 1})
            raise RuntimeError("the service changes its mind")
    async with producer.transaction():
        await producer.execute("INSERT INTO orders VALUES (2)")
        committed = await _publish(producer, {"order_id": 2})

    [request] = await receiver.wait_for(1)
    assert json.loads(request.body)["id"] == str(committed)
    await wait_until(lambda: _outbox_empty(conn))
    assert (await _event(api, rolled_back))[0] == 404
    mentions = "SELECT count(*) FROM amebo.log WHERE data ->> 'id' = %s"
    assert await _scalar(conn, mentions, str(rolled_back)) == 0
    assert await _scalar(conn, "SELECT array_agg(id) FROM orders") == [2]


async def test_invalid_payload_is_rejected_with_reasons_and_never_delivered(
    api: Any, receiver: Receiver, producer: Any, conn: Any
) -> None:
    await _shop(api, receiver)
    async with producer.transaction():
        refused = await _publish(producer, {"order_id": "seven"}, "order-7")
    async with producer.transaction():
        accepted = await _publish(producer, {"order_id": 8})

    [request] = await receiver.wait_for(1)
    assert json.loads(request.body)["id"] == str(accepted)

    async def rejected() -> bool:
        return (await _event(api, refused))[0] == 200

    await wait_until(rejected)
    _, body = await _event(api, refused)
    assert body["status"] == "rejected"
    assert body["action"] == ACTION
    assert body["deduper"] == "order-7"
    assert body["payload"] == {"order_id": "seven"}
    assert body["deliveries"] == []
    assert [r["pointer"] for r in body["reasons"]] == ["/payload/order_id"]
    assert "integer" in body["reasons"][0]["message"]
    assert body["written_at"] <= body["rejected_at"]
    assert await _scalar(conn, "SELECT count(*) FROM amebo.events WHERE id = %s", refused) == 0
    deliveries = "SELECT count(*) FROM amebo.deliveries WHERE event_id = %s"
    assert await _scalar(conn, deliveries, refused) == 0
    assert len(receiver.received) == 1


async def test_unknown_action_is_rejected(
    api: Any, receiver: Receiver, producer: Any, conn: Any
) -> None:
    await _shop(api, receiver)
    async with producer.transaction():
        refused = await _publish(producer, {"order_id": 1}, action="orders.v9.imagined")

    async def rejected() -> bool:
        return (await _event(api, refused))[0] == 200

    await wait_until(rejected)
    _, body = await _event(api, refused)
    assert body["status"] == "rejected"
    assert body["reasons"] == [{"pointer": "/action", "message": "not registered"}]
    await wait_until(lambda: _outbox_empty(conn))


async def test_unknown_id_is_still_not_found(api: Any) -> None:
    response = await api.client.get(f"/v1/events/{uuid.uuid4()}", headers=ADMIN)
    assert response.status == 404
    assert response.content_type == "application/problem+json"


async def test_duplicate_deduper_makes_one_event(
    api: Any, receiver: Receiver, producer: Any, conn: Any
) -> None:
    shop = await _shop(api, receiver)
    over_http = await api.publish(shop, ACTION, {"order_id": 2}, "order-2")

    async with producer.transaction():  # twice in one transaction: one batch
        first = await _publish(producer, {"order_id": 1}, "order-1")
        await _publish(producer, {"order_id": 1}, "order-1")
    await wait_until(lambda: _outbox_empty(conn))
    async with producer.transaction():  # again later, and once more after the API's
        await _publish(producer, {"order_id": 1}, "order-1")
        await _publish(producer, {"order_id": 2}, "order-2")
    async with producer.transaction():
        plain = await _publish(producer, {"order_id": 3})
    await wait_until(lambda: _outbox_empty(conn))

    received = await receiver.wait_for(3)
    ids = sorted(json.loads(r.body)["id"] for r in received)
    assert ids == sorted([str(first), over_http["id"], str(plain)])
    per_deduper = "SELECT deduper, count(*) FROM amebo.events GROUP BY deduper ORDER BY deduper"
    cursor = await conn.execute(per_deduper)
    assert await cursor.fetchall() == [("order-1", 1), ("order-2", 1), (None, 1)]
    assert await _scalar(conn, "SELECT id FROM amebo.events WHERE deduper = 'order-1'") == first
    assert await _scalar(conn, "SELECT count(*) FROM amebo.deliveries") == 3
    assert await _scalar(conn, "SELECT count(*) FROM amebo.rejections") == 0


async def test_an_id_some_event_already_has_is_rejected(
    api: Any, receiver: Receiver, producer: Any, conn: Any
) -> None:
    shop = await _shop(api, receiver)
    existing = uuid.UUID((await api.publish(shop, ACTION, {"order_id": 1}))["id"])
    await receiver.wait_for(1)

    async with producer.transaction():
        await producer.execute(
            "INSERT INTO amebo.outbox (id, action, payload) VALUES (%s, %s, %s)",
            (existing, ACTION, Jsonb({"order_id": 2})),
        )

    async def recorded() -> bool:
        found = "SELECT count(*) FROM amebo.rejections WHERE id = %s"
        return bool(await _scalar(conn, found, existing))

    await wait_until(recorded)
    reasons = await _scalar(conn, "SELECT reasons FROM amebo.rejections WHERE id = %s", existing)
    assert reasons == [{"pointer": "/id", "message": "another event already has this id"}]
    status, body = await _event(api, existing)
    assert (status, body["status"], body["payload"]) == (200, "published", {"order_id": 1})


async def test_shape_mistakes_fail_the_producers_own_statement(producer: Any) -> None:
    for bad in (
        ("SELECT amebo.publish(%s, %s, %s)", (ACTION, Jsonb({}), "")),
        ("SELECT amebo.publish(%s, %s, %s)", (ACTION, Jsonb({}), "d" * 513)),
        ("SELECT amebo.publish(%s, %s, NULL, %s)", (ACTION, Jsonb({}), Jsonb([1]))),
        ("SELECT amebo.publish(%s, NULL)", (ACTION,)),
    ):
        with pytest.raises(psycopg.errors.IntegrityError):
            async with producer.transaction():
                await producer.execute(*bad)


async def test_a_row_the_database_refuses_is_rejected_alone(
    api: Any, receiver: Receiver, producer: Any, conn: Any
) -> None:
    """A row that breaks some constraint of amebo's own must not stall the outbox or take
    its batch down: the relay narrows the batch until the row stands alone, then rejects it."""
    await _shop(api, receiver)
    await conn.execute(
        """
        CREATE FUNCTION refuse_poison() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF NEW.type = 'event.published' AND NEW.data -> 'payload' ? 'poison' THEN
                RAISE EXCEPTION 'poisoned payload' USING ERRCODE = 'check_violation';
            END IF;
            RETURN NEW;
        END $$;
        CREATE TRIGGER log_refuses_poison BEFORE INSERT ON amebo.log
            FOR EACH ROW EXECUTE FUNCTION refuse_poison();
        """
    )
    async with producer.transaction():
        ids = [
            await _publish(producer, {"order_id": n, **({"poison": True} if n == 3 else {})})
            for n in range(1, 6)
        ]

    received = await receiver.wait_for(4)
    await wait_until(lambda: _outbox_empty(conn))
    assert sorted(json.loads(r.body)["data"]["order_id"] for r in received) == [1, 2, 4, 5]
    status, body = await _event(api, ids[2])
    assert (status, body["status"]) == (200, "rejected")
    assert body["reasons"] == [
        {"pointer": "", "message": "the database refused this row: poisoned payload"}
    ]


async def test_rebuild_yields_the_same_rejections(
    api: Any, receiver: Receiver, producer: Any, conn: Any
) -> None:
    await _shop(api, receiver)
    async with producer.transaction():
        await _publish(producer, {"order_id": "x"})
        await _publish(producer, {"order_id": 1}, action="nope")
    await wait_until(lambda: _outbox_empty(conn))
    snapshot = "SELECT * FROM amebo.rejections ORDER BY id"
    before = await (await conn.execute(snapshot)).fetchall()
    assert len(before) == 2
    await rebuild(conn)
    assert await (await conn.execute(snapshot)).fetchall() == before
