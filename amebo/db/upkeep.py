"""Database chores that amebo does itself, because autovacuum comes too late for them.

Autovacuum looks at each database at most once per ``autovacuum_naptime`` (a minute by
default). Two things cannot wait that long: the delivery queue's dead tuples, which a drain
leaves at several times its rate (``amebo.delivery.upkeep``), and the statistics of tables
that are still young (``TableStatistics`` below). Each chore runs once enough rows were
written to matter, at most once per interval, off the paths that write them.
"""

from __future__ import annotations

import abc
import asyncio
from typing import Any

import psycopg
import psycopg_pool
import structlog

from amebo.db.sql import query
from amebo.wakeup import being_cancelled

log = structlog.get_logger(__name__)


class Upkeep(abc.ABC):
    """Runs ``chore`` after ``after`` noted rows (0: never), at most once per interval."""

    what = "upkeep"  # for the log, when a run fails

    def __init__(
        self,
        pool: psycopg_pool.AsyncConnectionPool[Any],
        after: int,
        min_interval: float = 1.0,
    ) -> None:
        self._pool = pool
        self._after = after
        self._min_interval = min_interval
        self._noted = 0
        self._due = asyncio.Event()
        self.runs = 0  # chores that did their work, for tests

    def note(self, rows: int) -> None:
        if self._after <= 0:
            return
        self._noted += rows
        if self._noted >= self._after:
            self._due.set()

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self._due.wait()
            self._due.clear()
            self._noted = 0
            started = loop.time()
            try:
                if await self.chore():
                    self.runs += 1
            except asyncio.CancelledError:
                raise
            except (psycopg.Error, psycopg_pool.PoolTimeout) as error:
                if being_cancelled():
                    raise
                log.warning(f"{self.what} failed", error=str(error))
            # A rate limit, not a wait for work: at most one run per interval.
            await asyncio.sleep(max(0.0, started + self._min_interval - loop.time()))

    @abc.abstractmethod
    async def chore(self) -> bool:
        """Does the work; false when there was nothing to do (or another process did it)."""


class TableStatistics(Upkeep):
    """ANALYZEs amebo's growing tables once they have doubled since their last statistics.

    amebo's statements keep generic plans for the life of a connection (prepared at first
    use under ``plan_cache_mode=force_generic_plan``; plpgsql functions keep theirs the same
    way), and a plan is made for the table sizes of its moment. On a young database the log
    holds a few rows, a sequential scan is its cheapest read, and that plan stays until an
    ANALYZE of the table invalidates it. Waiting for autovacuum, a publish group's projection
    read 21,000 log rows to find its 22 (20 ms a group) within 15 seconds of a fresh start.
    Doubling is checked often while tables are small and ANALYZE is cheap; once they are
    large, autovacuum's 10 % gets there first and this finds nothing to do.
    """

    what = "analyzing amebo's tables"

    def __init__(self, pool: psycopg_pool.AsyncConnectionPool[Any], after: int = 1000) -> None:
        super().__init__(pool, after)
        self.analyzed: list[str] = []  # tables analyzed so far, for tests

    async def chore(self) -> bool:
        async with self._pool.connection() as conn:
            cursor = await conn.execute(query("tables_analyze_outgrown"))
            tables = [name for (name,) in await cursor.fetchall()]
        if tables:
            log.debug("statistics refreshed", tables=tables)
            self.analyzed.extend(tables)
        return bool(tables)
