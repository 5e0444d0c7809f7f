"""amebo.record_outcomes: a batch of outcomes in one statement, each recorded at most once.

An outcome counts only while its lease is held: a send that outlived its lease belongs to
whoever claimed the delivery next, and recording it would count an attempt twice.
"""

from __future__ import annotations

import uuid
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from amebo.db.sql import query

BREAKER = {"threshold": 3, "cooldown_min": 5.0, "cooldown_max": 60.0, "deactivate_after": 1e9}


async def _leased(
    conn: psycopg.AsyncConnection[Any], subscription: uuid.UUID, count: int
) -> list[tuple[uuid.UUID, uuid.UUID]]:
    """Queued deliveries of one subscription, each under its own lease: (delivery, token)."""
    cursor = await conn.execute(
        """
        INSERT INTO amebo.delivery_queue
            (delivery_id, event_id, subscription_id, attempt, run_at, lease_token)
        SELECT gen_random_uuid(), gen_random_uuid(), %(subscription)s, 0, now(),
               gen_random_uuid()
        FROM generate_series(1, %(count)s)
        RETURNING delivery_id, lease_token
        """,
        {"subscription": subscription, "count": count},
    )
    return [(d, t) for d, t in await cursor.fetchall()]


def _outcome(
    delivery: uuid.UUID, token: uuid.UUID, subscription: uuid.UUID, *, ok: bool
) -> dict[str, Any]:
    return {
        "delivery_id": delivery,
        "token": token,
        "subscription_id": subscription,
        "ok": ok,
        "gone": False,
        "stream": f"delivery-{delivery}",
        "data": {
            "delivery_id": str(delivery),
            "attempt": 1,
            "outcome": "succeeded" if ok else "failed",
            "next_attempt_at": None if ok else "2999-01-01T00:00:00+00:00",
        },
    }


async def _record(
    conn: psycopg.AsyncConnection[Any], outcomes: list[dict[str, Any]]
) -> list[tuple[Any, ...]]:
    cursor = await conn.execute(
        query("delivery_outcomes_record"), {"outcomes": Jsonb(outcomes), **BREAKER}
    )
    return await cursor.fetchall()


async def _facts_for(conn: psycopg.AsyncConnection[Any], deliveries: list[uuid.UUID]) -> int:
    cursor = await conn.execute(
        "SELECT count(*) FROM amebo.log WHERE stream = ANY(%s)",
        [[f"delivery-{d}" for d in deliveries]],
    )
    row = await cursor.fetchone()
    assert row is not None
    return int(row[0])


async def test_an_outcome_whose_lease_was_lost_is_not_recorded(
    conn: psycopg.AsyncConnection[Any],
) -> None:
    subscription = uuid.uuid4()
    (held, held_token), (lost, lost_token) = await _leased(conn, subscription, 2)
    rows = await _record(
        conn,
        [
            _outcome(held, held_token, subscription, ok=True),
            _outcome(lost, uuid.uuid4(), subscription, ok=True),  # another claim's token now
        ],
    )
    assert rows == [(held, None, None)]
    assert await _facts_for(conn, [held]) == 1
    assert await _facts_for(conn, [lost]) == 0
    cursor = await conn.execute(
        "SELECT delivery_id, lease_token FROM amebo.delivery_queue WHERE delivery_id = ANY(%s)",
        [[held, lost]],
    )
    assert await cursor.fetchall() == [(lost, lost_token)]  # succeeded left; lost untouched

    # Recording the same outcome again finds no lease: at most once.
    assert await _record(conn, [_outcome(held, held_token, subscription, ok=True)]) == []
    assert await _facts_for(conn, [held]) == 1


async def test_failures_at_the_threshold_open_the_circuit_and_hold_the_queue(
    conn: psycopg.AsyncConnection[Any],
) -> None:
    subscription = uuid.uuid4()
    leased = await _leased(conn, subscription, 3)
    await conn.execute(
        """
        INSERT INTO amebo.delivery_queue (delivery_id, event_id, subscription_id, attempt, run_at)
        SELECT gen_random_uuid(), gen_random_uuid(), %s, 0, now() FROM generate_series(1, 4)
        """,
        [subscription],
    )
    rows = await _record(conn, [_outcome(d, t, subscription, ok=False) for d, t in leased])
    assert sorted(r[0] for r in rows) == sorted(d for d, _ in leased)
    cursor = await conn.execute(
        """
        SELECT consecutive_failures, cooldown_seconds, open_until > now()
        FROM amebo.endpoint_health WHERE subscription_id = %s
        """,
        [subscription],
    )
    assert await cursor.fetchall() == [(3, 5.0, True)]
    # The four waiting deliveries: one probe at open_until, three a cooldown later.
    cursor = await conn.execute(
        """
        SELECT round(extract(epoch FROM q.run_at - h.open_until))::int AS after_open
        FROM amebo.delivery_queue AS q
        JOIN amebo.endpoint_health AS h USING (subscription_id)
        WHERE q.subscription_id = %s AND q.lease_token IS NULL AND q.attempt = 0
        ORDER BY after_open
        """,
        [subscription],
    )
    assert [r[0] for r in await cursor.fetchall()] == [0, 5, 5, 5]
