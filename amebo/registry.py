"""The registry: applications, the actions they emit and the subscriptions to those actions.

Commands check their preconditions, then record one fact; the registry projection turns it
into rows in the same transaction. Queries read the projection.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import psycopg
from psycopg.rows import class_row

from amebo import auth
from amebo.db.sql import query
from amebo.delivery import encryption
from amebo.errors import Conflict, Detail, Forbidden, InvalidInput, NotFound
from amebo.eventlog import Fact, record
from amebo.schemas import compile_schema

Connection = psycopg.AsyncConnection[Any]


@dataclasses.dataclass(frozen=True)
class Application:
    name: str
    address: str
    description: str
    registered_at: datetime.datetime


@dataclasses.dataclass(frozen=True)
class Action:
    name: str
    application: str
    schemata: Any
    description: str
    registered_at: datetime.datetime


@dataclasses.dataclass(frozen=True)
class Subscription:
    id: uuid.UUID
    application: str
    action: str
    handler: str
    max_retries: int
    retry_schedule: list[float] | None
    encrypted: bool
    active: bool
    created_at: datetime.datetime
    updated_at: datetime.datetime


@dataclasses.dataclass(frozen=True)
class NewSubscription:
    subscription: Subscription
    secret: str


async def _conflict_guard(
    conn: Connection,
    facts: list[Fact],
    message: str,
    pointer: str,
    also: Callable[[], Awaitable[object]] | None = None,
) -> None:
    """Record ``facts`` (and run ``also`` in the same transaction); a unique violation from
    a concurrent writer that won the race after our precondition check becomes a 409."""
    try:
        async with conn.transaction():
            await record(conn, facts)
            if also is not None:
                await also()
    except psycopg.errors.UniqueViolation:
        # A concurrent writer won the race after our precondition check.
        raise Conflict(message, [Detail(pointer, message)]) from None


async def register_application(
    conn: Connection, name: str, secret: str, address: str, description: str = ""
) -> Application:
    if await find_application(conn, name) is not None:
        raise Conflict(
            f"application {name!r} is already registered",
            [Detail("/application", "already registered")],
        )
    fact = Fact(
        stream=f"application-{name}",
        type="application.registered",
        data={
            "name": name,
            "secret_hash": await asyncio.to_thread(auth.hash_secret, secret),
            "address": address,
            "description": description,
        },
    )
    await _conflict_guard(
        conn, [fact], f"application {name!r} is already registered", "/application"
    )
    return await get_application(conn, name)


async def find_application(conn: Connection, name: str) -> Application | None:
    async with conn.cursor(row_factory=class_row(Application)) as cur:
        await cur.execute(query("application_get"), {"name": name})
        return await cur.fetchone()


async def get_application(conn: Connection, name: str) -> Application:
    application = await find_application(conn, name)
    if application is None:
        raise NotFound(f"no application named {name!r}")
    return application


async def list_applications(conn: Connection) -> list[Application]:
    async with conn.cursor(row_factory=class_row(Application)) as cur:
        await cur.execute(query("application_list"))
        return await cur.fetchall()


async def application_secret_hash(conn: Connection, name: str) -> str | None:
    cursor = await conn.execute(query("application_secret_hash"), {"name": name})
    row = await cursor.fetchone()
    return None if row is None else str(row[0])


async def register_action(
    conn: Connection,
    caller: str | None,
    name: str,
    application: str,
    schemata: Any,
    description: str = "",
) -> Action:
    """``caller`` is the authenticated application, or None for the operator."""
    if caller is not None and caller != application:
        raise Forbidden(
            f"{caller!r} cannot register actions for {application!r}",
            [Detail("/application", "must be the application you authenticated as")],
        )
    if await find_application(conn, application) is None:
        raise NotFound(
            f"no application named {application!r}", [Detail("/application", "not registered")]
        )
    compile_schema(schemata, "/schemata")
    if await find_action(conn, name) is not None:
        raise Conflict(
            f"action {name!r} is already registered", [Detail("/action", "already registered")]
        )
    fact = Fact(
        stream=f"action-{name}",
        type="action.registered",
        data={
            "name": name,
            "application": application,
            "schemata": schemata,
            "description": description,
        },
    )
    await _conflict_guard(conn, [fact], f"action {name!r} is already registered", "/action")
    return await get_action(conn, name)


async def find_action(conn: Connection, name: str) -> Action | None:
    async with conn.cursor(row_factory=class_row(Action)) as cur:
        await cur.execute(query("action_get"), {"name": name})
        return await cur.fetchone()


async def get_action(conn: Connection, name: str) -> Action:
    action = await find_action(conn, name)
    if action is None:
        raise NotFound(f"no action named {name!r}")
    return action


async def list_actions(
    conn: Connection, application: str | None = None, q: str | None = None, limit: int = 1000
) -> list[Action]:
    async with conn.cursor(row_factory=class_row(Action)) as cur:
        await cur.execute(
            query("action_list"), {"application": application, "q": q, "limit": limit}
        )
        return await cur.fetchall()


async def create_subscription(
    conn: Connection,
    caller: str | None,
    application: str,
    action: str,
    handler: str,
    max_retries: int,
    encryption_key: str | None = None,
    retry_schedule: Sequence[float] | None = None,
) -> NewSubscription:
    if caller is not None and caller != application:
        raise Forbidden(
            f"{caller!r} cannot subscribe on behalf of {application!r}",
            [Detail("/application", "must be the application you authenticated as")],
        )
    if await find_application(conn, application) is None:
        raise NotFound(
            f"no application named {application!r}", [Detail("/application", "not registered")]
        )
    if await find_action(conn, action) is None:
        raise NotFound(f"no action named {action!r}", [Detail("/action", "not registered")])
    cursor = await conn.execute(
        query("subscription_active_duplicate"), {"action": action, "handler": handler}
    )
    if await cursor.fetchone() is not None:
        raise Conflict(
            f"{handler!r} is already subscribed to {action!r}",
            [Detail("/handler", "already subscribed to this action")],
        )
    if encryption_key is not None:
        try:
            encryption.key_bytes(encryption_key)
        except encryption.InvalidKey as error:
            raise InvalidInput(str(error), [Detail("/encryption_key", str(error))]) from None
    subscription_id = uuid.uuid4()
    secret = auth.new_signing_secret()
    fact = Fact(
        stream=f"subscription-{subscription_id}",
        type="subscription.created",
        data={
            "id": str(subscription_id),
            "application": application,
            "action": action,
            "handler": handler,
            "max_retries": max_retries,
            "secret_fingerprint": auth.fingerprint(secret),
            "encrypted": encryption_key is not None,
            "retry_schedule": list(retry_schedule) if retry_schedule else None,
        },
    )
    await _conflict_guard(
        conn,
        [fact],
        f"{handler!r} is already subscribed to {action!r}",
        "/handler",
        also=lambda: conn.execute(
            query("subscription_secret_store"),
            {"id": subscription_id, "secret": secret, "encryption_key": encryption_key},
        ),
    )
    return NewSubscription(await get_subscription(conn, subscription_id), secret)


async def find_subscription(conn: Connection, subscription_id: uuid.UUID) -> Subscription | None:
    async with conn.cursor(row_factory=class_row(Subscription)) as cur:
        await cur.execute(query("subscription_get"), {"id": subscription_id})
        return await cur.fetchone()


async def get_subscription(conn: Connection, subscription_id: uuid.UUID) -> Subscription:
    subscription = await find_subscription(conn, subscription_id)
    if subscription is None:
        raise NotFound(f"no subscription with id {subscription_id}")
    return subscription


async def list_subscriptions(
    conn: Connection,
    application: str | None = None,
    action: str | None = None,
    active: bool | None = None,
    limit: int = 1000,
) -> list[Subscription]:
    async with conn.cursor(row_factory=class_row(Subscription)) as cur:
        await cur.execute(
            query("subscription_list"),
            {"application": application, "action": action, "active": active, "limit": limit},
        )
        return await cur.fetchall()


async def deactivate_subscription(
    conn: Connection, caller: str | None, subscription_id: uuid.UUID, reason: str = "requested"
) -> Subscription:
    subscription = await get_subscription(conn, subscription_id)
    if caller is not None and caller != subscription.application:
        raise Forbidden(f"{caller!r} cannot change a subscription of {subscription.application!r}")
    if not subscription.active:
        return subscription
    async with conn.transaction():
        await record(conn, [deactivation_fact(subscription_id, reason)])
    return await get_subscription(conn, subscription_id)


async def rotate_secret(
    conn: Connection, caller: str | None, subscription_id: uuid.UUID, grace_seconds: float
) -> NewSubscription:
    """A new signing secret; the old one keeps signing beside it for ``grace_seconds``."""
    subscription = await get_subscription(conn, subscription_id)
    if caller is not None and caller != subscription.application:
        raise Forbidden(f"{caller!r} cannot change a subscription of {subscription.application!r}")
    secret = auth.new_signing_secret()
    expires = datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=grace_seconds)
    fact = Fact(
        stream=f"subscription-{subscription_id}",
        type="subscription.secret_rotated",
        data={
            "id": str(subscription_id),
            "secret_fingerprint": auth.fingerprint(secret),
            "previous_secret_expires_at": expires.isoformat(),
        },
    )
    async with conn.transaction():
        await record(conn, [fact])
        await conn.execute(
            query("subscription_secret_rotate"),
            {"id": subscription_id, "secret": secret, "expires_at": expires},
        )
    return NewSubscription(await get_subscription(conn, subscription_id), secret)


def deactivation_fact(subscription_id: uuid.UUID, reason: str) -> Fact:
    return Fact(
        stream=f"subscription-{subscription_id}",
        type="subscription.deactivated",
        data={"id": str(subscription_id), "reason": reason},
    )


async def admin_token_valid(conn: Connection, token: str) -> bool:
    cursor = await conn.execute(query("admin_token_exists"), {"token_hash": auth.token_hash(token)})
    row = await cursor.fetchone()
    return bool(row and row[0])


async def ensure_admin_token(conn: Connection) -> str | None:
    """Create an operator token on first start; returns it (to print once) or None."""
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(7301)")
        cursor = await conn.execute(query("admin_token_any"))
        row = await cursor.fetchone()
        if row and row[0]:
            return None
        token = auth.new_admin_token()
        await record(
            conn,
            [Fact("admin-tokens", "admin_token.created", {"token_hash": auth.token_hash(token)})],
        )
        return token
