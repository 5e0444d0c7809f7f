"""Reading a request body: JSON only, within the size limit, checked against its schema."""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from amebo.documents import MAX_DEPTH, unstorable
from amebo.errors import Detail, InvalidBody, InvalidInput, UnsupportedMediaType
from amebo.schemas import Validator, compile_schema, violations


def request_schema(schema: dict[str, Any]) -> Validator:
    return compile_schema(schema)


async def json_body(request: web.Request, validator: Validator) -> Any:
    if "Content-Type" in request.headers and request.content_type != "application/json":
        raise UnsupportedMediaType(
            f"send the body as application/json, not {request.content_type!r}",
            [Detail("", "Content-Type must be application/json")],
        )
    raw = await request.read()
    if not raw:
        raise InvalidInput("the request has no body", [Detail("", "a JSON body is required")])
    try:
        document = orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        raise InvalidInput(
            "the body is not valid JSON", [Detail("", f"invalid JSON: {error}")]
        ) from None
    # Both scans are skipped unless the raw bytes say they could find something.
    might_nul = b"\\u0000" in raw
    might_nest = raw.count(b"[") + raw.count(b"{") > MAX_DEPTH
    if might_nul or might_nest:
        problem = unstorable(document)
        if problem is not None:
            raise InvalidInput(problem.message, [problem])
    problems = violations(validator, document)
    if problems:
        raise InvalidBody("the request body does not match the expected shape", problems)
    return document
