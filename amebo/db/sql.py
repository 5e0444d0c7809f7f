"""Loads the SQL that lives in ``sql/``: numbered migrations and named queries.

Query files hold blocks that start with ``-- name: <query_name>``; the lines up to the next
such marker are the query. They are read once per process.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import LiteralString

_NAME_MARKER = re.compile(r"^-- name: (?P<name>[a-z_][a-z0-9_]*)\s*$", re.MULTILINE)


def sql_root() -> Path:
    """The ``sql`` folder: packaged inside ``amebo/`` in a wheel, beside it in a checkout."""
    package = Path(__file__).resolve().parent.parent
    for candidate in (package / "sql", package.parent / "sql"):
        if (candidate / "migrations").is_dir():
            return candidate
    raise FileNotFoundError(f"amebo's sql folder is missing (looked beside {package})")


def parse_queries(text: str, origin: str) -> dict[str, str]:
    queries: dict[str, str] = {}
    markers = list(_NAME_MARKER.finditer(text))
    for marker, following in zip(markers, [*markers[1:], None], strict=True):
        end = following.start() if following else len(text)
        body = text[marker.end() : end].strip()
        name = marker["name"]
        if name in queries:
            raise ValueError(f"query {name!r} is defined twice in {origin}")
        if not body:
            raise ValueError(f"query {name!r} in {origin} is empty")
        queries[name] = body
    return queries


@functools.cache
def _all_queries() -> dict[str, LiteralString]:
    queries: dict[str, LiteralString] = {}
    for path in sorted((sql_root() / "queries").glob("*.sql")):
        for name, body in parse_queries(path.read_text(), path.name).items():
            if name in queries:
                raise ValueError(f"query {name!r} is defined in two files")
            queries[name] = body
    return queries


def query(name: str) -> LiteralString:
    """The text of a named query. Queries come from our own files, never from input."""
    return _all_queries()[name]  # ours, from sql/; never user input
