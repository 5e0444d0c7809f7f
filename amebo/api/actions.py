"""/v1/actions: an application registers the actions it emits, each with a JSON Schema."""

from __future__ import annotations

from aiohttp import web

from amebo import registry
from amebo.api import shapes
from amebo.api.auth import caller
from amebo.api.body import json_body, request_schema
from amebo.api.responses import json, query_int
from amebo.api.state import STATE

_NEW = request_schema(shapes.ACTION_NEW)


async def register(request: web.Request) -> web.Response:
    who = await caller(request)
    body = await json_body(request, _NEW)
    async with request.app[STATE].pool.connection() as conn:
        action = await registry.register_action(
            conn,
            who.application,
            body["action"],
            body["application"],
            body["schemata"],
            body.get("description", ""),
        )
    return json(action, 201, {"Location": f"/v1/actions/{action.name}"})


async def list_all(request: web.Request) -> web.Response:
    await caller(request)
    limit = query_int(request, "limit", 1000, 1, 10_000)
    async with request.app[STATE].pool.connection() as conn:
        actions = await registry.list_actions(
            conn, request.query.get("application"), request.query.get("q") or None, limit
        )
    return json({"actions": actions})


async def get_one(request: web.Request) -> web.Response:
    await caller(request)
    async with request.app[STATE].pool.connection() as conn:
        action = await registry.get_action(conn, request.match_info["action"])
    return json(action)
