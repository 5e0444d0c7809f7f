"""How the worker learns of new work: NOTIFY from other processes, surviving a lost LISTEN
connection, and per-subscription retry schedules waking it at their due time."""

from __future__ import annotations

import asyncio
import time
import uuid

import psycopg
from aiohttp import web

from amebo.delivery.worker import CHANNEL, JOBS_CHANNEL
from amebo.publishing import Publication, Publisher
from amebo.runtime import build_worker
from amebo.wakeup import Listener, Notifier
from tests.conftest import wait_until
from tests.support.api import amebo_api, test_settings
from tests.support.receiver import Receiver


async def test_notify_wakes_a_worker_in_another_process_even_after_its_listen_connection_dies(
    database_url: str, receiver: Receiver
) -> None:
    # The API runs without a worker; a separate worker (own pool, own LISTEN) delivers. Its
    # poll is slow, so only a notification can explain a prompt delivery.
    settings = test_settings(poll_interval=30.0)
    async with amebo_api(database_url, settings, deliver=False) as api:
        auth = await api.register_application("shop")
        await api.register_action(auth, "shop", "orders.v1.placed")
        await api.subscribe(auth, "shop", "orders.v1.placed", receiver.url)
        worker = build_worker(api.runtime.pool, settings)
        listener = Listener(database_url)
        listener.on(CHANNEL, worker.wake)
        listener.on(JOBS_CHANNEL, worker.wake_jobs)
        worker.start()
        listener.start()
        try:

            async def listening() -> bool:
                async with api.runtime.pool.connection() as conn:
                    # The listening connection's last statement is one of its LISTENs.
                    cursor = await conn.execute(
                        "SELECT pid FROM pg_stat_activity"
                        " WHERE datname = current_database() AND query IN (%s, %s)",
                        (f"LISTEN {CHANNEL}", f"LISTEN {JOBS_CHANNEL}"),
                    )
                    return await cursor.fetchone() is not None

            await wait_until(listening)
            started = time.perf_counter()
            await api.publish(auth, "orders.v1.placed", {"n": 1})
            await receiver.wait_for(1, timeout=5)
            assert time.perf_counter() - started < 5

            async with api.runtime.pool.connection() as conn:
                await conn.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND query LIKE 'LISTEN%%'"
                )
            await wait_until(listening, timeout=10)
            await api.publish(auth, "orders.v1.placed", {"n": 2})
            await receiver.wait_for(2, timeout=5)
        finally:
            await listener.stop()
            await worker.stop()
            await worker.close_sink()


async def test_subscription_retry_schedule_overrides_the_global_one(
    database_url: str, receiver: Receiver
) -> None:
    calls = 0

    async def fail_once(request: web.Request, body: bytes) -> web.StreamResponse:
        nonlocal calls
        calls += 1
        return web.Response(status=500 if calls == 1 else 204)

    receiver.respond = fail_once
    # The global schedule would wait an hour; the subscription's own waits 0.3 s.
    async with amebo_api(database_url, test_settings(retry_schedule=(3600.0,))) as api:
        auth = await api.register_application("shop")
        await api.register_action(auth, "shop", "orders.v1.placed")
        await api.subscribe(auth, "shop", "orders.v1.placed", receiver.url, retry_schedule=[0.3])
        await api.publish(auth, "orders.v1.placed", {"n": 1})
        first, second = await receiver.wait_for(2, timeout=10)
        gap = float(second.headers["webhook-timestamp"]) - float(first.headers["webhook-timestamp"])
        assert gap < 3


async def test_a_publish_notifies_once_per_transaction_and_only_with_deliveries(
    database_url: str, receiver: Receiver
) -> None:
    async with amebo_api(database_url, deliver=False) as api:
        auth = await api.register_application("shop")
        await api.register_action(auth, "shop", "orders.v1.placed")
        await api.register_action(auth, "shop", "orders.v1.ignored")
        await api.subscribe(auth, "shop", "orders.v1.placed", receiver.url)
        async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as ear:
            await ear.execute(f"LISTEN {CHANNEL}")
            await api.publish(auth, "orders.v1.ignored", {"n": 0})  # nobody to deliver to
            batch = [{"action": "orders.v1.placed", "payload": {"n": n}} for n in range(5)]
            response = await api.client.post(
                "/v1/events/batch", json={"events": batch}, headers=auth
            )
            assert response.status == 200, await response.text()
            heard = [n async for n in ear.notifies(timeout=0.5)]
    # Five events, five deliveries, one transaction: one NOTIFY; none for the ignored one.
    assert [n.channel for n in heard] == [CHANNEL]


async def test_a_commit_tells_the_worker_which_subscriptions_have_new_deliveries(
    database_url: str, receiver: Receiver
) -> None:
    async with amebo_api(database_url, test_settings(), deliver=False) as api:
        auth = await api.register_application("shop")
        await api.register_action(auth, "shop", "orders.v1.placed")
        await api.register_action(auth, "shop", "orders.v1.noted")
        first = await api.subscribe(auth, "shop", "orders.v1.placed", receiver.url + "/a")
        second = await api.subscribe(auth, "shop", "orders.v1.placed", receiver.url + "/b")
        woken: list[frozenset[uuid.UUID]] = []
        publisher = Publisher(
            api.runtime.pool, on_commit=lambda group: woken.append(group.subscriptions)
        )
        publisher.start()
        try:
            await publisher.publish([Publication("orders.v1.placed", "shop", {"n": 1})])
            await publisher.publish([Publication("orders.v1.noted", "shop", {"n": 2})])
        finally:
            await publisher.stop()
    # The second commit created no delivery: nobody to wake for it.
    assert woken == [frozenset({uuid.UUID(first["id"]), uuid.UUID(second["id"])}), frozenset()]


async def test_asks_within_the_interval_share_one_notification(database_url: str) -> None:
    notifier = Notifier(database_url, CHANNEL, min_interval=1.0)
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as ear:
        await ear.execute(f"LISTEN {CHANNEL}")
        notifier.start()
        try:
            for _ in range(20):  # twenty commits' asks over 0.2 s
                notifier.notify()
                await asyncio.sleep(0.01)
            at_once = [n async for n in ear.notifies(timeout=0.3)]
            an_interval_later = [n async for n in ear.notifies(timeout=1.5)]
        finally:
            await notifier.stop()
    assert len(at_once) == 1  # the first ask is announced at once
    assert len(an_interval_later) == 1  # the other nineteen together, once the interval is up
