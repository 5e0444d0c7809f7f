"""Reading events and their deliveries, and outbox rows that were rejected instead."""

from __future__ import annotations

import dataclasses
import datetime
import uuid
from typing import Any

import psycopg
from psycopg.rows import class_row

from amebo.db.sql import query
from amebo.errors import NotFound

Connection = psycopg.AsyncConnection[Any]


@dataclasses.dataclass(frozen=True)
class Event:
    id: uuid.UUID
    action: str
    application: str
    deduper: str | None
    published_at: datetime.datetime
    payload: Any


@dataclasses.dataclass(frozen=True)
class Rejection:
    """An outbox row the relay refused; ``reasons`` are {pointer, message} objects."""

    id: uuid.UUID
    action: str
    deduper: str | None
    written_at: datetime.datetime
    rejected_at: datetime.datetime
    reasons: list[dict[str, str]]
    payload: Any


@dataclasses.dataclass(frozen=True)
class DeliveryStatus:
    id: uuid.UUID
    subscription_id: uuid.UUID
    handler: str
    status: str
    attempts: int
    next_attempt_at: datetime.datetime | None
    last_attempt_at: datetime.datetime | None
    last_status_code: int | None
    last_error: str | None
    updated_at: datetime.datetime


async def get_event(conn: Connection, event_id: uuid.UUID) -> Event:
    async with conn.cursor(row_factory=class_row(Event)) as cur:
        await cur.execute(query("event_get"), {"id": event_id})
        event = await cur.fetchone()
    if event is None:
        raise NotFound(f"no event with id {event_id}")
    return event


async def find_rejection(conn: Connection, event_id: uuid.UUID) -> Rejection | None:
    async with conn.cursor(row_factory=class_row(Rejection)) as cur:
        await cur.execute(query("rejection_get"), {"id": event_id})
        return await cur.fetchone()


async def deliveries_of(conn: Connection, event_id: uuid.UUID) -> list[DeliveryStatus]:
    async with conn.cursor(row_factory=class_row(DeliveryStatus)) as cur:
        await cur.execute(query("event_deliveries"), {"event_id": event_id})
        return await cur.fetchall()


async def list_events(
    conn: Connection,
    action: str | None,
    application: str | None,
    before: uuid.UUID | None,
    limit: int,
) -> list[Event]:
    async with conn.cursor(row_factory=class_row(Event)) as cur:
        await cur.execute(
            query("event_list"),
            {"action": action, "application": application, "before": before, "limit": limit},
        )
        return await cur.fetchall()
