"""The outbox relay: turns rows that producers committed to ``amebo.outbox`` into events.

Producers INSERT inside their own transactions (or call ``amebo.publish``). The relay judges
each committed row with the API's own checks, publishes the valid ones with ``publish_in``
(same dedupe, same fan-out, same log facts), records the others as ``event.rejected``, and
deletes them all, in one transaction per batch. A relay that dies mid-batch therefore loses
and repeats nothing, and relays in several processes share the work by skipping each other's
rows. Why it is built this way: docs/adr/0004-outbox-relay.md.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import uuid
from collections.abc import Callable, Sequence
from typing import Any

import orjson
import psycopg
import psycopg_pool
import structlog

from amebo.db.sql import query
from amebo.documents import MAX_DEPTH, unstorable
from amebo.errors import AmeboError, Detail
from amebo.eventlog import Fact, record
from amebo.publishing import ActionCatalog, Publication, check, publish_in
from amebo.wakeup import being_cancelled, wait

log = structlog.get_logger(__name__)

CHANNEL = "amebo_outbox"

Connection = psycopg.AsyncConnection[Any]

# Errors one row can cause that its neighbours must not pay for: bad data, a broken
# constraint, a value too large for an index. Anything else (the connection, a deadlock, a
# bug) fails the whole batch, which is then retried as it was.
_ROW_ERRORS = (psycopg.DataError, psycopg.IntegrityError, psycopg.errors.ProgramLimitExceeded)


@dataclasses.dataclass(frozen=True)
class RelayConfig:
    batch_size: int = 500
    poll_interval: float = 5.0


@dataclasses.dataclass(frozen=True)
class OutboxRow:
    id: uuid.UUID
    action: str
    payload: Any
    deduper: str | None
    metadata: dict[str, Any] | None
    written_at: datetime.datetime
    taken: bool

    def publication(self, application: str) -> Publication:
        return Publication(
            action=self.action,
            application=application,
            payload=self.payload,
            deduper=self.deduper,
            metadata=self.metadata or {},
            id=self.id,
        )

    def rejection(self, reasons: Sequence[Detail]) -> Fact:
        # A payload amebo cannot store or parse is left out of the fact that refuses it.
        storable = self.payload is not _UNREADABLE and unstorable(self.payload) is None
        return Fact(
            stream=f"event-{self.id}",
            type="event.rejected",
            data={
                "id": str(self.id),
                "action": self.action,
                "deduper": self.deduper,
                "payload": self.payload if storable else None,
                "reasons": [{"pointer": d.pointer, "message": d.message} for d in reasons],
                "written_at": self.written_at.isoformat(),
            },
            metadata=self.metadata or {},
        )


_UNREADABLE: Any = object()  # stands for a payload orjson could not parse


def _row(
    id: uuid.UUID,
    action: str,
    payload_text: str,
    deduper: str | None,
    metadata: dict[str, Any] | None,
    written_at: datetime.datetime,
    taken: bool,
) -> OutboxRow:
    try:
        payload = orjson.loads(payload_text)
    except orjson.JSONDecodeError:
        payload = _UNREADABLE
    return OutboxRow(id, action, payload, deduper, metadata, written_at, taken)


Accepted = tuple[OutboxRow, Publication]
Refused = tuple[OutboxRow, list[Detail]]


@dataclasses.dataclass(frozen=True)
class Batch:
    """What one relay transaction did. Rows whose deduper was seen before are claimed but
    neither published nor rejected: they are the event that already exists."""

    claimed: int
    published: int
    rejected: int


async def relay_batch(conn: Connection, catalog: ActionCatalog, limit: int) -> Batch:
    """Claims, judges and publishes up to ``limit`` rows inside the caller's transaction."""
    cursor = await conn.execute(query("outbox_claim"), {"limit": limit})
    rows = [_row(*fields) for fields in await cursor.fetchall()]
    accepted, refused = await _judge(catalog, rows)
    published, poisoned = await _publish_isolating(conn, accepted)
    refused += poisoned
    await record(conn, [row.rejection(reasons) for row, reasons in refused])
    return Batch(claimed=len(rows), published=published, rejected=len(refused))


async def _judge(
    catalog: ActionCatalog, rows: Sequence[OutboxRow]
) -> tuple[list[Accepted], list[Refused]]:
    accepted: list[Accepted] = []
    refused: list[Refused] = []
    for row in rows:
        if row.taken:
            refused.append((row, [Detail("/id", "another event already has this id")]))
            continue
        problem = (
            Detail("/payload", f"nested too deep to read (over {MAX_DEPTH} levels)")
            if row.payload is _UNREADABLE
            else unstorable(row.payload, "/payload")
        )
        if problem is not None:
            refused.append((row, [problem]))
            continue
        try:
            # No caller: a producer with access to the outbox may publish any action.
            entry = await check(catalog, None, row.action, row.payload)
        except AmeboError as error:
            refused.append((row, error.details or [Detail("", error.message)]))
            continue
        accepted.append((row, row.publication(entry.application)))
    return accepted, refused


async def _publish_isolating(
    conn: Connection, accepted: Sequence[Accepted]
) -> tuple[int, list[Refused]]:
    """Publishes inside a savepoint. When the database refuses the statement because of some
    row, the batch is halved until that row stands alone and is rejected, so one bad row can
    neither stall the outbox nor take its neighbours down with it."""
    if not accepted:
        return 0, []
    try:
        async with conn.transaction():
            published = await publish_in(conn, [publication for _, publication in accepted])
        return sum(p.created for p in published.events), []
    except _ROW_ERRORS as error:
        if len(accepted) > 1:
            middle = len(accepted) // 2
            first, first_refused = await _publish_isolating(conn, accepted[:middle])
            second, second_refused = await _publish_isolating(conn, accepted[middle:])
            return first + second, first_refused + second_refused
        [(row, _)] = accepted
        reason = error.diag.message_primary or type(error).__name__
        log.warning("outbox row refused by the database", id=str(row.id), error=reason)
        return 0, [(row, [Detail("", f"the database refused this row: {reason}")])]


class OutboxRelay:
    """Relays batch after batch while rows wait, then sleeps until a producer's NOTIFY
    (sent once per INSERT statement by a trigger) or the slow safety poll wakes it."""

    def __init__(
        self,
        pool: psycopg_pool.AsyncConnectionPool[Any],
        catalog: ActionCatalog,
        config: RelayConfig,
        on_publish: Callable[[int], None] | None = None,
    ) -> None:
        self._pool = pool
        self._catalog = catalog
        self._config = config
        self._on_publish = on_publish
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self.claimed = 0  # rows this relay has taken out of the outbox, for tests and stats

    def wake(self) -> None:
        self._wake.set()

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._relay_loop(), name="amebo-outbox-relay")]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []

    async def relay_once(self) -> Batch:
        async with self._pool.connection() as conn, conn.transaction():
            batch = await relay_batch(conn, self._catalog, self._config.batch_size)
        if batch.rejected:
            log.info("outbox rows rejected", count=batch.rejected)
        if batch.published and self._on_publish is not None:
            self._on_publish(batch.published)
        self.claimed += batch.claimed
        return batch

    async def _relay_loop(self) -> None:
        while True:
            # Clear before claiming: a wake-up that lands during the batch must not be lost.
            self._wake.clear()
            try:
                batch = await self.relay_once()
            except asyncio.CancelledError:
                raise
            except (psycopg.Error, psycopg_pool.PoolTimeout) as error:
                if being_cancelled():
                    raise
                log.warning("outbox relay failed; will retry", error=str(error))
                await wait(self._wake, self._config.poll_interval)
                continue
            if batch.claimed < self._config.batch_size:
                await wait(self._wake, self._config.poll_interval)
