"""GET /openapi.json stays true: every route documented and every documented operation
routed, the document valid OpenAPI 3.1, and real responses (successes and errors) matching
the schemas it documents for their status codes."""

from __future__ import annotations

import io
import re
from typing import Any

import jsonschema_rs
import orjson
from openapi_spec_validator import validate

from amebo.api.openapi import document
from amebo.api.routes import ROUTES
from amebo.config import Settings
from tests.conftest import wait_until
from tests.support.api import ADMIN, Api, basic
from tests.support.contract import CONTRACT
from tests.support.receiver import Receiver

HTTP_METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}


def _operations(spec: dict[str, Any]) -> set[tuple[str, str]]:
    return {
        (method.upper(), path)
        for path, item in spec["paths"].items()
        for method in item
        if method in HTTP_METHODS
    }


def test_every_route_is_documented_and_every_documented_operation_is_routed() -> None:
    routed = {(route.method, route.path) for route in ROUTES}
    documented = _operations(document())
    assert routed - documented == set(), "routes missing from the OpenAPI document"
    assert documented - routed == set(), "documented operations that no route serves"


def test_the_document_is_valid_openapi() -> None:
    validate(document())


def test_every_operation_documents_its_parameters_errors_and_bodies() -> None:
    spec = document()
    for path, item in spec["paths"].items():
        names = set(re.findall(r"\{([^}]+)\}", path))
        for method, operation in item.items():
            where = f"{method.upper()} {path}"
            declared = {p["name"] for p in operation.get("parameters", []) if p["in"] == "path"}
            assert declared == names, f"{where}: path parameters {declared} != {names}"
            responses = operation["responses"]
            assert any(code.startswith("2") for code in responses), where
            public = operation.get("security") == []
            if not public:
                assert "401" in responses, f"{where} can refuse credentials: document 401"
            if "requestBody" in operation:
                for code in ("400", "413", "415", "422"):
                    assert code in responses, f"{where} reads a body: document {code}"
            for code, response in responses.items():
                if code.startswith(("4", "5")):
                    assert "application/problem+json" in response["content"], (where, code)


async def test_the_served_document_is_the_built_one(api: Api) -> None:
    response = await api.client.get("/openapi.json")
    assert response.status == 200
    assert response.content_type == "application/json"
    assert orjson.loads(await response.read()) == orjson.loads(orjson.dumps(document()))


class Walk:
    """Calls the API, asserting each status, and checks every exchange against the document:
    the request body against the request schema, the response against the response schema."""

    def __init__(self, api: Api) -> None:
        self.api = api
        self.seen: set[tuple[str, str, int]] = set()

    async def call(
        self,
        method: str,
        path: str,
        status: int,
        headers: dict[str, str] | None = None,
        json: Any = None,
        data: bytes | None = None,
        content_type: str = "application/json",
    ) -> Any:
        sent = dict(headers or {})
        if json is not None:
            data = orjson.dumps(json)
        if data is not None:
            sent["Content-Type"] = content_type
        payload = io.BytesIO(data) if data is not None and len(data) > 65_536 else data
        response = await self.api.client.request(method, path, data=payload, headers=sent)
        body = await response.read()
        assert response.status == status, (method, path, body[:400])
        problems = CONTRACT.check(method, path, response.status, response.content_type, body)
        assert not problems, problems
        template = CONTRACT.template(path.split("?")[0])
        assert template is not None
        self.seen.add((method, template, status))
        if json is not None and 200 <= status < 300:
            self._check_request(method, template, json)
        return orjson.loads(body) if body else None

    def _check_request(self, method: str, template: str, body: Any) -> None:
        operation = CONTRACT.spec["paths"][template][method.lower()]
        schema = operation["requestBody"]["content"]["application/json"]["schema"]
        root = {**schema, "components": CONTRACT.spec["components"]}
        validator = jsonschema_rs.validator_for(root, validate_formats=True)
        errors = [e.message for e in validator.iter_errors(body)]
        assert not errors, (method, template, "accepted a body its document refuses", errors)


DRAFT_7 = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "type": "object",
    "properties": {"order_id": {"type": "integer"}},
    "required": ["order_id"],
    "definitions": {"unused": {"type": "string"}},
}
DRAFT_2020 = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "properties": {"email": {"type": "string", "format": "email"}},
    "required": ["email"],
    "$defs": {"unused": {"type": "string"}},
}


async def test_a_scripted_walk_matches_the_document(api: Api, receiver: Receiver) -> None:
    walk = Walk(api)
    app = {"application": "shop", "secret": "shop-secret-value", "address": "http://shop.test"}
    shop = basic("shop", "shop-secret-value")
    limit = Settings().max_body_bytes

    await walk.call("GET", "/health", 200)
    await walk.call("GET", "/openapi.json", 200)

    await walk.call("POST", "/v1/applications", 201, ADMIN, app)
    await walk.call("POST", "/v1/applications", 409, ADMIN, app)
    await walk.call("POST", "/v1/applications", 401, {}, app)
    await walk.call("POST", "/v1/applications", 403, shop, {**app, "application": "x"})
    await walk.call("POST", "/v1/applications", 400, ADMIN, data=b"{")
    await walk.call("POST", "/v1/applications", 415, ADMIN, data=b"{}", content_type="text/csv")
    await walk.call("POST", "/v1/applications", 413, ADMIN, data=b" " * (limit + 1))
    await walk.call("POST", "/v1/applications", 422, ADMIN, {**app, "extra": True})
    await walk.call(
        "POST",
        "/v1/applications",
        201,
        ADMIN,
        {"application": "post", "secret": "post-secret-value", "address": "https://p.test"},
    )
    post = basic("post", "post-secret-value")
    await walk.call("GET", "/v1/applications", 200, shop)
    await walk.call("GET", "/v1/applications/shop", 200, post)
    await walk.call("GET", "/v1/applications/nobody", 404, shop)
    await walk.call("GET", "/v1/applications", 401)

    orders = {"action": "shop.v1.ordered", "application": "shop", "schemata": DRAFT_7}
    await walk.call("POST", "/v1/actions", 201, shop, orders)
    await walk.call(
        "POST",
        "/v1/actions",
        201,
        ADMIN,
        {"action": "shop.v1.signup", "application": "shop", "schemata": DRAFT_2020},
    )
    await walk.call("POST", "/v1/actions", 409, shop, orders)
    await walk.call("POST", "/v1/actions", 403, post, {**orders, "action": "shop.v1.x"})
    await walk.call("POST", "/v1/actions", 422, shop, {**orders, "schemata": {"type": "nonsense"}})
    await walk.call(
        "POST", "/v1/actions", 404, ADMIN, {**orders, "action": "a.b", "application": "ghost"}
    )
    await walk.call("GET", "/v1/actions?application=shop&q=order&limit=5", 200, post)
    await walk.call("GET", "/v1/actions?limit=zero", 400, post)
    await walk.call("GET", "/v1/actions/shop.v1.ordered", 200, post)
    await walk.call("GET", "/v1/actions/shop.v1.nothing", 404, post)

    subscribe = {"application": "post", "action": "shop.v1.ordered", "handler": receiver.url}
    created = await walk.call("POST", "/v1/subscriptions", 201, post, subscribe)
    await walk.call("POST", "/v1/subscriptions", 409, post, subscribe)
    await walk.call("POST", "/v1/subscriptions", 403, shop, subscribe)
    await walk.call(
        "POST", "/v1/subscriptions", 404, post, {**subscribe, "action": "shop.v1.nothing"}
    )
    await walk.call("POST", "/v1/subscriptions", 422, post, {**subscribe, "max_retries": -1})
    second = await walk.call(
        "POST",
        "/v1/subscriptions",
        201,
        post,
        {**subscribe, "handler": receiver.url + "/second", "max_retries": 0},
    )
    third = await walk.call(
        "POST",
        "/v1/subscriptions",
        201,
        post,
        {**subscribe, "handler": receiver.url + "/third", "retry_schedule": [1, 2]},
    )
    await walk.call("GET", "/v1/subscriptions?application=post&active=true&limit=10", 200, shop)
    await walk.call("GET", "/v1/subscriptions?active=perhaps", 400, shop)
    await walk.call("GET", f"/v1/subscriptions/{created['id']}", 200, shop)
    await walk.call("GET", "/v1/subscriptions/0000", 404, shop)
    await walk.call(
        "POST",
        f"/v1/subscriptions/{created['id']}/rotate-secret",
        200,
        post,
        {"grace_seconds": 30},
    )
    await walk.call("POST", f"/v1/subscriptions/{created['id']}/rotate-secret", 403, shop, {})
    await walk.call("PATCH", f"/v1/subscriptions/{second['id']}", 200, post, {"active": False})
    await walk.call("PATCH", f"/v1/subscriptions/{second['id']}", 422, post, {"active": True})
    await walk.call("DELETE", f"/v1/subscriptions/{third['id']}", 200, post)
    await walk.call("DELETE", f"/v1/subscriptions/{third['id']}", 403, shop)

    event = {"action": "shop.v1.ordered", "payload": {"order_id": 1}, "deduper": "o-1"}
    published = await walk.call("POST", "/v1/events", 201, shop, event)
    again = await walk.call("POST", "/v1/events", 200, shop, event)
    assert again == {"id": published["id"], "created": False}
    await walk.call("POST", "/v1/events", 422, shop, {**event, "payload": {"order_id": "1"}})
    await walk.call("POST", "/v1/events", 404, shop, {**event, "action": "shop.v1.nothing"})
    await walk.call("POST", "/v1/events", 403, post, event)
    signup = {"action": "shop.v1.signup", "payload": {"email": "ada@example.com"}}
    await walk.call("POST", "/v1/events/batch", 200, shop, {"events": [signup, signup]})
    await walk.call(
        "POST",
        "/v1/events/batch",
        207,
        shop,
        {"events": [signup, {**signup, "payload": {"email": "not an email"}}]},
    )
    await walk.call("POST", "/v1/events/batch", 422, shop, {"events": []})
    await walk.call("GET", "/v1/events?action=shop.v1.ordered&application=shop&limit=2", 200, post)
    await walk.call("GET", f"/v1/events?before={published['id']}", 200, post)
    await walk.call("GET", "/v1/events?before=yesterday", 400, post)
    await walk.call("GET", "/v1/events/not-an-id", 404, post)

    await receiver.wait_for(1)

    async def delivered() -> bool:
        found = await walk.call("GET", f"/v1/events/{published['id']}", 200, post)
        return bool(found["deliveries"]) and found["deliveries"][0]["status"] == "succeeded"

    await wait_until(delivered)
    found = await walk.call("GET", f"/v1/events/{published['id']}", 200, post)
    delivery_id = found["deliveries"][0]["id"]
    await walk.call("GET", f"/v1/deliveries?subscription_id={created['id']}", 200, shop)
    await walk.call("GET", "/v1/deliveries?status=lost", 400, shop)
    await walk.call("GET", f"/v1/deliveries/{delivery_id}", 200, shop)
    await walk.call("GET", f"/v1/deliveries/{published['id']}", 404, shop)
    await walk.call("POST", f"/v1/deliveries/{delivery_id}/retry", 403, shop)
    await walk.call("POST", f"/v1/deliveries/{delivery_id}/retry", 202, post)
    await walk.call("POST", f"/v1/deliveries/{delivery_id}/retry", 409, post)
    job = await walk.call("POST", "/v1/retry-jobs", 202, post, {"statuses": ["dead"]})
    await walk.call("POST", "/v1/retry-jobs", 422, post, {"statuses": ["lost"]})
    await walk.call("GET", f"/v1/retry-jobs/{job['id']}", 200, post)
    await walk.call("GET", f"/v1/retry-jobs/{published['id']}", 404, post)
    await walk.call("PUT", "/v1/applications", 405, ADMIN, {})

    succeeded = {(method, path) for method, path, status in walk.seen if 200 <= status < 300}
    assert _operations(CONTRACT.spec) - succeeded == set(), "operations the walk never ran"
