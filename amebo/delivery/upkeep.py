"""Vacuuming the delivery queue as fast as it churns.

Every delivery inserts a queue row, updates it when claimed (``run_at`` is indexed, so the
update cannot be HOT) and deletes it when finished: a drain leaves dead tuples at several
times its rate. Autovacuum comes at most once per ``autovacuum_naptime`` (a minute by
default), and until it does, every claim and lease check wades through dead index entries:
a 50,000-delivery drain after a large history ran at 3,600 deliveries/s instead of 6,300,
with PostgreSQL's CPU per delivery doubled. So the workers vacuum the queue themselves once
enough deliveries have finished, at most once per interval, one worker at a time across all
processes (an advisory lock), without blocking claims (VACUUM takes no lock that DML waits on).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import psycopg
import psycopg_pool
import structlog

from amebo.db.sql import query
from amebo.wakeup import being_cancelled

log = structlog.get_logger(__name__)


class QueueVacuum:
    def __init__(
        self,
        pool: psycopg_pool.AsyncConnectionPool[Any],
        after_finished: int,
        min_interval: float = 1.0,
    ) -> None:
        self._pool = pool
        self._after = after_finished
        self._min_interval = min_interval
        self._finished = 0
        self._due = asyncio.Event()
        self.vacuumed = 0  # runs so far, for tests

    def note_finished(self, count: int) -> None:
        """Deliveries that left the queue (succeeded or dead) in one recorded batch."""
        if self._after <= 0:
            return
        self._finished += count
        if self._finished >= self._after:
            self._due.set()

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self._due.wait()
            self._due.clear()
            self._finished = 0
            started = loop.time()
            try:
                await self._vacuum()
            except asyncio.CancelledError:
                raise
            except (psycopg.Error, psycopg_pool.PoolTimeout) as error:
                if being_cancelled():
                    raise
                log.warning("vacuuming the delivery queue failed", error=str(error))
            # A rate limit, not a wait for work: at most one VACUUM per interval.
            await asyncio.sleep(max(0.0, started + self._min_interval - loop.time()))

    async def _vacuum(self) -> None:
        async with self._pool.connection() as conn:
            cursor = await conn.execute(query("delivery_queue_upkeep_lock"))
            row = await cursor.fetchone()
            if not row or not row[0]:
                return  # another worker is at it
            try:
                # VACUUM cannot run in a transaction block or be prepared.
                await conn.execute(query("delivery_queue_vacuum"), prepare=False)
                self.vacuumed += 1
            finally:
                with contextlib.suppress(psycopg.Error):
                    await conn.execute(query("delivery_queue_upkeep_unlock"))
