"""Read models derived only from the log.

Each module names the log types it handles and the named queries that apply them. The live
path and a rebuild apply facts the same way: ``apply`` takes appended (position, type) pairs,
splits them into runs of one type in position order, and runs each handler query once per
run. Because both paths share this code, a rebuild yields the rows the live path wrote.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping, Sequence
from typing import LiteralString

import psycopg

from amebo.db.sql import query
from amebo.projections import deliveries, registry, rejections

PROJECTIONS = (registry, deliveries, rejections)

# Log type -> the queries that apply it, in the order the projections are listed.
_HANDLERS: Mapping[str, tuple[str, ...]] = {
    log_type: tuple(name for module in PROJECTIONS for name in module.HANDLERS.get(log_type, ()))
    for log_type in {t for module in PROJECTIONS for t in module.HANDLERS}
}

# Children before parents, so TRUNCATE and refill respect foreign keys.
TABLES: tuple[str, ...] = tuple(
    table for module in reversed(PROJECTIONS) for table in module.TABLES
)

Appended = tuple[int, str]


def handled_types() -> frozenset[str]:
    return frozenset(_HANDLERS)


def runs(appended: Iterable[Appended]) -> Iterable[tuple[str, list[int]]]:
    """Consecutive facts of one type, as (type, positions)."""
    for log_type, group in itertools.groupby(appended, key=lambda fact: fact[1]):
        yield log_type, [position for position, _ in group]


async def apply(conn: psycopg.AsyncConnection[object], appended: Sequence[Appended]) -> None:
    for log_type, positions in runs(appended):
        for name in _HANDLERS.get(log_type, ()):
            await conn.execute(query(name), {"positions": positions})


def rebuild_statements() -> list[LiteralString]:
    truncate = "TRUNCATE " + ", ".join(TABLES)
    return ["LOCK TABLE amebo.log IN EXCLUSIVE MODE", truncate]
