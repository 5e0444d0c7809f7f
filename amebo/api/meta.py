"""Health and the OpenAPI document."""

from __future__ import annotations

import functools
from typing import Any

import orjson
from aiohttp import web

from amebo.api.openapi import document
from amebo.api.responses import json
from amebo.api.state import STATE


async def health(request: web.Request) -> web.Response:
    """200 when the database answers, 503 otherwise; load balancers poll this."""
    async with request.app[STATE].pool.connection(timeout=2) as conn:
        await conn.execute("SELECT 1")
    return json({"status": "ok"})


@functools.cache
def _openapi_bytes() -> bytes:
    spec: dict[str, Any] = document()
    return orjson.dumps(spec)


async def openapi(request: web.Request) -> web.Response:
    return web.Response(body=_openapi_bytes(), content_type="application/json")
