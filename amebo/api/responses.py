"""JSON responses through orjson, which serialises dataclasses, UUIDs and datetimes itself."""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from amebo.errors import Detail, InvalidInput


def json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        status=status, body=orjson.dumps(data), content_type="application/json", headers=headers
    )


def query_int(request: web.Request, name: str, default: int, lowest: int, highest: int) -> int:
    raw = request.query.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise InvalidInput(
            f"{name} must be a whole number", [Detail(f"/query/{name}", "not a number")]
        ) from None
    if not lowest <= value <= highest:
        raise InvalidInput(
            f"{name} must be between {lowest} and {highest}",
            [Detail(f"/query/{name}", f"must be between {lowest} and {highest}")],
        )
    return value


def query_bool(request: web.Request, name: str) -> bool | None:
    raw = request.query.get(name)
    if raw is None:
        return None
    if raw.lower() in ("true", "1", "yes"):
        return True
    if raw.lower() in ("false", "0", "no"):
        return False
    raise InvalidInput(f"{name} must be true or false", [Detail(f"/query/{name}", "not a boolean")])
