"""What a JSON document must be for amebo to store it and send it on.

PostgreSQL's jsonb cannot hold NUL in text, and orjson refuses to write past 254 levels of
nesting: responses and webhook envelopes wrap a payload a few levels deeper, so a deeper
document would be accepted now and fail on every read or delivery later. Real documents
stay far below MAX_DEPTH. Every way in (the API, the outbox) checks with this one function.
"""

from __future__ import annotations

from typing import Any

from amebo.errors import Detail, json_pointer

MAX_DEPTH = 64


def unstorable(document: Any, pointer: str = "") -> Detail | None:
    """The first place that PostgreSQL's jsonb cannot store (NUL in text) or that nests past
    MAX_DEPTH."""
    stack: list[tuple[Any, tuple[str | int, ...]]] = [(document, ())]
    while stack:
        value, path = stack.pop()
        if isinstance(value, str):
            if "\x00" in value:
                return Detail(pointer + json_pointer(path), "text may not contain NUL (\\u0000)")
            continue
        if not isinstance(value, (dict, list)):
            continue
        if len(path) >= MAX_DEPTH:
            return Detail(pointer + json_pointer(path), f"nested deeper than {MAX_DEPTH} levels")
        if isinstance(value, dict):
            for key, item in value.items():
                if "\x00" in key:
                    return Detail(pointer + json_pointer(path), "a key contains NUL (\\u0000)")
                stack.append((item, (*path, key)))
        else:
            stack.extend((item, (*path, index)) for index, item in enumerate(value))
    return None
