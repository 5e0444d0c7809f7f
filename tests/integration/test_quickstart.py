"""The seed's four steps over real HTTP, ending in a signed delivery to a real endpoint."""

from __future__ import annotations

import json

from standardwebhooks.webhooks import Webhook

from tests.support.api import ADMIN
from tests.support.receiver import Receiver


async def test_register_subscribe_publish_deliver_signed(api, receiver: Receiver) -> None:
    customers = await api.register_application("customers")
    billing = await api.register_application("billing")
    await api.register_action(
        customers,
        "customers",
        "customers.v1.created",
        {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "type": "object",
            "properties": {
                "customer_id": {"type": "number"},
                "email": {"type": "string", "format": "email"},
            },
            "required": ["customer_id", "email"],
        },
    )
    subscription = await api.subscribe(
        billing, "billing", "customers.v1.created", receiver.url + "/hooks/customers"
    )
    assert subscription["secret"].startswith("whsec_")

    published = await api.publish(
        customers, "customers.v1.created", {"customer_id": 7, "email": "ada@example.com"}, "c-7"
    )
    assert published["created"] is True

    [request] = await receiver.wait_for(1)
    assert request.path == "/hooks/customers"
    verified = Webhook(subscription["secret"]).verify(request.body, request.headers)
    assert verified["id"] == published["id"]
    assert verified["type"] == "customers.v1.created"
    assert verified["application"] == "customers"
    assert verified["data"] == {"customer_id": 7, "email": "ada@example.com"}
    assert json.loads(request.body)["data"] == verified["data"]

    async def delivered() -> bool:
        response = await api.client.get(f"/v1/events/{published['id']}", headers=ADMIN)
        body = await response.json()
        return body["deliveries"][0]["status"] == "succeeded"

    from tests.conftest import wait_until

    await wait_until(delivered)


async def test_same_deduper_returns_same_event_and_delivers_once(api, receiver: Receiver) -> None:
    customers = await api.register_application("customers")
    await api.register_action(customers, "customers", "customers.v1.created")
    await api.subscribe(customers, "customers", "customers.v1.created", receiver.url)

    first = await api.publish(customers, "customers.v1.created", {"n": 1}, "same")
    again = await api.publish(customers, "customers.v1.created", {"n": 2}, "same")
    assert first["created"] is True
    assert again == {"id": first["id"], "created": False}
    await receiver.wait_for(1)
    other = await api.publish(customers, "customers.v1.created", {"n": 3}, "different")
    assert other["created"] is True
    received = await receiver.wait_for(2)
    assert [json.loads(r.body)["data"]["n"] for r in received] == [1, 3]
