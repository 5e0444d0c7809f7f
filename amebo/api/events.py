"""/v1/events: publish an event (or up to 1,000 at once) and read what happened to it."""

from __future__ import annotations

import uuid
from typing import Any

from aiohttp import web

from amebo import events, publishing
from amebo.api import shapes
from amebo.api.auth import Caller, caller
from amebo.api.body import json_body, request_schema
from amebo.api.problems import status_of
from amebo.api.responses import json, query_int
from amebo.api.state import STATE, ApiState
from amebo.errors import AmeboError, Detail, InvalidInput, NotFound
from amebo.publishing import Publication

_NEW = request_schema(shapes.EVENT_NEW)
_BATCH = request_schema(shapes.EVENT_BATCH)


async def _publication(
    state: ApiState, who: Caller, item: dict[str, Any], pointer: str
) -> Publication:
    entry = await publishing.check(
        state.catalog, who.application, item["action"], item["payload"], pointer
    )
    return Publication(
        action=item["action"],
        application=entry.application,
        payload=item["payload"],
        deduper=item.get("deduper"),
    )


async def publish(request: web.Request) -> web.Response:
    who = await caller(request)
    body = await json_body(request, _NEW)
    state = request.app[STATE]
    publication = await _publication(state, who, body, "")
    [published] = await state.publisher.publish([publication])
    return json(
        {"id": published.id, "created": published.created},
        201 if published.created else 200,
        {"Location": f"/v1/events/{published.id}"},
    )


async def publish_batch(request: web.Request) -> web.Response:
    """Each item is checked and deduplicated on its own; one bad item fails only itself."""
    who = await caller(request)
    body = await json_body(request, _BATCH)
    state = request.app[STATE]
    results: list[dict[str, Any] | None] = [None] * len(body["events"])
    accepted: list[tuple[int, Publication]] = []
    for index, item in enumerate(body["events"]):
        try:
            accepted.append((index, await _publication(state, who, item, f"/events/{index}")))
        except AmeboError as error:
            results[index] = {
                "status": status_of(error),
                "title": error.title,
                "detail": error.message,
                "errors": [{"pointer": d.pointer, "message": d.message} for d in error.details],
            }
    if accepted:
        published = await state.publisher.publish([p for _, p in accepted])
        for (index, _), outcome in zip(accepted, published, strict=True):
            results[index] = {
                "status": 201 if outcome.created else 200,
                "id": outcome.id,
                "created": outcome.created,
            }
    return json(
        {"results": results}, 207 if any(r and r["status"] >= 400 for r in results) else 200
    )


def _event_id(request: web.Request) -> uuid.UUID:
    raw = request.match_info["event_id"]
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise NotFound(f"no event with id {raw!r}") from None


async def get_one(request: web.Request) -> web.Response:
    """An event with its deliveries; or, for an outbox row the relay refused, why."""
    await caller(request)
    event_id = _event_id(request)
    async with request.app[STATE].pool.connection() as conn:
        try:
            event = await events.get_event(conn, event_id)
        except NotFound:
            rejection = await events.find_rejection(conn, event_id)
            if rejection is None:
                raise
            return json(_rejected(rejection))
        deliveries = await events.deliveries_of(conn, event_id)
    return json({**_event(event), "status": "published", "deliveries": deliveries})


async def list_all(request: web.Request) -> web.Response:
    await caller(request)
    limit = query_int(request, "limit", 100, 1, 1000)
    before_raw = request.query.get("before")
    before = None
    if before_raw:
        try:
            before = uuid.UUID(before_raw)
        except ValueError:
            raise InvalidInput(
                "before must be an event id", [Detail("/query/before", "not a UUID")]
            ) from None
    async with request.app[STATE].pool.connection() as conn:
        found = await events.list_events(
            conn, request.query.get("action"), request.query.get("application"), before, limit
        )
    return json({"events": [_event(e) for e in found]})


def _rejected(rejection: events.Rejection) -> dict[str, Any]:
    return {
        "id": rejection.id,
        "status": "rejected",
        "action": rejection.action,
        "deduper": rejection.deduper,
        "written_at": rejection.written_at,
        "rejected_at": rejection.rejected_at,
        "payload": rejection.payload,
        "reasons": rejection.reasons,
        "deliveries": [],
    }


def _event(event: events.Event) -> dict[str, Any]:
    return {
        "id": event.id,
        "action": event.action,
        "application": event.application,
        "deduper": event.deduper,
        "published_at": event.published_at,
        "payload": event.payload,
    }
