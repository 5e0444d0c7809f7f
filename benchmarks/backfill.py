"""Fills an amebo database with history fast, in the shape amebo itself writes it.

Each historical event is what a published and delivered event leaves behind: an
``event.published`` fact naming its subscription, a ``delivery.attempted`` fact that
succeeded, and their rows in the ``events`` and ``deliveries`` projections (the delivery
queue is empty again, as after a drain). Ids are version-7 UUIDs from timestamps in the past,
so new events sort after them as they would. Rows are made server-side with
``generate_series``, one chunk per transaction.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import psycopg

CHUNK = 100_000

# %(first)s..%(last)s number the events; %(base_ms)s is the first one's time in epoch ms.
FILL_CHUNK = """
WITH numbered AS (
    SELECT g,
           (lpad(to_hex(%(base_ms)s::bigint + g), 12, '0') || '7' || lpad(to_hex(g %% 4096), 3, '0')
            || '8' || lpad(to_hex(g), 15, '0'))::uuid AS event_id,
           to_timestamp((%(base_ms)s::bigint + g) / 1000.0) AS at
    FROM generate_series(%(first)s::bigint, %(last)s::bigint) AS g
), published AS (
    INSERT INTO amebo.log (stream, type, data, recorded_at)
    SELECT 'event-' || event_id, 'event.published',
           jsonb_build_object(
               'id', event_id, 'action', %(action)s::text, 'application', %(application)s::text,
               'deduper', NULL,
               'payload', jsonb_build_object('seq', g, 'customer_id', g,
                                             'email', 'user' || g || '@example.com',
                                             'pad', repeat('x', 64)),
               'subscriptions', jsonb_build_array(%(subscription)s::uuid)),
           at
    FROM numbered
    ORDER BY g
    RETURNING position, (data ->> 'id')::uuid AS event_id, recorded_at
), events AS (
    INSERT INTO amebo.events (id, action, application, deduper, position, published_at)
    SELECT event_id, %(action)s, %(application)s, NULL, position, recorded_at
    FROM published
    RETURNING id, published_at
), delivered AS (
    SELECT id AS event_id, amebo.delivery_id(id, %(subscription)s::uuid) AS delivery_id,
           published_at + interval '2 milliseconds' AS at
    FROM events
), attempted AS (
    INSERT INTO amebo.log (stream, type, data, recorded_at)
    SELECT 'delivery-' || delivery_id, 'delivery.attempted',
           jsonb_build_object(
               'delivery_id', delivery_id, 'event_id', event_id,
               'subscription_id', %(subscription)s::uuid, 'attempt', 1,
               'outcome', 'succeeded', 'status_code', 204, 'latency_ms', 1.0,
               'error', NULL, 'response', NULL, 'next_attempt_at', NULL, 'attempted_at', at),
           at
    FROM delivered
    RETURNING 1
)
INSERT INTO amebo.deliveries
    (id, event_id, subscription_id, status, attempts, next_attempt_at, last_attempt_at,
     last_status_code, last_error, created_at, updated_at)
SELECT delivery_id, event_id, %(subscription)s::uuid, 'succeeded', 1, NULL, at, 204, NULL,
       at - interval '2 milliseconds', at
FROM delivered
"""


def fill(
    database_url: str,
    events: int,
    action: str,
    application: str,
    subscription: str,
    progress: Callable[[int], object],
) -> None:
    """Adds ``events`` historical events (two log facts each), then VACUUM ANALYZE, as
    autovacuum would have done over the time such a history took to build, and CHECKPOINT."""
    base_ms = 1_600_000_000_000  # September 2020: long before any event published now
    with psycopg.connect(database_url, autocommit=True) as conn:
        # Nothing is lost if the fill is cut short: it is thrown away with the database.
        conn.execute("SET synchronous_commit = off")
        for first in range(0, events, CHUNK):
            last = min(first + CHUNK, events) - 1
            conn.execute(
                FILL_CHUNK,  # type: ignore[arg-type]
                {
                    "first": first,
                    "last": last,
                    "base_ms": base_ms,
                    "action": action,
                    "application": application,
                    "subscription": subscription,
                },
            )
            progress(last - first + 1)
        # Every table, the hot delivery queue too: autovacuum would have visited it many times
        # while such a history built up, and its dead tuples are not what this measures.
        conn.execute("VACUUM ANALYZE")
        # The fill dirtied more pages at once than a live system ever holds; write them out
        # now, or the next checkpoint lands inside the measurements that follow.
        with contextlib.suppress(psycopg.errors.InsufficientPrivilege):
            conn.execute("CHECKPOINT")


def sizes(database_url: str) -> dict[str, int]:
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT c.relname, pg_total_relation_size(c.oid) FROM pg_class AS c "
            "JOIN pg_namespace AS n ON n.oid = c.relnamespace "
            "WHERE n.nspname = 'amebo' AND c.relname IN ('log', 'events', 'deliveries')"
        ).fetchall()
        count = conn.execute("SELECT count(*) FROM amebo.log").fetchone()
    result = {f"{name} bytes": int(size) for name, size in rows}
    result["log rows"] = int(count[0]) if count else 0
    return result
