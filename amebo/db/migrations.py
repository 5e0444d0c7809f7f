"""Forward-only migrations from ``sql/migrations``, each applied once in its own transaction.

An advisory lock makes concurrent starts (several ``serve`` processes, ``amebo migrate``
beside a running server) safe: the second waits, then finds nothing left to do.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import LiteralString

import psycopg
import structlog

from amebo.db.sql import sql_root

_FILE_NAME = re.compile(r"^(?P<version>\d{4})_(?P<name>[a-z0-9_]+)\.sql$")
_LOCK_KEY = 0x616D65626F  # "amebo"

log = structlog.get_logger(__name__)


@dataclasses.dataclass(frozen=True)
class Migration:
    version: int
    name: str
    path: Path

    def statements(self) -> LiteralString:
        return self.path.read_text()


def available_migrations(folder: Path | None = None) -> list[Migration]:
    folder = folder or sql_root() / "migrations"
    migrations = []
    for path in sorted(folder.glob("*.sql")):
        match = _FILE_NAME.match(path.name)
        if not match:
            raise ValueError(f"migration file name {path.name!r} is not NNNN_name.sql")
        migrations.append(Migration(int(match["version"]), match["name"], path))
    versions = [m.version for m in migrations]
    if len(set(versions)) != len(versions):
        raise ValueError(f"two migrations share a version number: {versions}")
    return migrations


def migrate(url: str) -> list[Migration]:
    """Apply every migration the database lacks; returns the ones applied now."""
    applied_now: list[Migration] = []
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (_LOCK_KEY,))
        try:
            conn.execute("CREATE SCHEMA IF NOT EXISTS amebo")
            conn.execute(
                "CREATE TABLE IF NOT EXISTS amebo.schema_migrations ("
                " version integer PRIMARY KEY, name text NOT NULL,"
                " applied_at timestamptz NOT NULL DEFAULT now())"
            )
            rows = conn.execute("SELECT version FROM amebo.schema_migrations").fetchall()
            done = {version for (version,) in rows}
            newest = max(done, default=0)
            for migration in available_migrations():
                if migration.version in done:
                    continue
                if migration.version < newest:
                    log.warning(
                        "applying a migration numbered below one already applied",
                        version=migration.version,
                        name=migration.name,
                        newest_applied=newest,
                    )
                with conn.transaction():
                    conn.execute(migration.statements())
                    conn.execute(
                        "INSERT INTO amebo.schema_migrations (version, name) VALUES (%s, %s)",
                        (migration.version, migration.name),
                    )
                log.info("migration applied", version=migration.version, name=migration.name)
                applied_now.append(migration)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_KEY,))
    return applied_now
