"""One amebo with a small registry in it, shared by all the tests of a module.

The bad-input, authorization and OpenAPI suites send hundreds of requests; a fresh database,
three bcrypt-hashed applications and a server for each one would take minutes. Their cases
either write nothing (what they check) or write under names of their own, so they can share.

Delivery is off: the worker would append delivery outcomes to the log while the tests count
its rows.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import os
from collections.abc import AsyncIterator
from typing import Any

import psycopg

from tests.conftest import with_database
from tests.support.api import ADMIN, Api, amebo_api, basic

OWNER = "customers"
OTHER = "billing"
THIRD = "shipping"
ACTION = "customers.v1.created"
EMAIL_SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "properties": {
        "email": {"type": "string", "format": "email"},
        "name": {"type": "string"},
    },
    "required": ["email"],
}

_databases = itertools.count()


@dataclasses.dataclass
class World:
    api: Api
    admin: dict[str, str]
    owner: dict[str, str]
    other: dict[str, str]
    third: dict[str, str]
    wrong_secret: dict[str, str]
    subscription_id: str
    subscription_secret: str
    event_id: str
    delivery_id: str
    _names: itertools.count[int] = dataclasses.field(default_factory=itertools.count)

    def unique(self, prefix: str) -> str:
        """A name no other case of this module uses."""
        return f"{prefix}{next(self._names)}"

    async def log_rows(self) -> int:
        async with self.api.runtime.pool.connection() as conn:
            cursor = await conn.execute("SELECT count(*) FROM amebo.log")
            row = await cursor.fetchone()
        assert row is not None
        return int(row[0])

    async def healthy(self) -> bool:
        response = await self.api.client.get("/health")
        return response.status == 200


@contextlib.asynccontextmanager
async def module_database(server_url: str, template: str) -> AsyncIterator[str]:
    name = f"amebo_module_{os.getpid()}_{next(_databases)}"
    admin_url = with_database(server_url, "postgres")
    async with await psycopg.AsyncConnection.connect(admin_url, autocommit=True) as conn:
        await conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    try:
        yield with_database(server_url, name)
    finally:
        async with await psycopg.AsyncConnection.connect(admin_url, autocommit=True) as conn:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextlib.asynccontextmanager
async def shared_world(server_url: str, template: str) -> AsyncIterator[World]:
    async with (
        module_database(server_url, template) as url,
        amebo_api(url, deliver=False) as api,
    ):
        owner = await api.register_application(OWNER)
        other = await api.register_application(OTHER)
        third = await api.register_application(THIRD)
        await api.register_action(owner, OWNER, ACTION, EMAIL_SCHEMA)
        subscription = await api.subscribe(other, OTHER, ACTION, "http://127.0.0.1:9/hooks")
        event = await api.publish(owner, ACTION, {"email": "ada@example.com"})
        response = await api.client.get(f"/v1/events/{event['id']}", headers=ADMIN)
        details: dict[str, Any] = await response.json()
        yield World(
            api=api,
            admin=ADMIN,
            owner=owner,
            other=other,
            third=third,
            wrong_secret=basic(OWNER, "not-the-secret-at-all"),
            subscription_id=subscription["id"],
            subscription_secret=subscription["secret"],
            event_id=event["id"],
            delivery_id=details["deliveries"][0]["id"],
        )
