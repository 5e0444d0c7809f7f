"""Path and query parameters reach the database as text; refuse what it cannot store.

PostgreSQL text cannot hold NUL, and psycopg refuses to send it, so a ``%00`` anywhere in a
path or query would otherwise surface as a 500 deep inside a handler. Checking every
parameter here covers every route, including ones added later.
"""

from __future__ import annotations

from aiohttp import web

from amebo.api.problems import Handler
from amebo.errors import Detail, InvalidInput, NotFound


@web.middleware
async def storable_parameters(request: web.Request, handler: Handler) -> web.StreamResponse:
    if any("\x00" in value for value in request.match_info.values()):
        # No name or id contains NUL, so nothing is there.
        raise NotFound("nothing is at this path")
    for name, value in request.query.items():
        if "\x00" in value or "\x00" in name:
            raise InvalidInput(
                "query parameters may not contain NUL (%00)",
                [Detail(f"/query/{name.replace(chr(0), '')}", "contains NUL (%00)")],
            )
    return await handler(request)
