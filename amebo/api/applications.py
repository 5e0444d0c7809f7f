"""/v1/applications: the operator registers applications; anyone authenticated reads them."""

from __future__ import annotations

from aiohttp import web

from amebo import registry
from amebo.api import shapes
from amebo.api.auth import admin, caller
from amebo.api.body import json_body, request_schema
from amebo.api.responses import json
from amebo.api.state import STATE

_NEW = request_schema(shapes.APPLICATION_NEW)


async def register(request: web.Request) -> web.Response:
    await admin(request)
    body = await json_body(request, _NEW)
    async with request.app[STATE].pool.connection() as conn:
        application = await registry.register_application(
            conn, body["application"], body["secret"], body["address"], body.get("description", "")
        )
    return json(application, 201, {"Location": f"/v1/applications/{application.name}"})


async def list_all(request: web.Request) -> web.Response:
    await caller(request)
    async with request.app[STATE].pool.connection() as conn:
        applications = await registry.list_applications(conn)
    return json({"applications": applications})


async def get_one(request: web.Request) -> web.Response:
    await caller(request)
    async with request.app[STATE].pool.connection() as conn:
        application = await registry.get_application(conn, request.match_info["application"])
    return json(application)
