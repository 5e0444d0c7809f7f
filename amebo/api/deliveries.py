"""/v1/deliveries and /v1/retry-jobs: delivery status and history, and retrying by hand."""

from __future__ import annotations

import dataclasses
import datetime
import uuid

from aiohttp import web

from amebo import deliveries
from amebo.api import shapes
from amebo.api.auth import caller
from amebo.api.body import json_body, request_schema
from amebo.api.responses import json, query_int
from amebo.api.state import STATE
from amebo.errors import Detail, InvalidInput, NotFound

_RETRY_JOB = request_schema(shapes.RETRY_JOB_NEW)
_STATUSES = ("pending", "failed", "succeeded", "dead")


def _path_uuid(request: web.Request, name: str, what: str) -> uuid.UUID:
    raw = request.match_info[name]
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise NotFound(f"no {what} with id {raw!r}") from None


def _query_uuid(request: web.Request, name: str) -> uuid.UUID | None:
    raw = request.query.get(name)
    if not raw:
        return None
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise InvalidInput(
            f"{name} must be a UUID", [Detail(f"/query/{name}", "not a UUID")]
        ) from None


def _time(raw: str | None, pointer: str) -> datetime.datetime | None:
    if not raw:
        return None
    # RFC 3339 allows a lower-case "t"/"z" and a leap second, which Python does not.
    text = raw.upper().replace(":60", ":59")
    try:
        value = datetime.datetime.fromisoformat(text)
    except ValueError:
        raise InvalidInput(
            f"{pointer} must be an ISO 8601 time", [Detail(pointer, "not a date-time")]
        ) from None
    return value if value.tzinfo else value.replace(tzinfo=datetime.UTC)


async def list_all(request: web.Request) -> web.Response:
    await caller(request)
    status = request.query.get("status")
    if status is not None and status not in _STATUSES:
        raise InvalidInput(
            f"status must be one of {', '.join(_STATUSES)}",
            [Detail("/query/status", "unknown status")],
        )
    wanted = deliveries.RetryFilter(
        subscription_id=_query_uuid(request, "subscription_id"),
        subscriber=request.query.get("application"),
        action=request.query.get("action"),
        since=_time(request.query.get("since"), "/query/since"),
        until=_time(request.query.get("until"), "/query/until"),
    )
    limit = query_int(request, "limit", 100, 1, 1000)
    async with request.app[STATE].pool.connection() as conn:
        found = await deliveries.list_deliveries(conn, wanted, status, limit)
    return json({"deliveries": found})


async def get_one(request: web.Request) -> web.Response:
    await caller(request)
    delivery_id = _path_uuid(request, "delivery_id", "delivery")
    async with request.app[STATE].pool.connection() as conn:
        delivery = await deliveries.get_delivery(conn, delivery_id)
        attempts = await deliveries.attempts_of(conn, delivery_id)
    return json({**_plain(delivery), "history": attempts})


async def retry(request: web.Request) -> web.Response:
    who = await caller(request)
    delivery_id = _path_uuid(request, "delivery_id", "delivery")
    async with request.app[STATE].pool.connection() as conn:
        delivery = await deliveries.retry(conn, who.application, delivery_id)
    request.app[STATE].wake_worker()
    return json(delivery, 202)


async def start_job(request: web.Request) -> web.Response:
    who = await caller(request)
    body = await json_body(request, _RETRY_JOB)
    subscription = body.get("subscription_id")
    wanted = deliveries.RetryFilter(
        statuses=tuple(body.get("statuses", ("dead",))),
        subscription_id=uuid.UUID(subscription) if subscription else None,
        subscriber=body.get("application"),
        action=body.get("action"),
        since=_time(body.get("since"), "/since"),
        until=_time(body.get("until"), "/until"),
    )
    async with request.app[STATE].pool.connection() as conn:
        job = await deliveries.start_bulk_retry(conn, who.application, wanted)
    request.app[STATE].wake_worker()
    return json(job, 202, {"Location": f"/v1/retry-jobs/{job.id}"})


async def get_job(request: web.Request) -> web.Response:
    await caller(request)
    job_id = _path_uuid(request, "job_id", "retry job")
    async with request.app[STATE].pool.connection() as conn:
        job = await deliveries.get_retry_job(conn, job_id)
    return json(job)


def _plain(delivery: deliveries.Delivery) -> dict[str, object]:
    return dataclasses.asdict(delivery)
