"""Reading a request body: JSON only, within the size limit, checked against its schema."""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from amebo.errors import Detail, InvalidInput, SchemaViolation, UnsupportedMediaType, json_pointer
from amebo.schemas import Validator, compile_schema, violations

# Responses and webhook envelopes wrap what was sent a few levels deeper, and orjson refuses
# to write past 254 levels: a deeper body would be accepted now and fail on every read or
# delivery later. Real documents stay far below this.
MAX_DEPTH = 64


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
        unstorable = _unstorable(document)
        if unstorable is not None:
            raise InvalidInput(unstorable.message, [unstorable])
    problems = violations(validator, document)
    if problems:
        raise SchemaViolation("the request body does not match the expected shape", problems)
    return document


def _unstorable(document: Any) -> Detail | None:
    """The first place that PostgreSQL's jsonb cannot store (NUL in text) or that nests past
    MAX_DEPTH."""
    stack: list[tuple[Any, tuple[str | int, ...]]] = [(document, ())]
    while stack:
        value, path = stack.pop()
        if isinstance(value, str):
            if "\x00" in value:
                return Detail(json_pointer(path), "text may not contain NUL (\\u0000)")
            continue
        if not isinstance(value, (dict, list)):
            continue
        if len(path) >= MAX_DEPTH:
            return Detail(json_pointer(path), f"nested deeper than {MAX_DEPTH} levels")
        if isinstance(value, dict):
            for key, item in value.items():
                if "\x00" in key:
                    return Detail(json_pointer(path), "a key contains NUL (\\u0000)")
                stack.append((item, (*path, key)))
        else:
            stack.extend((item, (*path, index)) for index, item in enumerate(value))
    return None
