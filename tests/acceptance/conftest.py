"""Fixtures for driving ``amebo`` as a subprocess: started processes are always reaped, and
databases can start empty (not copied from the migrated template)."""

from __future__ import annotations

import itertools
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence

import psycopg
import pytest

from tests.acceptance.process import Amebo
from tests.conftest import with_database

Start = Callable[[Sequence[str], Mapping[str, str]], Awaitable[Amebo]]
_counter = itertools.count()


@pytest.fixture
async def start_amebo() -> AsyncIterator[Start]:
    started: list[Amebo] = []

    async def start(args: Sequence[str], env: Mapping[str, str]) -> Amebo:
        amebo = await Amebo.start(args, env)
        started.append(amebo)
        return amebo

    yield start
    for amebo in started:
        for child in amebo.children():
            child.kill()
        await amebo.kill()


@pytest.fixture
def empty_database_url(server_url: str) -> Iterator[str]:
    """A database with nothing in it, for watching migrations run from the start."""
    name = f"amebo_empty_{os.getpid()}_{next(_counter)}"
    admin = with_database(server_url, "postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE template0')
    yield with_database(server_url, name)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
