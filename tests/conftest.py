"""Shared fixtures: a real PostgreSQL, a fresh database per test, a receiving endpoint.

Which server: AMEBO_TEST_DATABASE_URL when set; else one on 127.0.0.1:5432 if it answers;
else the embedded PostgreSQL (also forced with AMEBO_TEST_EMBEDDED=1). Each test gets its
own database copied from a template that was migrated once per session.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import psycopg
import psycopg_pool
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from amebo.db.migrations import migrate
from tests.support.receiver import Receiver

LOCAL_SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"
_counter = itertools.count()


def _answers(url: str) -> bool:
    try:
        with psycopg.connect(url, connect_timeout=2) as conn:
            conn.execute("SELECT 1")
        return True
    except psycopg.Error:
        return False


def with_database(url: str, name: str) -> str:
    return make_conninfo(url, dbname=name)


@pytest.fixture(scope="session")
def server_url() -> Iterator[str]:
    configured = os.environ.get("AMEBO_TEST_DATABASE_URL")
    if configured:
        yield configured
        return
    if not os.environ.get("AMEBO_TEST_EMBEDDED") and _answers(LOCAL_SERVER):
        yield LOCAL_SERVER
        return
    from amebo.db.embedded import embedded_postgres

    folder = Path(tempfile.mkdtemp(prefix="amebo-test-pg-"))
    try:
        with embedded_postgres(folder / "data") as url:
            yield url
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _admin(url: str) -> psycopg.Connection[Any]:
    return psycopg.connect(with_database(url, "postgres"), autocommit=True)


@pytest.fixture(scope="session")
def template_name(server_url: str) -> Iterator[str]:
    name = f"amebo_template_{os.getpid()}"
    with _admin(server_url) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    migrate(with_database(server_url, name))
    yield name
    with _admin(server_url) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def database_url(server_url: str, template_name: str) -> Iterator[str]:
    name = f"amebo_test_{os.getpid()}_{next(_counter)}"
    with _admin(server_url) as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template_name}"')
    yield with_database(server_url, name)
    with _admin(server_url) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def database_name(database_url: str) -> str:
    return str(conninfo_to_dict(database_url)["dbname"])


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[psycopg_pool.AsyncConnectionPool[Any]]:
    pool: psycopg_pool.AsyncConnectionPool[Any] = psycopg_pool.AsyncConnectionPool(
        database_url, min_size=1, max_size=10, kwargs={"autocommit": True}, open=False
    )
    await pool.open(wait=True)
    yield pool
    await pool.close()


@pytest.fixture
async def conn(database_url: str) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        yield conn


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    receiver = Receiver()
    await receiver.start()
    yield receiver
    await receiver.stop()


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def wait_until(predicate: Any, timeout: float = 10.0, interval: float = 0.02) -> None:
    """Poll ``predicate`` (sync or async) until it is truthy, failing after ``timeout``."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = predicate()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        await asyncio.sleep(interval)


@pytest.fixture
async def api(database_url: str) -> AsyncIterator[Any]:
    from tests.support.api import amebo_api

    async with amebo_api(database_url) as api:
        yield api
