"""The original amebo (0.9.6 from PyPI), in its own virtualenv under ``benchmarks/.peers``.

Its ``amebo`` script reads settings from flags or ``amebo.json`` and runs
``uvicorn amebo.router:router --host 0.0.0.0``; the harness runs that same uvicorn command
bound to 127.0.0.1, with the settings as the environment variables the script would export.
It is driven through its own API: an application (admin key), an action, a subscription
(a path on the application's address), and ``POST /v1/events`` with an API key.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg

from benchmarks.amebo_server import SCHEMA
from benchmarks.processes import Child, child, free_port, wait_http

VERSION = "0.9.6"
VENV = Path(__file__).resolve().parent.parent / ".peers" / f"amebo-{VERSION}"
ADMIN_KEY = "amebo_admin_bench_0123456789"
ACTION = "bench.v1.tick"
HANDLER = "/hooks/original"


def installed() -> bool:
    return (VENV / "bin" / "uvicorn").exists() and any(
        VENV.glob(f"lib/python*/site-packages/amebo-{VERSION}.dist-info")
    )


def install(say: Callable[[str], object]) -> str | None:
    """Installs amebo==0.9.6 into its own virtualenv once; returns why not, if it failed."""
    if installed():
        return None
    say(f"   installing amebo=={VERSION} into {VENV} (once)")
    try:
        subprocess.run(
            [sys.executable, "-m", "venv", "--clear", str(VENV)],
            check=True,
            capture_output=True,
            timeout=120,
        )
        subprocess.run(
            [str(VENV / "bin" / "pip"), "install", "--quiet", f"amebo=={VERSION}"],
            check=True,
            capture_output=True,
            text=True,
            timeout=600,
        )
    except subprocess.CalledProcessError as error:
        return f"pip could not install amebo=={VERSION}: {str(error.stderr).strip()[-500:]}"
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"could not install amebo=={VERSION}: {error}"
    return None if installed() else f"amebo=={VERSION} installed but uvicorn or amebo is missing"


@dataclasses.dataclass
class Original:
    process: Child
    port: int
    database_url: str
    apikey: str = ""

    def call(self, path: str, body: Any, headers: dict[str, str]) -> Any:
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}{path}",
            data=json.dumps(body).encode(),
            method="POST",
            headers={"Content-Type": "application/json", **headers},
        )
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as error:
            detail = error.read()[:300]
            raise RuntimeError(f"original amebo: POST {path}: {error.code} {detail!r}") from None

    @property
    def publish_headers(self) -> dict[str, str]:
        return {"Content-Type": "application/json", "Authorization": f"Bearer {self.apikey}"}

    def register(self, endpoint_base: str) -> None:
        created = self.call(
            "/v1/applications",
            {"application": "bench", "address": endpoint_base, "secret": "bench-secret-0123456789"},
            {"x-amebo-admin-key": ADMIN_KEY},
        )
        self.apikey = created["apikey"]
        auth = {"Authorization": f"Bearer {self.apikey}"}
        self.call(
            "/v1/actions", {"action": ACTION, "application": "bench", "schemata": SCHEMA}, auth
        )
        self.call(
            "/v1/subscriptions",
            {"application": "bench", "action": ACTION, "handler": HANDLER, "max_retries": 3},
            auth,
        )

    def release_sleeping(self) -> None:
        """Makes every gist published with a far ``sleep_until`` due now, and wakes the daemon
        the way its own publish does (NOTIFY aproko_wake)."""
        with psycopg.connect(self.database_url, autocommit=True) as conn:
            conn.execute(
                "UPDATE _amebo_.gists SET sleep_until = now() - interval '1 second' "
                "WHERE completed = 0"
            )
            conn.execute("NOTIFY aproko_wake")


@contextlib.contextmanager
def original(database_url: str, log_dir: Path) -> Iterator[Original]:
    port = free_port()
    argv = [
        str(VENV / "bin" / "uvicorn"),
        "amebo.router:router",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-level",
        "warning",
    ]
    env = {
        "AMEBO_SECRET": "bench-amebo-secret-0123456789",
        "AMEBO_DSN": database_url,
        "AMEBO_ADMIN_KEY": ADMIN_KEY,
        "AMEBO_PORT": str(port),
    }
    # Not the project folder: uvicorn puts its working folder first on sys.path, where this
    # repository's own amebo package would shadow the original's.
    with child("original-amebo", argv, log_dir, env, cwd=log_dir) as process:
        wait_http(f"http://127.0.0.1:{port}/health", process, timeout=120)
        time.sleep(1.0)  # its start-up hooks (schema, daemons) finish after /health answers
        yield Original(process, port, database_url)
