"""The log stays append-only even for a superuser who turns ordinary triggers off."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest


async def test_replica_role_cannot_rewrite_the_log(conn: psycopg.AsyncConnection[Any]) -> None:
    await conn.execute("INSERT INTO amebo.log (stream, type, data) VALUES ('t', 'test.fact', '{}')")
    for statement in (
        "DELETE FROM amebo.log",
        "UPDATE amebo.log SET type = 'x'",
        "TRUNCATE amebo.log",
    ):
        with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState):
            async with conn.transaction():
                await conn.execute("SET LOCAL session_replication_role = replica")
                await conn.execute(statement)  # type: ignore[arg-type]
    cursor = await conn.execute("SELECT count(*) FROM amebo.log WHERE stream = 't'")
    assert await cursor.fetchone() == (1,)
