"""/v1/subscriptions: an application subscribes a handler URL to an action.

The signing secret is returned once, in the response that creates the subscription.
"""

from __future__ import annotations

import dataclasses
import uuid

from aiohttp import web

from amebo import registry
from amebo.api import shapes
from amebo.api.auth import caller
from amebo.api.body import json_body, request_schema
from amebo.api.responses import json, query_bool, query_int
from amebo.api.state import STATE
from amebo.errors import NotFound

_NEW = request_schema(shapes.SUBSCRIPTION_NEW)
_CHANGE = request_schema(shapes.SUBSCRIPTION_CHANGE)
_ROTATION = request_schema(shapes.SECRET_ROTATION)
DEFAULT_ROTATION_GRACE = 86_400.0


def _subscription_id(request: web.Request) -> uuid.UUID:
    raw = request.match_info["subscription_id"]
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise NotFound(f"no subscription with id {raw!r}") from None


async def create(request: web.Request) -> web.Response:
    who = await caller(request)
    body = await json_body(request, _NEW)
    state = request.app[STATE]
    async with state.pool.connection() as conn:
        created = await registry.create_subscription(
            conn,
            who.application,
            body["application"],
            body["action"],
            body["handler"],
            body.get("max_retries", state.default_max_retries),
            encryption_key=body.get("encryption_key"),
            retry_schedule=body.get("retry_schedule"),
        )
    subscription = created.subscription
    return json(
        {**_public(subscription), "secret": created.secret},
        201,
        {"Location": f"/v1/subscriptions/{subscription.id}"},
    )


async def list_all(request: web.Request) -> web.Response:
    await caller(request)
    limit = query_int(request, "limit", 1000, 1, 10_000)
    async with request.app[STATE].pool.connection() as conn:
        subscriptions = await registry.list_subscriptions(
            conn,
            request.query.get("application"),
            request.query.get("action"),
            query_bool(request, "active"),
            limit,
        )
    return json({"subscriptions": subscriptions})


async def get_one(request: web.Request) -> web.Response:
    await caller(request)
    async with request.app[STATE].pool.connection() as conn:
        subscription = await registry.get_subscription(conn, _subscription_id(request))
    return json(subscription)


async def change(request: web.Request) -> web.Response:
    """PATCH {"active": false} deactivates; DELETE does the same."""
    who = await caller(request)
    subscription_id = _subscription_id(request)
    if request.method == "PATCH":
        await json_body(request, _CHANGE)
    async with request.app[STATE].pool.connection() as conn:
        subscription = await registry.deactivate_subscription(
            conn, who.application, subscription_id
        )
    return json(subscription)


def _public(subscription: registry.Subscription) -> dict[str, object]:
    return dataclasses.asdict(subscription)


async def rotate_secret(request: web.Request) -> web.Response:
    """A new signing secret, shown once; the old one keeps signing for the grace period."""
    who = await caller(request)
    subscription_id = _subscription_id(request)
    body = await json_body(request, _ROTATION) if request.can_read_body else {}
    grace = float(body.get("grace_seconds", DEFAULT_ROTATION_GRACE))
    async with request.app[STATE].pool.connection() as conn:
        rotated = await registry.rotate_secret(conn, who.application, subscription_id, grace)
    return json({**_public(rotated.subscription), "secret": rotated.secret})
