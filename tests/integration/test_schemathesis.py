"""Fuzzing a real `amebo serve` from its own OpenAPI document with schemathesis.

For every operation, schemathesis generates requests that fit the document (positive) and
requests that break it (negative); each is sent as the operator. No answer may be a 5xx, and
every answer must be documented: its status, content type, headers and body schema.

The number of examples is small in `make test` (AMEBO_FUZZ_EXAMPLES, default 8 per mode and
operation) so the whole module stays well under a minute.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import psycopg
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from amebo.api.openapi import document
from tests.conftest import with_database
from tests.faults.harness import ADMIN, ADMIN_TOKEN, free_port

EXAMPLES = int(os.environ.get("AMEBO_FUZZ_EXAMPLES", "8"))
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]

# The document the server serves is this one (checked below), so operations can be listed
# when tests are collected, before any server runs.
SCHEMA = schemathesis.openapi.from_dict(document())
OPERATIONS = [result.ok() for result in SCHEMA.get_all_operations()]


@pytest.fixture(scope="module")
def served(server_url: str, template_name: str, tmp_path_factory: Any) -> Iterator[str]:
    """A real `amebo serve` on a database of its own, with something in every collection."""
    name = f"amebo_fuzz_{os.getpid()}"
    admin_url = with_database(server_url, "postgres")
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template_name}"')
    port = free_port()
    log = Path(tmp_path_factory.mktemp("fuzz")) / "serve.log"
    env = {
        **os.environ,
        "AMEBO_DATABASE_URL": with_database(server_url, name),
        "AMEBO_ADDRESS": f"127.0.0.1:{port}",
        "AMEBO_ADMIN_TOKEN": ADMIN_TOKEN,
        "AMEBO_LOG_LEVEL": "warning",
        # Fuzzed subscriptions point anywhere; nothing should be sent while the test runs.
        "AMEBO_OUTBOUND_PROFILE": "hardened",
    }
    with log.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "amebo", "serve"], env=env, stdout=output, stderr=output
        )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(url, process)
        _seed(url)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=15)
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    assert "unhandled error" not in log.read_text()


def _wait_healthy(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert process.poll() is None, "amebo serve exited"
        try:
            if requests.get(f"{url}/health", timeout=2).status_code == 200:
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.1)  # polling the server's start-up, with a deadline
    raise AssertionError("amebo serve did not become healthy within 30s")


def _seed(url: str) -> None:
    """One of everything, so fuzzed reads also meet real rows."""

    def post(path: str, body: Any) -> Any:
        response = requests.post(url + path, json=body, headers=ADMIN, timeout=10)
        assert response.status_code in (200, 201), response.text
        return response.json()

    post("/v1/applications", {"application": "shop", "secret": "shop-secret-value", "address": url})
    post("/v1/actions", {"action": "shop.v1.sold", "application": "shop", "schemata": True})
    post(
        "/v1/subscriptions",
        {"application": "shop", "action": "shop.v1.sold", "handler": "http://127.0.0.1:9/h"},
    )
    post("/v1/events", {"action": "shop.v1.sold", "payload": {"n": 1}})


def test_the_served_document_is_the_fuzzed_one(served: str) -> None:
    served_document = requests.get(f"{served}/openapi.json", timeout=10).content
    assert orjson.loads(served_document) == orjson.loads(orjson.dumps(document()))


def _breakable(operation: Any) -> bool:
    """Has an input to get wrong; the Authorization header is always sent right."""
    parameters = [p for p in operation.iter_parameters() if p.name != "Authorization"]
    return bool(parameters) or len(operation.body) > 0


CASES = [(op, schemathesis.GenerationMode.POSITIVE) for op in OPERATIONS] + [
    (op, schemathesis.GenerationMode.NEGATIVE) for op in OPERATIONS if _breakable(op)
]


@pytest.mark.parametrize(
    ("operation", "mode"), CASES, ids=[f"{mode.value} {op.label}" for op, mode in CASES]
)
def test_fuzzed_requests_get_documented_answers(
    served: str, operation: Any, mode: schemathesis.GenerationMode
) -> None:
    session = requests.Session()

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    def run(case: Any) -> None:
        case.call_and_validate(base_url=served, session=session, headers=ADMIN, checks=CHECKS)

    run()
