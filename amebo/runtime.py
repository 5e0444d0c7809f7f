"""Assembles a running amebo: pool, publisher, delivery worker and the web application.

``serve`` and the tests build it the same way, so tests exercise what users run.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import AsyncIterator
from typing import Any

import psycopg_pool
from aiohttp import web

from amebo import outbox
from amebo.api.app import create_app
from amebo.api.login_limits import LoginLimits
from amebo.api.state import ApiState
from amebo.config import Settings
from amebo.delivery import worker as delivery_worker
from amebo.delivery.breaker import BreakerConfig
from amebo.delivery.retry import RetryPolicy
from amebo.delivery.worker import DeliveryWorker, WorkerConfig
from amebo.outbox import OutboxRelay, RelayConfig
from amebo.publishing import ActionCatalog, PublishedGroup, Publisher
from amebo.sinks.http import HttpSink
from amebo.sinks.policy import NetworkPolicy
from amebo.wakeup import Listener, Notifier


def connection_options(statement_timeout: float = 30.0) -> dict[str, Any]:
    """How amebo opens every database connection.

    amebo's statements take arrays and are the same shape every time: a generic plan, prepared
    at first use, saves planning that otherwise costs more than running them. A statement
    waiting on a lock (a rebuild, an operator's lock on the log) fails after
    ``statement_timeout`` seconds with a clear 503 instead of holding a request and a
    connection indefinitely; 0 leaves the server's own setting (database or role) in force.
    """
    options = "-c plan_cache_mode=force_generic_plan"
    if statement_timeout > 0:
        options += f" -c statement_timeout={max(1, round(statement_timeout * 1000))}"
    return {"autocommit": True, "prepare_threshold": 1, "options": options}


@contextlib.asynccontextmanager
async def open_pool(
    url: str, max_size: int = 20, statement_timeout: float = 30.0
) -> AsyncIterator[psycopg_pool.AsyncConnectionPool[Any]]:
    pool: psycopg_pool.AsyncConnectionPool[Any] = psycopg_pool.AsyncConnectionPool(
        url,
        min_size=2,
        max_size=max_size,
        kwargs=connection_options(statement_timeout),
        open=False,
        timeout=10,
    )
    await pool.open(wait=True, timeout=15)
    try:
        yield pool
    finally:
        await pool.close()


def build_worker(pool: psycopg_pool.AsyncConnectionPool[Any], settings: Settings) -> DeliveryWorker:
    sink = HttpSink(
        timeout=settings.delivery_timeout,
        per_host=settings.endpoint_concurrency,
        policy=NetworkPolicy.build(
            settings.outbound_allow, settings.outbound_deny, settings.outbound_hardened
        ),
    )
    config = WorkerConfig(
        batch_size=settings.delivery_batch_size,
        concurrency=settings.delivery_concurrency,
        endpoint_concurrency=settings.endpoint_concurrency,
        lease_seconds=settings.lease_seconds,
        send_timeout=settings.delivery_timeout,
        poll_interval=settings.poll_interval,
        vacuum_after=settings.queue_vacuum_after,
        statistics_after=settings.statistics_after,
        breaker=BreakerConfig(
            threshold=settings.breaker_threshold,
            cooldown_min=settings.breaker_cooldown_min,
            cooldown_max=settings.breaker_cooldown_max,
            deactivate_after=settings.deactivate_after,
        ),
    )
    return DeliveryWorker(pool, sink, RetryPolicy(settings.retry_schedule), config)


def build_relay(
    pool: psycopg_pool.AsyncConnectionPool[Any],
    settings: Settings,
    catalog: ActionCatalog,
    worker: DeliveryWorker,
    notifier: Notifier,
) -> OutboxRelay:
    config = RelayConfig(poll_interval=settings.poll_interval)

    def published(count: int) -> None:
        worker.wake()
        notifier.notify()
        worker.table_statistics.note(2 * count)  # log and events; deliveries are noted when sent

    return OutboxRelay(pool, catalog, config, on_publish=published)


def build_listener(
    url: str, worker: DeliveryWorker, relay: OutboxRelay, notifier: Notifier
) -> Listener:
    """The process's one LISTEN connection, waking whatever each channel concerns; deaf to
    this process's own notifier, whose callers wake it directly."""
    listener = Listener(url, own=notifier.origin)
    listener.on(delivery_worker.CHANNEL, worker.wake)
    listener.on(delivery_worker.JOBS_CHANNEL, worker.wake_jobs)
    listener.on(outbox.CHANNEL, relay.wake)
    return listener


@dataclasses.dataclass
class Runtime:
    pool: psycopg_pool.AsyncConnectionPool[Any]
    publisher: Publisher
    worker: DeliveryWorker
    app: web.Application
    relay: OutboxRelay


@contextlib.asynccontextmanager
async def running(settings: Settings, url: str, deliver: bool = True) -> AsyncIterator[Runtime]:
    """Publisher and (unless ``deliver`` is false) worker and outbox relay started; the app
    not yet served."""
    async with open_pool(url, statement_timeout=settings.statement_timeout) as pool:
        worker = build_worker(pool, settings)
        notifier = Notifier(url, delivery_worker.CHANNEL)

        def committed(group: PublishedGroup) -> None:
            worker.table_statistics.note(group.rows_written)
            if group.subscriptions:
                worker.wake_for(group.subscriptions)  # this process's worker, at once
                notifier.notify()  # the workers of other processes, after the commit

        publisher = Publisher(pool, on_commit=committed)
        catalog = ActionCatalog(pool)
        relay = build_relay(pool, settings, catalog, worker, notifier)
        listener = build_listener(url, worker, relay, notifier)
        state = ApiState(
            pool=pool,
            publisher=publisher,
            catalog=catalog,
            admin_token=settings.admin_token,
            default_max_retries=settings.default_max_retries,
            max_body_bytes=settings.max_body_bytes,
            login_limits=LoginLimits(
                settings.login_failures_per_name, settings.login_failures_per_address
            ),
            wake_worker=worker.wake,
        )
        app = create_app(state)
        notifier.start()
        publisher.start()
        if deliver:
            worker.start()
            relay.start()
            listener.start()
        try:
            yield Runtime(pool, publisher, worker, app, relay)
        finally:
            await publisher.stop()
            await notifier.stop()
            if deliver:
                await listener.stop()
                await relay.stop()
                await worker.stop()
            await worker.close_sink()
