"""The README's quick start against `amebo serve` run as a user runs it: a subprocess,
configured from the environment, driven over real HTTP, delivering to a real endpoint whose
signature check is the `standardwebhooks` library's."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
from standardwebhooks.webhooks import Webhook

from tests.acceptance.conftest import Start
from tests.acceptance.process import ADMIN_TOKEN, environment, free_port
from tests.conftest import wait_until
from tests.support.api import basic
from tests.support.receiver import Receiver

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
SECRETS = {"customers": "customers-secret-0001", "billing": "billing-secret-0001"}
CUSTOMERS = basic("customers", SECRETS["customers"])
BILLING = basic("billing", SECRETS["billing"])
SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "properties": {
        "customer_id": {"type": "number"},
        "first_name": {"type": "string"},
        "last_name": {"type": "string"},
        "email": {"type": "string", "format": "email"},
    },
    "required": ["customer_id", "email"],
}


async def _post(
    session: aiohttp.ClientSession, path: str, body: Any, status: int, **auth: Any
) -> dict[str, Any]:
    async with session.post(path, json=body, **auth) as response:
        text = await response.text()
        assert response.status == status, text
        result: dict[str, Any] = json.loads(text)
        return result


async def test_readme_quick_start(
    start_amebo: Start, database_url: str, receiver: Receiver
) -> None:
    port = free_port()
    amebo = await start_amebo(
        ["serve"],
        environment(
            AMEBO_DATABASE_URL=database_url,
            AMEBO_ADMIN_TOKEN=ADMIN_TOKEN,
            AMEBO_ADDRESS=f"127.0.0.1:{port}",
        ),
    )
    assert await amebo.listening() == f"http://127.0.0.1:{port}"
    handler = f"{receiver.url}/hooks/customer-created"

    async with aiohttp.ClientSession(f"http://127.0.0.1:{port}") as http:
        # 1. The operator registers the applications.
        for name, secret in SECRETS.items():
            registered = await _post(
                http,
                "/v1/applications",
                {"application": name, "secret": secret, "address": receiver.url},
                201,
                headers=ADMIN,
            )
            assert registered["name"] == name and "secret" not in registered
        # 2. customers registers an action with its schema.
        await _post(
            http,
            "/v1/actions",
            {"action": "customers.v1.created", "application": "customers", "schemata": SCHEMA},
            201,
            headers=CUSTOMERS,
        )
        # 3. billing subscribes its handler; the secret is shown this once.
        subscription = await _post(
            http,
            "/v1/subscriptions",
            {"application": "billing", "action": "customers.v1.created", "handler": handler},
            201,
            headers=BILLING,
        )
        assert subscription["secret"].startswith("whsec_")
        # 4. customers publishes; the same deduper again changes nothing.
        payload = {"customer_id": 42, "first_name": "Ada", "email": "ada@example.com"}
        body = {"action": "customers.v1.created", "deduper": "customer-42", "payload": payload}
        published = await _post(http, "/v1/events", body, 201, headers=CUSTOMERS)
        again = await _post(http, "/v1/events", body, 200, headers=CUSTOMERS)
        assert again == {"id": published["id"], "created": False}

        [request] = await receiver.wait_for(1, timeout=30)
        assert request.path == "/hooks/customer-created"
        verified = Webhook(subscription["secret"]).verify(request.body, request.headers)
        assert verified["id"] == published["id"]
        assert verified["type"] == "customers.v1.created"
        assert verified["application"] == "customers"
        assert verified["data"] == payload

        async def succeeded() -> bool:
            async with http.get(f"/v1/events/{published['id']}", headers=BILLING) as response:
                event = await response.json()
            [delivery] = event["deliveries"]
            return bool(delivery["status"] == "succeeded" and delivery["attempts"] == 1)

        await wait_until(succeeded, timeout=30)

        # A payload the schema refuses, and a body that is not JSON: 4xx problems, not 500s.
        refused = await _post(
            http,
            "/v1/events",
            {"action": "customers.v1.created", "payload": {"customer_id": "x", "email": "no"}},
            422,
            headers=CUSTOMERS,
        )
        assert {error["pointer"] for error in refused["errors"]} >= {"/payload/customer_id"}
        async with http.post(
            "/v1/events",
            data=b"{not json",
            headers={**CUSTOMERS, "Content-Type": "application/json"},
        ) as response:
            assert response.status == 400
            assert response.content_type == "application/problem+json"

    assert await amebo.stop() == 0
    assert len(receiver.received) == 1, "the duplicate and the refused event were not delivered"


async def test_admin_token_is_generated_and_printed_once(
    start_amebo: Start, database_url: str
) -> None:
    env = environment(AMEBO_DATABASE_URL=database_url, AMEBO_ADDRESS=f"127.0.0.1:{free_port()}")
    first = await start_amebo(["serve"], env)
    address = await first.listening()
    [line] = [text for text in first.out if "admin token" in text]
    token = line.rsplit(" ", 1)[1]
    async with aiohttp.ClientSession(address) as http:
        async with http.get("/v1/applications", headers={"Authorization": f"Bearer {token}"}) as ok:
            assert ok.status == 200
        async with http.get("/v1/applications", headers={"Authorization": "Bearer wrong"}) as no:
            assert no.status == 401
    assert await first.stop() == 0

    second = await start_amebo(["serve"], env)
    await second.listening()
    assert not [text for text in second.out if "admin token" in text]
    assert await second.stop() == 0
