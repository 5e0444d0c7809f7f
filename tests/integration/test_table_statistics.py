"""Cached plans follow amebo's tables as they grow (amebo/db/upkeep.py, migration 0011).

amebo keeps generic plans for the life of a connection. Made while the log held a handful
of rows, the publish projection's plan scans the log, and left to autovacuum (up to a
minute away) every publish group reads the whole log. The witness is PostgreSQL's count of
rows the current transaction read by sequential scans, on a connection opened as amebo
opens its own.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import psycopg
import pytest

from amebo.publishing import Publication, publish_in
from amebo.runtime import connection_options
from tests.conftest import wait_until
from tests.support.api import Api, amebo_api, test_settings

GROWN = 6000  # events in the log before the second publish, well above the 200-row floor


@pytest.fixture
async def amebo_like(database_url: str) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
    async with await psycopg.AsyncConnection.connect(database_url, **connection_options()) as conn:
        yield conn


async def _log_rows_scanned_by_a_publish(conn: psycopg.AsyncConnection[Any]) -> int:
    # The counter holds this backend's counts not yet flushed to the statistics system,
    # earlier transactions' included, so a difference inside one transaction is exact.
    scanned = "SELECT pg_stat_get_xact_tuples_returned('amebo.log'::regclass)"
    async with conn.transaction():
        before = await (await conn.execute(scanned)).fetchone()
        await publish_in(conn, [Publication("orders.v1.placed", "shop", {"n": -1})])
        after = await (await conn.execute(scanned)).fetchone()
    assert before is not None and after is not None
    return int(after[0]) - int(before[0])


async def _publish_batch(api: Api, auth: dict[str, str]) -> None:
    batch = [{"action": "orders.v1.placed", "payload": {"n": n}} for n in range(1000)]
    response = await api.client.post("/v1/events/batch", json={"events": batch}, headers=auth)
    assert response.status == 200, await response.text()


async def test_publishing_reads_a_grown_log_by_index(
    database_url: str, amebo_like: psycopg.AsyncConnection[Any]
) -> None:
    async with amebo_api(database_url, test_settings()) as api:
        auth = await api.register_application("shop")
        await api.register_action(auth, "shop", "orders.v1.placed")
        await _log_rows_scanned_by_a_publish(amebo_like)  # plans made on a tiny log
        for _ in range(GROWN // 1000):
            await _publish_batch(api, auth)
        statistics = api.runtime.worker.table_statistics

        async def analyzed() -> bool:
            # The check reads counts that backends flush about once a second, so writes go
            # on until one check has seen the log's growth.
            if "log" in statistics.analyzed:
                return True
            await _publish_batch(api, auth)
            return False

        await wait_until(analyzed, timeout=30)
        # Left to autovacuum, this read the whole log (6,004 rows on PostgreSQL 15).
        assert await _log_rows_scanned_by_a_publish(amebo_like) == 0
