"""Rebuilding every projection from the log alone.

The log is locked against appends for the duration (readers go on), the projection tables
are emptied, and the log is replayed through the same ``apply`` the live path uses, all in
one transaction: until it commits, everyone else sees the old rows.

It is safe while amebo runs. Publishing waits for it. Leases are not facts, so the rebuilt
queue holds none: a delivery in flight at that moment has its outcome discarded (its lease
is gone) and is sent again, which at-least-once delivery allows. Tables that are not
projections (the outbox, subscription secrets, endpoint health, retry jobs) are untouched.
"""

from __future__ import annotations

from typing import Any

import psycopg

from amebo import projections
from amebo.db.sql import query

PAGE = 5000


async def rebuild(conn: psycopg.AsyncConnection[Any]) -> int:
    """Replays the whole log inside one transaction; returns how many facts were applied."""
    applied = 0
    async with conn.transaction():
        for statement in projections.rebuild_statements():
            await conn.execute(statement)
        after = 0
        while True:
            cursor = await conn.execute(query("log_runs_after"), {"after": after, "limit": PAGE})
            page = [(position, log_type) for position, log_type in await cursor.fetchall()]
            if not page:
                break
            await projections.apply(conn, page)
            applied += len(page)
            after = page[-1][0]
    return applied
