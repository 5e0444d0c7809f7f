"""The PostgreSQL server the benchmarks use, and a fresh database per scenario.

The local server (``AMEBO_BENCH_POSTGRES``, default ``postgresql://postgres@127.0.0.1:5432``)
is used when it answers, else the embedded PostgreSQL amebo ships, in its own data folder.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
EMBEDDED_DATA = Path(__file__).parent / ".peers" / "postgres"
REPORTED_SETTINGS = (
    "shared_buffers",
    "synchronous_commit",
    "fsync",
    "wal_sync_method",
    "full_page_writes",
    "wal_level",
    "max_connections",
    "max_wal_size",
    "checkpoint_timeout",
    "work_mem",
)


def with_database(url: str, database: str) -> str:
    parts = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit(parts._replace(path="/" + database))


@dataclasses.dataclass(frozen=True)
class Server:
    admin_url: str
    origin: str  # "local" or "embedded"

    def url(self, database: str) -> str:
        return with_database(self.admin_url, database)

    def describe(self) -> dict[str, Any]:
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            version = conn.execute("SHOW server_version").fetchone()
            settings = {
                name: conn.execute(f"SHOW {name}").fetchone()[0]  # type: ignore[index]
                for name in REPORTED_SETTINGS
            }
        return {
            "origin": self.origin,
            "version": version[0] if version else "?",
            "settings": settings,
        }

    def create(self, database: str) -> str:
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{database}" TEMPLATE template0')
        return self.url(database)

    def drop(self, database: str) -> None:
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')

    @contextlib.contextmanager
    def fresh(self, database: str) -> Iterator[str]:
        url = self.create(database)
        try:
            yield url
        finally:
            self.drop(database)


def _answers(url: str) -> bool:
    try:
        with psycopg.connect(url, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error:
        return False
    return True


@contextlib.contextmanager
def server() -> Iterator[Server]:
    url = os.environ.get("AMEBO_BENCH_POSTGRES", DEFAULT_URL)
    if _answers(url):
        yield Server(url, "local")
        return
    from amebo.db.embedded import embedded_postgres

    with embedded_postgres(EMBEDDED_DATA) as embedded_url:
        yield Server(embedded_url, "embedded")
