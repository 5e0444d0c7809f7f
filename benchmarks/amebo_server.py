"""amebo as users run it: an ``amebo serve`` process, and the API calls that set it up."""

from __future__ import annotations

import base64
import contextlib
import json
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from benchmarks.processes import Child, child, free_port, wait_http

ADMIN_TOKEN = "bench-admin-token-0123456789abcdef"
APPLICATION = "bench"
SECRET = "bench-secret-0123456789"
ACTION = "bench.v1.tick"
# A realistic schema, so publishing pays for validation as it would in use.
SCHEMA = {
    "type": "object",
    "properties": {
        "seq": {"type": "integer", "minimum": 0},
        "customer_id": {"type": "integer"},
        "email": {"type": "string", "maxLength": 320},
        "pad": {"type": "string"},
    },
    "required": ["seq", "customer_id", "email"],
}
BASIC = "Basic " + base64.b64encode(f"{APPLICATION}:{SECRET}".encode()).decode()
PUBLISH_HEADERS = {"Content-Type": "application/json", "Authorization": BASIC}


class ApiError(RuntimeError):
    pass


class Amebo:
    def __init__(self, process: Child, port: int) -> None:
        self.process = process
        self.port = port
        self.base = f"http://127.0.0.1:{port}"

    @property
    def pid(self) -> int:
        return self.process.pid

    def call(self, method: str, path: str, body: Any = None, authorization: str = BASIC) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            self.base + path,
            data=data,
            method=method,
            headers={"Content-Type": "application/json", "Authorization": authorization},
        )
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                raw = response.read()
        except urllib.error.HTTPError as error:
            raise ApiError(f"{method} {path}: {error.code} {error.read()[:500]!r}") from None
        return json.loads(raw) if raw else None

    def register(self, subscribers: list[str]) -> list[str]:
        """The bench application, its action, and one subscription per handler URL."""
        self.call(
            "POST",
            "/v1/applications",
            {"application": APPLICATION, "secret": SECRET, "address": "http://127.0.0.1"},
            authorization=f"Bearer {ADMIN_TOKEN}",
        )
        self.call(
            "POST",
            "/v1/actions",
            {"action": ACTION, "application": APPLICATION, "schemata": SCHEMA},
        )
        return [
            self.call(
                "POST",
                "/v1/subscriptions",
                {"application": APPLICATION, "action": ACTION, "handler": handler},
            )["id"]
            for handler in subscribers
        ]


def amebo_command() -> str:
    return str(Path(sys.executable).parent / "amebo")


@contextlib.contextmanager
def serve(
    database_url: str, log_dir: Path, env: dict[str, str] | None = None, name: str = "amebo-serve"
) -> Iterator[Amebo]:
    port = free_port()
    argv = [
        amebo_command(),
        "serve",
        "--address",
        f"127.0.0.1:{port}",
        "--database-url",
        database_url,
    ]
    environment = {"AMEBO_ADMIN_TOKEN": ADMIN_TOKEN, "AMEBO_LOG_LEVEL": "warning", **(env or {})}
    with child(name, argv, log_dir, environment) as process:
        wait_http(f"http://127.0.0.1:{port}/health", process, timeout=90)
        yield Amebo(process, port)
