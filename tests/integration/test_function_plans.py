"""amebo's SQL functions on the hot paths keep their plans.

PostgreSQL before 18 keeps no plan for a LANGUAGE sql function that it does not inline into
the calling query: every call parses, analyses and plans the body again. A function that
writes (INSERT, UPDATE, DELETE) or returns void is never inlined, so such a function must be
plpgsql, whose statements are prepared once per connection. The publish projection was a SQL
function, and its planning cost more than its inserts (sql/migrations/0012).
"""

from __future__ import annotations

import re
from typing import Any

import psycopg

WRITES = re.compile(r"\b(INSERT|UPDATE|DELETE)\b", re.IGNORECASE)


async def test_no_sql_function_is_replanned_on_every_call(
    conn: psycopg.AsyncConnection[Any],
) -> None:
    cursor = await conn.execute(
        """
        SELECT p.proname, p.prorettype = 'void'::regtype AS returns_void, p.prosrc
        FROM pg_proc AS p
        JOIN pg_namespace AS n ON n.oid = p.pronamespace
        JOIN pg_language AS l ON l.oid = p.prolang
        WHERE n.nspname = 'amebo' AND l.lanname = 'sql'
        """
    )
    functions = await cursor.fetchall()
    assert functions, "expected amebo's inlinable SQL functions (delivery_id, uuid_v7, ...)"
    replanned = [name for name, void, source in functions if void or WRITES.search(source)]
    assert replanned == []
