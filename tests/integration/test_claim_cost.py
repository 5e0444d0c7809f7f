"""A saturated endpoint's backlog costs a claim nothing: the claim skips it by index.

The first claim filtered a run_at-ordered scan, so every claim for every healthy endpoint
read the whole backlog of a slow one. This checks the work the plan does, in rows read, not
in time.
"""

from __future__ import annotations

import uuid
from typing import Any

import psycopg

from amebo.db.sql import query

BACKLOG = 20_000


def _rows_read(plan: dict[str, Any]) -> int:
    """Rows every scan node produced or filtered away, over all its loops."""
    total = 0
    if "Scan" in plan["Node Type"]:
        loops = plan.get("Actual Loops", 1)
        total += (plan.get("Actual Rows", 0) + plan.get("Rows Removed by Filter", 0)) * loops
    for child in plan.get("Plans", []):
        total += _rows_read(child)
    return total


async def _queue_backlog(conn: psycopg.AsyncConnection[Any]) -> tuple[uuid.UUID, uuid.UUID]:
    """A slow subscription with a backlog of due rows, and a healthy one with 10."""
    slow, healthy = uuid.uuid4(), uuid.uuid4()
    await conn.execute(
        """
        INSERT INTO amebo.delivery_queue
            (delivery_id, event_id, subscription_id, attempt, run_at)
        SELECT gen_random_uuid(), gen_random_uuid(), %(subscription)s, 0,
               now() - interval '1 hour' + g * interval '1 ms'
        FROM generate_series(1, %(count)s) AS g
        """,
        {"subscription": slow, "count": BACKLOG},
    )
    await conn.execute(
        """
        INSERT INTO amebo.delivery_queue
            (delivery_id, event_id, subscription_id, attempt, run_at)
        SELECT gen_random_uuid(), gen_random_uuid(), %(subscription)s, 0, now()
        FROM generate_series(1, 10)
        """,
        {"subscription": healthy},
    )
    await conn.execute("ANALYZE amebo.delivery_queue")
    return slow, healthy


async def test_a_claim_reads_neither_a_busy_backlog_nor_the_whole_queue(
    conn: psycopg.AsyncConnection[Any],
) -> None:
    slow, _ = await _queue_backlog(conn)
    claim = query("delivery_claim")
    # The part that chooses and locks rows; the rest joins the registry for what was claimed.
    choosing = claim[: claim.index("), claimed AS (")] + ") SELECT delivery_id FROM ready"
    async with conn.transaction(force_rollback=True):
        cursor = await conn.execute(
            "EXPLAIN (ANALYZE, FORMAT JSON) " + choosing, {"limit": 200, "busy": [slow]}
        )
        row = await cursor.fetchone()
    assert row is not None
    plan = row[0][0]["Plan"]
    assert plan["Actual Rows"] == 10  # the healthy endpoint's rows, all of them
    assert _rows_read(plan) < 200, _rows_read(plan)


async def test_the_whole_claim_with_its_next_due_time_skips_the_backlog_too(
    conn: psycopg.AsyncConnection[Any],
) -> None:
    slow, _ = await _queue_backlog(conn)
    async with conn.transaction(force_rollback=True):
        cursor = await conn.execute(
            "EXPLAIN (ANALYZE, FORMAT JSON) " + query("delivery_claim"),
            {"limit": 200, "busy": [slow], "lease_seconds": 60, "token": uuid.uuid4()},
        )
        row = await cursor.fetchone()
    assert row is not None
    plan = row[0][0]["Plan"]
    assert _rows_read(plan) < 300, _rows_read(plan)


async def test_the_next_due_time_leaves_out_claimed_rows_and_saturated_subscriptions(
    conn: psycopg.AsyncConnection[Any],
) -> None:
    slow, healthy = await _queue_backlog(conn)
    await conn.execute(
        """
        INSERT INTO amebo.delivery_queue
            (delivery_id, event_id, subscription_id, attempt, run_at)
        VALUES (gen_random_uuid(), gen_random_uuid(), %(subscription)s, 0,
                now() + interval '30 seconds')
        """,
        {"subscription": healthy},
    )
    params = {"limit": 200, "lease_seconds": 60, "token": uuid.uuid4()}
    async with conn.transaction(force_rollback=True):
        cursor = await conn.execute(query("delivery_claim"), {**params, "busy": [slow]})
        rows = await cursor.fetchall()
        # The healthy subscription's 10 due rows are claimed (their events are not in the
        # log, so nothing comes back to send); its next row is 30 s away. The slow one's
        # backlog is due, but it is saturated: it does not count.
        assert 29 < rows[0][0] <= 30
    async with conn.transaction(force_rollback=True):
        cursor = await conn.execute(query("delivery_claim"), {**params, "busy": [slow, healthy]})
        assert await cursor.fetchall() == [(None,) + (None,) * 14]
