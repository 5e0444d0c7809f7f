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

import contextlib

import psycopg

from amebo.db.sql import query
from amebo.db.upkeep import Upkeep


class QueueVacuum(Upkeep):
    what = "vacuuming the delivery queue"

    def note_finished(self, count: int) -> None:
        """Deliveries that left the queue (succeeded or dead) in one recorded batch."""
        self.note(count)

    @property
    def vacuumed(self) -> int:
        return self.runs

    async def chore(self) -> bool:
        async with self._pool.connection() as conn:
            cursor = await conn.execute(query("delivery_queue_upkeep_lock"))
            row = await cursor.fetchone()
            if not row or not row[0]:
                return False  # another worker is at it
            try:
                # VACUUM cannot run in a transaction block or be prepared.
                await conn.execute(query("delivery_queue_vacuum"), prepare=False)
                return True
            finally:
                with contextlib.suppress(psycopg.Error):
                    await conn.execute(query("delivery_queue_upkeep_unlock"))
