"""Publishing events: validate each payload, then commit many publishes in one transaction.

Group commit: publishes that arrive while a transaction is in flight wait in a queue and go
together in the next one, so a commit (and its fsync) is shared by every request in it. A
request is answered only after the transaction holding its event has committed.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import uuid
from collections.abc import Callable, Sequence
from typing import Any

import psycopg
import psycopg_pool
import structlog
from psycopg.types.json import Jsonb

from amebo.db.sql import query
from amebo.errors import Detail, Forbidden, NotFound, SchemaViolation
from amebo.ids import uuid7
from amebo.schemas import Validator, compile_schema, violations

log = structlog.get_logger(__name__)

MAX_GROUP = 1000


@dataclasses.dataclass(frozen=True)
class CatalogEntry:
    application: str
    validator: Validator


class ActionCatalog:
    """Compiled validators by action name. Registered schemas never change, so entries are
    kept for the life of the process; a miss reads the registry once."""

    def __init__(self, pool: psycopg_pool.AsyncConnectionPool[Any]) -> None:
        self._pool = pool
        self._entries: dict[str, CatalogEntry] = {}

    async def get(self, action: str) -> CatalogEntry | None:
        entry = self._entries.get(action)
        if entry is not None:
            return entry
        async with self._pool.connection() as conn:
            cursor = await conn.execute(query("action_publish_info"), {"name": action})
            row = await cursor.fetchone()
        if row is None:
            return None
        entry = CatalogEntry(application=row[0], validator=compile_schema(row[1]))
        self._entries[action] = entry
        return entry


@dataclasses.dataclass(frozen=True)
class Publication:
    """One event to publish, already validated."""

    action: str
    application: str
    payload: Any
    deduper: str | None = None
    metadata: dict[str, Any] = dataclasses.field(default_factory=dict)
    # Set by the outbox relay, so an event keeps the id its producer was given; else new.
    id: uuid.UUID | None = None


@dataclasses.dataclass(frozen=True)
class Published:
    id: uuid.UUID
    created: bool
    deliveries: int = 0  # deliveries this publish created (0 when it was a duplicate)


async def check(
    catalog: ActionCatalog, caller: str | None, action: str, payload: Any, pointer: str = ""
) -> CatalogEntry:
    """Raises unless ``caller`` may publish ``action`` and ``payload`` matches its schema."""
    entry = await catalog.get(action)
    if entry is None:
        raise NotFound(
            f"no action named {action!r}", [Detail(pointer + "/action", "not registered")]
        )
    if caller is not None and caller != entry.application:
        raise Forbidden(
            f"{caller!r} cannot publish {action!r}, which belongs to {entry.application!r}",
            [Detail(pointer + "/action", "belongs to another application")],
        )
    problems = violations(entry.validator, payload, pointer + "/payload")
    if problems:
        raise SchemaViolation(f"payload does not match the schema of {action!r}", problems)
    return entry


def _deduper_lock_key(action: str, deduper: str) -> int:
    digest = hashlib.blake2b(f"{action}\x00{deduper}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


@dataclasses.dataclass(frozen=True)
class PublishedGroup:
    events: list[Published]  # one per publication, in order
    # Subscriptions that may have new deliveries (empty when none were created).
    subscriptions: frozenset[uuid.UUID] = frozenset()

    @property
    def rows_written(self) -> int:
        """Rows the group added to the growing tables: log and events, and deliveries."""
        return sum(2 + e.deliveries for e in self.events if e.created)


async def publish_in(
    conn: psycopg.AsyncConnection[Any], publications: Sequence[Publication]
) -> PublishedGroup:
    """Append, project and fan out ``publications`` in one statement: its own transaction on
    an autocommit connection, or part of the caller's open one. Workers are not told: the
    caller does that after its commit (``wakeup.Notifier``)."""
    keys = sorted(
        {_deduper_lock_key(p.action, p.deduper) for p in publications if p.deduper is not None}
    )
    events = [
        {
            "id": p.id or uuid7(),
            "action": p.action,
            "application": p.application,
            "deduper": p.deduper,
            "payload": p.payload,
            "metadata": p.metadata,
        }
        for p in publications
    ]
    cursor = await conn.execute(
        query("events_publish"), {"events": Jsonb(events), "dedupe_locks": keys}
    )
    rows = await cursor.fetchall()
    return PublishedGroup(
        [
            Published(id=event_id, created=created, deliveries=fanout or 0)
            for event_id, created, _, fanout, _ in rows
        ],
        frozenset(rows[0][4] or ()) if rows else frozenset(),
    )


@dataclasses.dataclass
class _Request:
    publications: Sequence[Publication]
    done: asyncio.Future[list[Published]]


class Publisher:
    """Group commit over a few connections; ``on_commit`` runs after each commit, with what
    it published (the in-process delivery worker uses its subscriptions to wake at once)."""

    def __init__(
        self,
        pool: psycopg_pool.AsyncConnectionPool[Any],
        committers: int = 4,
        on_commit: Callable[[PublishedGroup], None] | None = None,
    ) -> None:
        self._pool = pool
        self._queue: asyncio.Queue[_Request] = asyncio.Queue()
        self._committers = committers
        self._on_commit = on_commit
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._run()) for _ in range(self._committers)]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []

    async def publish(self, publications: Sequence[Publication]) -> list[Published]:
        if not self._tasks:
            raise RuntimeError("publisher is not started")
        done: asyncio.Future[list[Published]] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(_Request(publications, done))
        return await done

    async def _run(self) -> None:
        while True:
            group = [await self._queue.get()]
            size = len(group[0].publications)
            while size < MAX_GROUP and not self._queue.empty():
                request = self._queue.get_nowait()
                group.append(request)
                size += len(request.publications)
            await self._commit(group)

    async def _commit(self, group: list[_Request]) -> None:
        live = [request for request in group if not request.done.cancelled()]
        if not live:
            return
        try:
            group_result = await self._commit_together(live)
        except psycopg.errors.UniqueViolation:
            # Two racing groups met on a constraint; fall back to one transaction each so a
            # single conflict cannot fail its neighbours.
            await self._commit_apart(live)
            return
        except Exception as error:
            for request in live:
                if not request.done.done():
                    request.done.set_exception(error)
            return
        results, offset = group_result.events, 0
        for request in live:
            count = len(request.publications)
            if not request.done.done():
                request.done.set_result(results[offset : offset + count])
            offset += count
        self._committed(group_result)

    async def _commit_together(self, group: list[_Request]) -> PublishedGroup:
        publications = [p for request in group for p in request.publications]
        return await self._transaction(publications)

    async def _transaction(self, publications: Sequence[Publication]) -> PublishedGroup:
        # One statement on an autocommit connection: its own transaction, one round trip.
        async with self._pool.connection() as conn:
            return await publish_in(conn, publications)

    async def _commit_apart(self, group: list[_Request]) -> None:
        for request in group:
            try:
                group_result = await self._transaction(request.publications)
            except Exception as error:
                if not request.done.done():
                    request.done.set_exception(error)
                continue
            if not request.done.done():
                request.done.set_result(group_result.events)
            self._committed(group_result)

    def _committed(self, group: PublishedGroup) -> None:
        if self._on_commit is not None:
            self._on_commit(group)
