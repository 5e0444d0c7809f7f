"""The registry over HTTP: conflicts, unknown names, deactivation, list filters, and the JSON
Schema drafts an action may be written in."""

from __future__ import annotations

import json
from typing import Any

from standardwebhooks.webhooks import Webhook

from tests.support.api import ADMIN, Api
from tests.support.receiver import Receiver


async def _problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status == status, await response.text()
    assert response.content_type == "application/problem+json"
    document: dict[str, Any] = await response.json()
    return document


async def _log_rows(api: Api) -> int:
    async with api.runtime.pool.connection() as conn:
        cursor = await conn.execute("SELECT count(*) FROM amebo.log")
        row = await cursor.fetchone()
    assert row is not None
    return int(row[0])


def _pointers(document: dict[str, Any]) -> list[str]:
    return [error["pointer"] for error in document["errors"]]


async def test_registering_an_application_twice_conflicts_and_keeps_the_first(api: Api) -> None:
    first = await api.register_application("customers", "the-first-secret")
    response = await api.client.post(
        "/v1/applications",
        json={"application": "customers", "secret": "another-secret", "address": "http://x.t"},
        headers=ADMIN,
    )
    assert _pointers(await _problem(response, 409)) == ["/application"]
    assert (await api.client.get("/v1/applications", headers=first)).status == 200
    impostor = await api.client.get(
        "/v1/applications",
        headers={"Authorization": "Basic Y3VzdG9tZXJzOmFub3RoZXItc2VjcmV0"},
    )
    assert impostor.status == 401


async def test_registering_an_action_twice_conflicts(api: Api) -> None:
    customers = await api.register_application("customers")
    billing = await api.register_application("billing")
    await api.register_action(customers, "customers", "customers.v1.created")
    for who, application in ((customers, "customers"), (ADMIN, "customers")):
        response = await api.client.post(
            "/v1/actions",
            json={"action": "customers.v1.created", "application": application, "schemata": {}},
            headers=who,
        )
        assert _pointers(await _problem(response, 409)) == ["/action"]
    # Names are global: another application cannot take it either.
    response = await api.client.post(
        "/v1/actions",
        json={"action": "customers.v1.created", "application": "billing", "schemata": {}},
        headers=billing,
    )
    await _problem(response, 409)
    action = await (
        await api.client.get("/v1/actions/customers.v1.created", headers=billing)
    ).json()
    assert action["application"] == "customers"
    assert action["schemata"] == {"type": "object"}


async def test_subscribing_to_an_unknown_action_is_404(api: Api) -> None:
    billing = await api.register_application("billing")
    response = await api.client.post(
        "/v1/subscriptions",
        json={"application": "billing", "action": "nobody.v1.emits", "handler": "http://x.t/"},
        headers=billing,
    )
    assert _pointers(await _problem(response, 404)) == ["/action"]


async def test_the_same_handler_twice_on_one_action_conflicts_until_deactivated(
    api: Api, receiver: Receiver
) -> None:
    customers = await api.register_application("customers")
    billing = await api.register_application("billing")
    await api.register_action(customers, "customers", "customers.v1.created")
    await api.register_action(customers, "customers", "customers.v1.deleted")
    first = await api.subscribe(billing, "billing", "customers.v1.created", receiver.url)
    body = {"application": "billing", "action": "customers.v1.created", "handler": receiver.url}
    response = await api.client.post("/v1/subscriptions", json=body, headers=billing)
    assert _pointers(await _problem(response, 409)) == ["/handler"]
    # Another application with the same URL is the same endpoint: still one subscription.
    response = await api.client.post(
        "/v1/subscriptions", json={**body, "application": "customers"}, headers=customers
    )
    await _problem(response, 409)
    # The same handler on another action, or another handler on this one, is fine.
    await api.subscribe(billing, "billing", "customers.v1.deleted", receiver.url)
    await api.subscribe(billing, "billing", "customers.v1.created", receiver.url + "/other")

    response = await api.client.delete(f"/v1/subscriptions/{first['id']}", headers=billing)
    assert response.status == 200
    again = await api.subscribe(billing, "billing", "customers.v1.created", receiver.url)
    assert again["id"] != first["id"]


async def test_deactivation_by_patch_and_delete_stops_new_deliveries(
    api: Api, receiver: Receiver
) -> None:
    customers = await api.register_application("customers")
    billing = await api.register_application("billing")
    await api.register_action(customers, "customers", "customers.v1.created")
    patched = await api.subscribe(billing, "billing", "customers.v1.created", receiver.url + "/a")
    deleted = await api.subscribe(billing, "billing", "customers.v1.created", receiver.url + "/b")
    kept = await api.subscribe(billing, "billing", "customers.v1.created", receiver.url + "/c")

    response = await api.client.patch(
        f"/v1/subscriptions/{patched['id']}", json={"active": False}, headers=billing
    )
    assert response.status == 200
    changed = await response.json()
    assert changed["active"] is False
    assert changed["updated_at"] >= patched["updated_at"]
    assert "secret" not in changed
    response = await api.client.delete(f"/v1/subscriptions/{deleted['id']}", headers=ADMIN)
    assert response.status == 200
    assert (await response.json())["active"] is False
    # Both forms are idempotent: deactivating again answers the same, writing nothing new.
    before = await _log_rows(api)
    for method in ("PATCH", "DELETE"):
        response = await api.client.request(
            method,
            f"/v1/subscriptions/{patched['id']}",
            json={"active": False} if method == "PATCH" else None,
            headers=billing,
        )
        assert response.status == 200
        assert (await response.json())["active"] is False
    assert await _log_rows(api) == before

    found = await (
        await api.client.get(f"/v1/subscriptions/{deleted['id']}", headers=customers)
    ).json()
    assert found["active"] is False

    published = await api.publish(customers, "customers.v1.created", {"n": 1})
    [request] = await receiver.wait_for(1)
    assert request.path == "/c"
    event = await (await api.client.get(f"/v1/events/{published['id']}", headers=ADMIN)).json()
    assert [d["subscription_id"] for d in event["deliveries"]] == [kept["id"]]


async def test_list_filters(api: Api) -> None:
    customers = await api.register_application("customers")
    billing = await api.register_application("billing")
    shipping = await api.register_application("shipping")
    await api.register_action(customers, "customers", "customers.v1.created")
    response = await api.client.post(
        "/v1/actions",
        json={
            "action": "customers.v1.deleted",
            "application": "customers",
            "schemata": True,
            "description": "A customer was REMOVED for good",
        },
        headers=customers,
    )
    assert response.status == 201
    await api.register_action(billing, "billing", "billing.v1.invoiced")
    first = await api.subscribe(billing, "billing", "customers.v1.created", "http://b.test/1")
    await api.subscribe(billing, "billing", "customers.v1.deleted", "http://b.test/2")
    await api.subscribe(shipping, "shipping", "customers.v1.created", "http://s.test/1")
    await api.client.delete(f"/v1/subscriptions/{first['id']}", headers=billing)

    async def names(path: str, key: str, field: str = "name") -> list[str]:
        response = await api.client.get(path, headers=shipping)
        assert response.status == 200, await response.text()
        return [item[field] for item in (await response.json())[key]]

    assert await names("/v1/applications", "applications") == ["billing", "customers", "shipping"]
    assert await names("/v1/actions", "actions") == [
        "billing.v1.invoiced",
        "customers.v1.created",
        "customers.v1.deleted",
    ]
    assert await names("/v1/actions?application=billing", "actions") == ["billing.v1.invoiced"]
    assert await names("/v1/actions?application=nobody", "actions") == []
    assert await names("/v1/actions?q=CUSTOMERS.V1", "actions") == [
        "customers.v1.created",
        "customers.v1.deleted",
    ]
    assert await names("/v1/actions?q=removed", "actions") == ["customers.v1.deleted"]
    assert await names("/v1/actions?q=%25", "actions") == []  # no LIKE wildcards
    assert await names("/v1/actions?q=_", "actions") == []
    assert await names("/v1/actions?q=", "actions") == await names("/v1/actions", "actions")
    assert await names("/v1/actions?application=customers&q=created", "actions") == [
        "customers.v1.created"
    ]
    assert await names("/v1/actions?limit=1", "actions") == ["billing.v1.invoiced"]

    async def handlers(query: str) -> list[str]:
        return sorted(await names(f"/v1/subscriptions{query}", "subscriptions", "handler"))

    assert await handlers("") == ["http://b.test/1", "http://b.test/2", "http://s.test/1"]
    assert await handlers("?active=true") == ["http://b.test/2", "http://s.test/1"]
    assert await handlers("?active=false") == ["http://b.test/1"]
    assert await handlers("?application=billing") == ["http://b.test/1", "http://b.test/2"]
    assert await handlers("?application=billing&active=true") == ["http://b.test/2"]
    assert await handlers("?action=customers.v1.created") == ["http://b.test/1", "http://s.test/1"]
    assert await handlers("?action=customers.v1.created&active=1") == ["http://s.test/1"]
    assert await handlers("?application=nobody") == []


DRAFT_7_TUPLE = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "type": "object",
    "properties": {
        "pair": {"type": "array", "items": [{"type": "integer"}, {"type": "string"}]},
        "customer": {"$ref": "#/definitions/customer"},
    },
    "required": ["pair", "customer"],
    "definitions": {
        "customer": {
            "type": "object",
            "properties": {"email": {"type": "string", "format": "email"}},
            "required": ["email"],
        }
    },
}
DRAFT_2020_TUPLE = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "properties": {
        "pair": {"type": "array", "prefixItems": [{"type": "integer"}, {"type": "string"}]},
        "customer": {"$ref": "#/$defs/customer"},
    },
    "required": ["pair", "customer"],
    "$defs": DRAFT_7_TUPLE["definitions"],
}


async def test_draft_07_and_2020_12_schemas_are_accepted_and_enforced_as_written(
    api: Api,
) -> None:
    customers = await api.register_application("customers")
    await api.register_action(customers, "customers", "customers.v1.seven", DRAFT_7_TUPLE)
    await api.register_action(customers, "customers", "customers.v1.twenty", DRAFT_2020_TUPLE)
    for version in ("2019-09", "draft-06", "draft-04"):
        declared = (
            "https://json-schema.org/draft/2019-09/schema"
            if version == "2019-09"
            else f"http://json-schema.org/{version}/schema#"
        )
        await api.register_action(
            customers, "customers", f"customers.v1.{version}", {"$schema": declared}
        )
    # Under 2020-12 the array form of items is gone: the same schema is refused there.
    response = await api.client.post(
        "/v1/actions",
        json={
            "action": "customers.v1.mixed",
            "application": "customers",
            "schemata": {**DRAFT_7_TUPLE, "$schema": DRAFT_2020_TUPLE["$schema"]},
        },
        headers=customers,
    )
    document = await _problem(response, 422)
    assert any(p.startswith("/schemata") for p in _pointers(document)), document

    stored = await (
        await api.client.get("/v1/actions/customers.v1.seven", headers=customers)
    ).json()
    assert stored["schemata"] == DRAFT_7_TUPLE

    good = {"pair": [1, "one"], "customer": {"email": "ada@example.com"}}
    for action in ("customers.v1.seven", "customers.v1.twenty"):
        assert (await api.publish(customers, action, good))["created"] is True
        for bad, pointer in [
            ({**good, "pair": ["one", 1]}, "/payload/pair/0"),
            ({**good, "customer": {"email": "ada"}}, "/payload/customer/email"),
            ({"pair": [1, "x"]}, "/payload/customer"),
        ]:
            response = await api.client.post(
                "/v1/events", json={"action": action, "payload": bad}, headers=customers
            )
            assert pointer in _pointers(await _problem(response, 422)), (action, bad)


async def test_format_email_is_enforced_on_publish(api: Api) -> None:
    customers = await api.register_application("customers")
    schema = {
        "type": "object",
        "properties": {"email": {"type": "string", "format": "email"}},
        "required": ["email"],
    }
    await api.register_action(customers, "customers", "customers.v1.created", schema)
    for good in ("ada@example.com", "first.last+tag@sub.example.org"):
        published = await api.publish(customers, "customers.v1.created", {"email": good})
        assert published["created"] is True
    for bad in ("ada", "ada@", "@example.com", "ada example@x.com", "a@b@c"):
        response = await api.client.post(
            "/v1/events",
            json={"action": "customers.v1.created", "payload": {"email": bad}},
            headers=customers,
        )
        document = await _problem(response, 422)
        assert _pointers(document) == ["/payload/email"], (bad, document)
    events = await (await api.client.get("/v1/events", headers=customers)).json()
    assert len(events["events"]) == 2


async def test_the_subscription_secret_is_shown_once_and_signs_deliveries(
    api: Api, receiver: Receiver
) -> None:
    customers = await api.register_application("customers")
    billing = await api.register_application("billing")
    await api.register_action(customers, "customers", "customers.v1.created")
    created = await api.subscribe(billing, "billing", "customers.v1.created", receiver.url)
    secret = created["secret"]
    assert secret.startswith("whsec_")
    for path in (f"/v1/subscriptions/{created['id']}", "/v1/subscriptions"):
        text = await (await api.client.get(path, headers=billing)).text()
        assert secret not in text
        assert secret.removeprefix("whsec_") not in text
    await api.publish(customers, "customers.v1.created", {"n": 1})
    [request] = await receiver.wait_for(1)
    assert Webhook(secret).verify(request.body, request.headers)["data"] == {"n": 1}
    assert json.loads(request.body)["type"] == "customers.v1.created"
