"""psycopg reads and writes JSON with orjson: several times faster than the standard library
on the hot paths (every payload published, every outcome recorded)."""

from __future__ import annotations

import orjson
from psycopg.types.json import set_json_dumps, set_json_loads


def use_orjson() -> None:
    set_json_dumps(orjson.dumps)
    set_json_loads(orjson.loads)


use_orjson()
