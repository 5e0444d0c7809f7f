"""The delivery engine against real endpoints: retries, dead letters, Retry-After, 410,
redirects, the circuit breaker, fairness, manual and bulk retry, encryption and rotation."""

from __future__ import annotations

import asyncio
import datetime
import json
import time
from typing import Any

from aiohttp import web
from standardwebhooks.webhooks import Webhook

from amebo import deliveries
from amebo.delivery import encryption
from tests.conftest import wait_until
from tests.support.api import ADMIN, Api, amebo_api, test_settings
from tests.support.receiver import Receiver


async def _setup(
    api: Api, handler: str, **subscription: Any
) -> tuple[dict[str, str], dict[str, Any]]:
    auth = await api.register_application("shop")
    await api.register_action(auth, "shop", "orders.v1.placed")
    created = await api.subscribe(auth, "shop", "orders.v1.placed", handler, **subscription)
    return auth, created


async def _delivery(api: Api, event_id: str) -> dict[str, Any]:
    response = await api.client.get(f"/v1/events/{event_id}", headers=ADMIN)
    body: dict[str, Any] = await response.json()
    [delivery] = body["deliveries"]
    detail = await api.client.get(f"/v1/deliveries/{delivery['id']}", headers=ADMIN)
    assert detail.status == 200
    result: dict[str, Any] = await detail.json()
    return result


def _answers(*statuses: int, headers: dict[str, str] | None = None):
    remaining = list(statuses)

    async def respond(request: web.Request, body: bytes) -> web.StreamResponse:
        status = remaining.pop(0) if remaining else 204
        return web.Response(status=status, headers=headers if status >= 300 else None)

    return respond


async def test_failures_are_retried_on_schedule_until_success(api: Api, receiver: Receiver) -> None:
    receiver.respond = _answers(500, 503)
    auth, _ = await _setup(api, receiver.url)
    event = await api.publish(auth, "orders.v1.placed", {"n": 1})
    received = await receiver.wait_for(3)
    assert len({r.headers["webhook-id"] for r in received}) == 1, "same message id on every try"
    assert [r.headers["amebo-attempt"] for r in received] == ["1", "2", "3"]

    async def succeeded() -> bool:
        return (await _delivery(api, event["id"]))["status"] == "succeeded"

    await wait_until(succeeded)
    delivery = await _delivery(api, event["id"])
    assert delivery["attempts"] == 3
    assert [a["outcome"] for a in delivery["history"]] == ["failed", "failed", "succeeded"]
    assert [a["status_code"] for a in delivery["history"]] == [500, 503, 204]


async def test_exhausted_retries_make_a_dead_letter_that_a_manual_retry_revives(
    api: Api, receiver: Receiver
) -> None:
    receiver.respond = _answers(500, 500)
    auth, _ = await _setup(api, receiver.url, max_retries=1)
    event = await api.publish(auth, "orders.v1.placed", {"n": 1})
    await receiver.wait_for(2)

    async def dead() -> bool:
        return (await _delivery(api, event["id"]))["status"] == "dead"

    await wait_until(dead)
    delivery = await _delivery(api, event["id"])
    assert delivery["attempts"] == 2

    response = await api.client.post(f"/v1/deliveries/{delivery['id']}/retry", headers=auth)
    assert response.status == 202, await response.text()
    await receiver.wait_for(3)

    async def succeeded() -> bool:
        return (await _delivery(api, event["id"]))["status"] == "succeeded"

    await wait_until(succeeded)
    history = (await _delivery(api, event["id"]))["history"]
    assert [a["attempt"] for a in history] == [1, 2, 1], "a manual retry starts a fresh series"


async def test_retry_after_is_honoured(api: Api, receiver: Receiver) -> None:
    receiver.respond = _answers(429, headers={"Retry-After": "1"})
    auth, _ = await _setup(api, receiver.url)
    await api.publish(auth, "orders.v1.placed", {"n": 1})
    first, second = await receiver.wait_for(2)
    gap = float(second.headers["webhook-timestamp"]) - float(first.headers["webhook-timestamp"])
    assert gap >= 1, "retried before Retry-After allowed"


async def test_gone_deactivates_the_subscription(api: Api, receiver: Receiver) -> None:
    receiver.respond = _answers(410)
    auth, subscription = await _setup(api, receiver.url)
    event = await api.publish(auth, "orders.v1.placed", {"n": 1})
    await receiver.wait_for(1)

    async def deactivated() -> bool:
        response = await api.client.get(f"/v1/subscriptions/{subscription['id']}", headers=auth)
        return (await response.json())["active"] is False

    await wait_until(deactivated)
    assert (await _delivery(api, event["id"]))["status"] == "dead"
    later = await api.publish(auth, "orders.v1.placed", {"n": 2})
    response = await api.client.get(f"/v1/events/{later['id']}", headers=ADMIN)
    assert (await response.json())["deliveries"] == []


async def test_redirects_are_failures_and_not_followed(api: Api, receiver: Receiver) -> None:
    receiver.respond = _answers(302, headers={"Location": receiver.url + "/elsewhere"})
    auth, _ = await _setup(api, receiver.url + "/hook", max_retries=0)
    event = await api.publish(auth, "orders.v1.placed", {"n": 1})
    await receiver.wait_for(1)

    async def dead() -> bool:
        return (await _delivery(api, event["id"]))["status"] == "dead"

    await wait_until(dead)
    assert [r.path for r in receiver.received] == ["/hook"]


async def test_a_hanging_endpoint_does_not_delay_a_healthy_one(
    database_url: str, receiver: Receiver
) -> None:
    hang = asyncio.Event()
    slow = Receiver()

    async def never(request: web.Request, body: bytes) -> web.StreamResponse:
        await hang.wait()
        return web.Response(status=204)

    slow.respond = never
    await slow.start()
    settings = test_settings(delivery_timeout=10.0, endpoint_concurrency=4)
    try:
        async with amebo_api(database_url, settings) as api:
            auth = await api.register_application("shop")
            await api.register_action(auth, "shop", "orders.v1.placed")
            await api.subscribe(auth, "shop", "orders.v1.placed", slow.url + "/slow")
            await api.subscribe(auth, "shop", "orders.v1.placed", receiver.url + "/healthy")
            started = time.perf_counter()
            for n in range(40):
                await api.publish(auth, "orders.v1.placed", {"n": n})
            await receiver.wait_for(40, timeout=5)
            assert time.perf_counter() - started < 5
            assert hang.is_set() is False
            hang.set()
    finally:
        hang.set()
        await slow.stop()


async def test_a_saturated_endpoint_does_not_keep_the_worker_claiming(
    database_url: str, receiver: Receiver
) -> None:
    # The backlog of a saturated endpoint is due, but the claim leaves it out; the worker
    # must then sleep until a slot frees, not take "due now" as a reason to claim again.
    hang, both_held = asyncio.Event(), asyncio.Event()
    arrived = 0

    async def hold(request: web.Request, body: bytes) -> web.StreamResponse:
        nonlocal arrived
        arrived += 1
        if arrived == 2:
            both_held.set()
        await hang.wait()
        return web.Response(status=204)

    receiver.respond = hold
    settings = test_settings(delivery_timeout=10.0, endpoint_concurrency=2, poll_interval=5.0)
    try:
        async with amebo_api(database_url, settings) as api:
            auth, _ = await _setup(api, receiver.url)
            await api.register_action(auth, "shop", "orders.v1.noted")  # nobody subscribes
            for n in range(10):
                await api.publish(auth, "orders.v1.placed", {"n": n})
            await asyncio.wait_for(both_held.wait(), timeout=5)
            worker = api.runtime.worker
            before = worker.claims
            # A window of real work in which the worker has nothing it could send: events
            # nobody subscribes to, and more for the saturated endpoint (whose commits must
            # not wake the worker either).
            for n in range(15):
                await api.publish(auth, "orders.v1.noted", {"n": n})
                await api.publish(auth, "orders.v1.placed", {"n": 10 + n})
            assert worker.claims - before <= 2, worker.claims - before
            hang.set()
            await receiver.wait_for(25)  # freed slots bring the rest of the backlog
    finally:
        hang.set()


async def test_circuit_opens_for_a_failing_endpoint_then_closes(
    database_url: str, receiver: Receiver
) -> None:
    failing = True

    async def respond(request: web.Request, body: bytes) -> web.StreamResponse:
        return web.Response(status=500 if failing else 204)

    receiver.respond = respond
    settings = test_settings(
        breaker_threshold=3,
        breaker_cooldown_min=1.0,
        retry_schedule=(0.05,),
        default_max_retries=50,
    )
    async with amebo_api(database_url, settings) as api:
        auth, subscription = await _setup(api, receiver.url)
        for n in range(10):
            await api.publish(auth, "orders.v1.placed", {"n": n})

        async def circuit_open() -> bool:
            async with api.runtime.pool.connection() as conn:
                cursor = await conn.execute(
                    "SELECT open_until > now() FROM amebo.endpoint_health"
                    " WHERE subscription_id = %s",
                    (subscription["id"],),
                )
                row = await cursor.fetchone()
            return bool(row and row[0])

        await wait_until(circuit_open)
        # While open, the queue is held: only in-flight work and one probe may arrive.
        seen = len(receiver.received)
        failing = False
        await receiver.wait_for(seen + 1, timeout=5)  # the half-open probe

        async def all_delivered() -> bool:
            async with api.runtime.pool.connection() as conn:
                cursor = await conn.execute(
                    "SELECT count(*) FROM amebo.deliveries WHERE status = 'succeeded'"
                )
                row = await cursor.fetchone()
            return bool(row and row[0] == 10)

        await wait_until(all_delivered, timeout=10)
        assert not await circuit_open()


async def test_endpoint_failing_too_long_is_deactivated(
    database_url: str, receiver: Receiver
) -> None:
    receiver.respond = _answers(*([500] * 100))
    settings = test_settings(deactivate_after=0.5, retry_schedule=(0.1,), default_max_retries=100)
    async with amebo_api(database_url, settings) as api:
        auth, subscription = await _setup(api, receiver.url)
        await api.publish(auth, "orders.v1.placed", {"n": 1})

        async def deactivated() -> bool:
            response = await api.client.get(f"/v1/subscriptions/{subscription['id']}", headers=auth)
            return (await response.json())["active"] is False

        await wait_until(deactivated, timeout=10)
        async with api.runtime.pool.connection() as conn:
            cursor = await conn.execute(
                "SELECT data->>'reason' FROM amebo.log WHERE type = 'subscription.deactivated'"
            )
            [(reason,)] = await cursor.fetchall()
        assert reason.startswith("endpoint failing for")


async def test_bulk_retry_covers_every_match_across_pages(
    database_url: str, receiver: Receiver
) -> None:
    receiver.respond = _answers(*([500] * 12))
    # A breaker threshold above the failures made keeps every first attempt flowing.
    async with amebo_api(database_url, test_settings(breaker_threshold=100)) as api:
        await _bulk_retry_every_match(api, receiver)


async def _bulk_retry_every_match(api: Api, receiver: Receiver) -> None:
    auth, _ = await _setup(api, receiver.url, max_retries=0)
    for n in range(12):
        await api.publish(auth, "orders.v1.placed", {"n": n})
    await receiver.wait_for(12)

    async def all_dead() -> bool:
        response = await api.client.get("/v1/deliveries?status=dead", headers=auth)
        return len((await response.json())["deliveries"]) == 12

    await wait_until(all_dead)
    async with api.runtime.pool.connection() as conn:
        job = await deliveries.start_bulk_retry(conn, "shop", deliveries.RetryFilter())
        # The worker's own loop may take pages too (SKIP LOCKED shares the job safely).
        while await deliveries.advance_bulk_retry(conn, page_size=5):
            pass

        async def job_done() -> bool:
            return (await deliveries.get_retry_job(conn, job.id)).status == "finished"

        await wait_until(job_done)
        finished = await deliveries.get_retry_job(conn, job.id)
    assert finished.retried == 12
    await receiver.wait_for(24)
    assert sorted(json.loads(r.body)["data"]["n"] for r in receiver.received[12:]) == list(
        range(12)
    )


async def test_bulk_retry_over_the_api(api: Api, receiver: Receiver) -> None:
    receiver.respond = _answers(500, 500, 500)
    auth, _ = await _setup(api, receiver.url, max_retries=0)
    for n in range(3):
        await api.publish(auth, "orders.v1.placed", {"n": n})
    await receiver.wait_for(3)

    async def all_dead() -> bool:
        response = await api.client.get("/v1/deliveries?status=dead", headers=auth)
        return len((await response.json())["deliveries"]) == 3

    await wait_until(all_dead)
    response = await api.client.post("/v1/retry-jobs", json={"statuses": ["dead"]}, headers=auth)
    assert response.status == 202, await response.text()
    job = await response.json()
    await receiver.wait_for(6)

    async def finished() -> bool:
        response = await api.client.get(f"/v1/retry-jobs/{job['id']}", headers=auth)
        return (await response.json())["status"] == "finished"

    await wait_until(finished)


async def test_encrypted_delivery_round_trips_and_is_signed_over_what_is_sent(
    api: Api, receiver: Receiver
) -> None:
    key = "q2Xn9tK3mRr0pX0kA7dJ3Zr0E9b1Yq4L6w8u2s5v7xE"
    auth, subscription = await _setup(api, receiver.url, encryption_key=key)
    event = await api.publish(auth, "orders.v1.placed", {"secret": "payload"})
    [request] = await receiver.wait_for(1)
    assert request.headers["Content-Type"] == "application/jose"
    assert b"payload" not in request.body
    Webhook(subscription["secret"]).verify(request.body, request.headers, json_parse=False)
    envelope = json.loads(encryption.decrypt(request.body, key))
    assert envelope["id"] == event["id"]
    assert envelope["data"] == {"secret": "payload"}


async def test_rotated_secret_signs_beside_the_old_one(api: Api, receiver: Receiver) -> None:
    auth, subscription = await _setup(api, receiver.url)
    response = await api.client.post(
        f"/v1/subscriptions/{subscription['id']}/rotate-secret",
        json={"grace_seconds": 3600},
        headers=auth,
    )
    assert response.status == 200, await response.text()
    rotated = await response.json()
    assert rotated["secret"] != subscription["secret"]
    await api.publish(auth, "orders.v1.placed", {"n": 1})
    [request] = await receiver.wait_for(1)
    assert len(request.headers["webhook-signature"].split(" ")) == 2
    Webhook(subscription["secret"]).verify(request.body, request.headers)
    Webhook(rotated["secret"]).verify(request.body, request.headers)


async def test_hardened_outbound_policy_refuses_loopback(
    database_url: str, receiver: Receiver
) -> None:
    async with amebo_api(database_url, test_settings(outbound_hardened=True)) as api:
        auth, _ = await _setup(api, receiver.url)
        event = await api.publish(auth, "orders.v1.placed", {"n": 1})

        async def dead() -> bool:
            return (await _delivery(api, event["id"]))["status"] == "dead"

        await wait_until(dead)
        delivery = await _delivery(api, event["id"])
        assert "outbound policy" in delivery["last_error"]
        assert receiver.received == []


async def test_named_host_is_checked_after_resolution(
    database_url: str, receiver: Receiver
) -> None:
    settings = test_settings(outbound_deny=("127.0.0.0/8", "::1/128"))
    async with amebo_api(database_url, settings) as api:
        auth, _ = await _setup(api, f"http://localhost:{receiver.port}/")
        event = await api.publish(auth, "orders.v1.placed", {"n": 1})

        async def dead() -> bool:
            return (await _delivery(api, event["id"]))["status"] == "dead"

        await wait_until(dead)
        assert receiver.received == []


def _utc(text: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(text)


async def test_signing_secrets_and_keys_never_enter_the_log(api: Api, receiver: Receiver) -> None:
    key = "q2Xn9tK3mRr0pX0kA7dJ3Zr0E9b1Yq4L6w8u2s5v7xE"
    auth, subscription = await _setup(api, receiver.url, encryption_key=key)
    response = await api.client.post(
        f"/v1/subscriptions/{subscription['id']}/rotate-secret", json={}, headers=auth
    )
    rotated = await response.json()
    async with api.runtime.pool.connection() as conn:
        cursor = await conn.execute("SELECT data::text || metadata::text FROM amebo.log")
        log_text = " ".join(row[0] for row in await cursor.fetchall())
    for secret in (subscription["secret"], rotated["secret"], key):
        assert secret not in log_text
        assert secret.removeprefix("whsec_") not in log_text
