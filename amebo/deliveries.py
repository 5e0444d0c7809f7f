"""Deliveries: reading their status and history, and retrying them by hand.

A retry is a fact (``delivery.retry_requested``) that puts the delivery back in the queue
with a fresh attempt series. A bulk retry is a job that walks every matching delivery in
pages, in the background, so it covers all matches however many there are.
"""

from __future__ import annotations

import dataclasses
import datetime
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import psycopg
from psycopg.rows import class_row
from psycopg.types.json import Jsonb

from amebo.db.sql import query
from amebo.errors import Conflict, Detail, Forbidden, NotFound
from amebo.eventlog import Fact, record

Connection = psycopg.AsyncConnection[Any]

RETRYABLE = ("failed", "dead", "succeeded")


@dataclasses.dataclass(frozen=True)
class Delivery:
    id: uuid.UUID
    event_id: uuid.UUID
    subscription_id: uuid.UUID
    subscriber: str
    action: str
    handler: str
    status: str
    attempts: int
    next_attempt_at: datetime.datetime | None
    last_attempt_at: datetime.datetime | None
    last_status_code: int | None
    last_error: str | None
    created_at: datetime.datetime
    updated_at: datetime.datetime


@dataclasses.dataclass(frozen=True)
class Attempt:
    attempt: int
    outcome: str
    status_code: int | None
    latency_ms: float | None
    error: str | None
    response: str | None
    attempted_at: str | None
    next_attempt_at: str | None


@dataclasses.dataclass(frozen=True)
class RetryJob:
    id: uuid.UUID
    requested_by: str | None
    filter: dict[str, Any]
    status: str
    retried: int
    requested_at: datetime.datetime
    finished_at: datetime.datetime | None


@dataclasses.dataclass(frozen=True)
class RetryFilter:
    statuses: Sequence[str] = ("dead",)
    subscription_id: uuid.UUID | None = None
    subscriber: str | None = None
    action: str | None = None
    since: datetime.datetime | None = None
    until: datetime.datetime | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "statuses": list(self.statuses),
            "subscription_id": str(self.subscription_id) if self.subscription_id else None,
            "subscriber": self.subscriber,
            "action": self.action,
            "since": self.since.isoformat() if self.since else None,
            "until": self.until.isoformat() if self.until else None,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RetryFilter:
        def when(key: str) -> datetime.datetime | None:
            value = data.get(key)
            return datetime.datetime.fromisoformat(value) if value else None

        subscription = data.get("subscription_id")
        return cls(
            statuses=tuple(data.get("statuses") or ("dead",)),
            subscription_id=uuid.UUID(subscription) if subscription else None,
            subscriber=data.get("subscriber"),
            action=data.get("action"),
            since=when("since"),
            until=when("until"),
        )


async def get_delivery(conn: Connection, delivery_id: uuid.UUID) -> Delivery:
    async with conn.cursor(row_factory=class_row(Delivery)) as cur:
        await cur.execute(query("delivery_get"), {"id": delivery_id})
        delivery = await cur.fetchone()
    if delivery is None:
        raise NotFound(f"no delivery with id {delivery_id}")
    return delivery


async def attempts_of(conn: Connection, delivery_id: uuid.UUID) -> list[Attempt]:
    cursor = await conn.execute(query("log_stream"), {"stream": f"delivery-{delivery_id}"})
    attempts = []
    for _, log_type, data, _, _ in await cursor.fetchall():
        if log_type != "delivery.attempted":
            continue
        attempts.append(
            Attempt(
                attempt=data["attempt"],
                outcome=data["outcome"],
                status_code=data.get("status_code"),
                latency_ms=data.get("latency_ms"),
                error=data.get("error"),
                response=data.get("response"),
                attempted_at=data.get("attempted_at"),
                next_attempt_at=data.get("next_attempt_at"),
            )
        )
    return attempts


async def list_deliveries(
    conn: Connection, retry_filter: RetryFilter, status: str | None, limit: int
) -> list[Delivery]:
    async with conn.cursor(row_factory=class_row(Delivery)) as cur:
        await cur.execute(
            query("delivery_list"),
            {
                "subscription_id": retry_filter.subscription_id,
                "subscriber": retry_filter.subscriber,
                "action": retry_filter.action,
                "status": status,
                "since": retry_filter.since,
                "until": retry_filter.until,
                "limit": limit,
            },
        )
        return await cur.fetchall()


def retry_fact(delivery_id: uuid.UUID, requested_by: str | None) -> Fact:
    return Fact(
        stream=f"delivery-{delivery_id}",
        type="delivery.retry_requested",
        data={"delivery_id": str(delivery_id), "requested_by": requested_by or "operator"},
    )


async def retry(conn: Connection, caller: str | None, delivery_id: uuid.UUID) -> Delivery:
    """Queue one delivery again with a fresh attempt series; the caller must own its
    subscription (or be the operator)."""
    delivery = await get_delivery(conn, delivery_id)
    if caller is not None and caller != delivery.subscriber:
        raise Forbidden(f"{caller!r} cannot retry deliveries of {delivery.subscriber!r}")
    if delivery.status not in RETRYABLE:
        raise Conflict(
            f"delivery {delivery_id} is {delivery.status}; it will be tried without asking",
            [Detail("/status", f"is {delivery.status}")],
        )
    async with conn.transaction():
        cursor = await conn.execute(query("delivery_lock"), {"id": delivery_id})
        locked = await cursor.fetchone()
        if locked is None or locked[1] not in RETRYABLE:
            raise Conflict(
                f"delivery {delivery_id} changed meanwhile; look again",
                [Detail("/status", "changed while retrying")],
            )
        cursor = await conn.execute(
            query("subscription_is_active"), {"id": delivery.subscription_id}
        )
        row = await cursor.fetchone()
        if not row or not row[0]:
            raise Conflict(
                "the subscription is deactivated; nothing would receive the retry",
                [Detail("/subscription_id", "deactivated")],
            )
        await record(conn, [retry_fact(delivery_id, caller)])
        await conn.execute(
            query("endpoint_health_reset"), {"subscription_ids": [delivery.subscription_id]}
        )
        await conn.execute(query("events_wake_workers"))
    return await get_delivery(conn, delivery_id)


async def start_bulk_retry(
    conn: Connection, caller: str | None, retry_filter: RetryFilter
) -> RetryJob:
    """An application's bulk retry covers only its own subscriptions."""
    if caller is not None:
        if retry_filter.subscriber not in (None, caller):
            raise Forbidden(f"{caller!r} cannot retry deliveries of {retry_filter.subscriber!r}")
        retry_filter = dataclasses.replace(retry_filter, subscriber=caller)
    job_id = uuid.uuid4()
    async with conn.transaction():
        await conn.execute(
            query("retry_job_create"),
            {"id": job_id, "requested_by": caller, "filter": Jsonb(retry_filter.as_json())},
        )
        await record(
            conn,
            [
                Fact(
                    stream=f"retry-job-{job_id}",
                    type="delivery.bulk_retry_requested",
                    data={
                        "job_id": str(job_id),
                        "requested_by": caller or "operator",
                        "filter": retry_filter.as_json(),
                    },
                )
            ],
        )
        await conn.execute(query("retry_jobs_wake"))
    return await get_retry_job(conn, job_id)


async def get_retry_job(conn: Connection, job_id: uuid.UUID) -> RetryJob:
    async with conn.cursor(row_factory=class_row(RetryJob)) as cur:
        await cur.execute(query("retry_job_get"), {"id": job_id})
        job = await cur.fetchone()
    if job is None:
        raise NotFound(f"no retry job with id {job_id}")
    return job


async def advance_bulk_retry(conn: Connection, page_size: int = 500) -> bool:
    """Retry one page of one running job; returns whether there was a job to work on."""
    async with conn.transaction():
        cursor = await conn.execute(query("retry_job_claim"))
        job = await cursor.fetchone()
        if job is None:
            return False
        job_id, filter_json, after = job
        retry_filter = RetryFilter.from_json(filter_json)
        cursor = await conn.execute(
            query("retry_job_page"),
            {
                "statuses": list(retry_filter.statuses),
                "subscription_id": retry_filter.subscription_id,
                "subscriber": retry_filter.subscriber,
                "action": retry_filter.action,
                "since": retry_filter.since,
                "until": retry_filter.until,
                "after": after,
                "limit": page_size,
            },
        )
        rows = await cursor.fetchall()
        page = [delivery_id for delivery_id, _ in rows]
        await record(conn, [retry_fact(delivery_id, "bulk retry") for delivery_id in page])
        await conn.execute(
            query("endpoint_health_reset"),
            {"subscription_ids": sorted({subscription_id for _, subscription_id in rows})},
        )
        await conn.execute(
            query("retry_job_advance"),
            {
                "id": job_id,
                "cursor": page[-1] if page else after,
                "retried": len(page),
                "finished": len(page) < page_size,
            },
        )
        if page:
            await conn.execute(query("events_wake_workers"))
    return True
