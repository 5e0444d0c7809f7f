"""Errors as RFC 9457 problem documents, each listing what is wrong and where.

No error a client causes becomes a 500; an unexpected one is logged with its traceback and
answered with a bare 500 that leaks nothing.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import orjson
import psycopg
import psycopg_pool
import structlog
from aiohttp import web

from amebo.api.login_limits import TooManyFailedLogins
from amebo.api.state import STATE
from amebo.errors import (
    AmeboError,
    Conflict,
    Detail,
    Forbidden,
    InvalidInput,
    NotFound,
    SchemaViolation,
    Unauthenticated,
    Unavailable,
    UnsupportedMediaType,
)

log = structlog.get_logger(__name__)

CONTENT_TYPE = "application/problem+json"

_STATUS: dict[type[AmeboError], int] = {
    InvalidInput: 400,
    Unauthenticated: 401,
    Forbidden: 403,
    NotFound: 404,
    Conflict: 409,
    UnsupportedMediaType: 415,
    SchemaViolation: 422,
    Unavailable: 503,
    TooManyFailedLogins: 429,
}

_TITLES = {
    400: "Bad request",
    404: "Not found",
    405: "Method not allowed",
    413: "Request body too large",
    415: "Unsupported media type",
}


def problem(
    status: int,
    title: str,
    detail: str,
    errors: list[Detail] | None = None,
    headers: dict[str, str] | None = None,
) -> web.Response:
    document: dict[str, Any] = {
        "type": "about:blank",
        "title": title,
        "status": status,
        "detail": detail,
    }
    document["errors"] = [{"pointer": e.pointer, "message": e.message} for e in errors or []]
    return web.Response(
        status=status, body=orjson.dumps(document), content_type=CONTENT_TYPE, headers=headers
    )


def status_of(error: AmeboError) -> int:
    for kind, status in _STATUS.items():
        if isinstance(error, kind):
            return status
    return 400


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def problems_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except AmeboError as error:
        status = status_of(error)
        headers = {"WWW-Authenticate": 'Basic realm="amebo", Bearer'} if status == 401 else None
        if status == 503:
            headers = {"Retry-After": "2"}
        if isinstance(error, TooManyFailedLogins):
            headers = {"Retry-After": str(error.retry_after)}
        return problem(status, error.title, error.message, error.details, headers)
    except web.HTTPException as error:
        if error.status < 400:
            raise
        title = _TITLES.get(error.status, error.reason)
        detail = (
            error.text if error.text and not error.text.startswith(str(error.status)) else title
        )
        if error.status == 413:
            detail = (
                f"the body is larger than the limit of {request.app[STATE].max_body_bytes} bytes"
            )
        headers = {k: v for k, v in error.headers.items() if k.lower() == "allow"}
        return problem(error.status, title, detail, headers=headers or None)
    except (psycopg.OperationalError, psycopg_pool.PoolTimeout) as error:
        return _unavailable(request, error)
    except Exception:
        log.exception("unhandled error", path=request.path, method=request.method)
        return problem(500, "Internal server error", "an unexpected error occurred")


def _unavailable(request: web.Request, error: Exception) -> web.Response:
    """A 503 that says which database trouble it is: the client learns how long to wait, and
    the operator what to fix."""
    sqlstate = getattr(error, "sqlstate", None) or ""
    if isinstance(error, psycopg.errors.QueryCanceled):
        event, detail, wait = "database statement timed out", "the database took too long", 2
    elif sqlstate.startswith("40"):  # transaction rollback: deadlock, serialization failure
        event, detail, wait = (
            "transaction conflicted",
            "a concurrent change conflicted with this one",
            1,
        )
    elif sqlstate.startswith("53"):  # insufficient resources: disk full, out of memory, ...
        event, detail, wait = (
            "database out of resources",
            "the database is short of disk, memory or connections",
            10,
        )
    else:
        event, detail, wait = "database unavailable", "the database is not reachable", 2
    log.warning(event, error=str(error), sqlstate=sqlstate or None, path=request.path)
    return problem(
        503,
        "Service unavailable",
        f"{detail}; retry in {wait} seconds",
        headers={"Retry-After": str(wait)},
    )
