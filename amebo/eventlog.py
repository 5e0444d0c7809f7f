"""Appending facts to the immutable log, and applying them to the projections at once.

Every write amebo makes goes through ``record`` inside the caller's transaction, so a fact
and the read models it shapes commit together or not at all.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from amebo import projections
from amebo.db.sql import query


@dataclasses.dataclass(frozen=True)
class Fact:
    stream: str
    type: str
    data: Mapping[str, Any]
    metadata: Mapping[str, Any] = dataclasses.field(default_factory=dict)


async def record(
    conn: psycopg.AsyncConnection[Any], facts: Sequence[Fact]
) -> list[projections.Appended]:
    """Append facts in order and apply them to every projection; returns (position, type)."""
    if not facts:
        return []
    encoded = [
        {"stream": fact.stream, "type": fact.type, "data": fact.data, "metadata": fact.metadata}
        for fact in facts
    ]
    cursor = await conn.execute(query("log_append"), {"facts": Jsonb(encoded)})
    appended = [(position, log_type) for position, log_type in await cursor.fetchall()]
    await projections.apply(conn, appended)
    return appended
