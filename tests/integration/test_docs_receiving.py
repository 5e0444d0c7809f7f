"""docs/receiving.md, run: its Python examples against real deliveries from amebo.

Every ```python block of the guide starts with ``# name.py``; these tests take the blocks out
of the Markdown and run them as the guide tells a subscriber to, so the guide cannot drift
from what amebo sends.
"""

from __future__ import annotations

import datetime
import re
import time
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from jwcrypto.jwe import InvalidJWEData
from multidict import CIMultiDict
from standardwebhooks import WebhookVerificationError

from amebo.api.routes import ROUTES
from amebo.delivery.signing import secret_key, signature_header
from tests.conftest import wait_until
from tests.support.api import ADMIN, Api
from tests.support.receiver import Received, Receiver

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "receiving.md"
BLOCK = re.compile(r"^```python\n(.*?)^```", re.DOTALL | re.MULTILINE)
ACTION = "customers.v1.created"
SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "properties": {
        "customer_id": {"type": "number"},
        "email": {"type": "string", "format": "email"},
    },
    "required": ["customer_id", "email"],
}


def examples() -> dict[str, str]:
    found: dict[str, str] = {}
    for code in BLOCK.findall(GUIDE.read_text()):
        match = re.match(r"# (\w+\.py)\b", code)
        assert match, f"a Python example must start with '# name.py': {code.splitlines()[0]!r}"
        found[match[1]] = code
    return found


def run_example(
    name: str, monkeypatch: pytest.MonkeyPatch, main: bool = False, **env: str
) -> dict[str, Any]:
    """Runs one example as a module (as a script when ``main``) and returns its globals."""
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    namespace: dict[str, Any] = {"__name__": "__main__" if main else f"docs_{name[:-3]}"}
    exec(compile(examples()[name], f"docs/receiving.md ({name})", "exec"), namespace)
    return namespace


async def _subscribed(api: Api, handler: str, **extra: Any) -> tuple[dict[str, str], Any]:
    customers = await api.register_application("customers")
    billing = await api.register_application("billing")
    await api.register_action(customers, "customers", ACTION, SCHEMA)
    subscription = await api.subscribe(billing, "billing", ACTION, handler, **extra)
    return customers, (billing, subscription)


def _headers(request: Received) -> CIMultiDict[str]:
    return CIMultiDict(request.headers)


async def _delivery_of(api: Api, event_id: str) -> dict[str, Any]:
    response = await api.client.get(f"/v1/events/{event_id}", headers=ADMIN)
    [delivery] = (await response.json())["deliveries"]
    result: dict[str, Any] = delivery
    return result


def test_every_example_is_named_and_compiles() -> None:
    found = examples()
    assert set(found) == {"receiver.py", "make_key.py", "decrypt.py"}
    for name, code in found.items():
        compile(code, name, "exec")


def test_every_api_path_in_the_guide_is_a_route() -> None:
    routes = {re.sub(r"\{[^}]+\}", "{}", route.path) for route in ROUTES}
    mentioned = set(re.findall(r"/v1/[A-Za-z0-9_{}$/.-]*[A-Za-z0-9}]", GUIDE.read_text()))
    assert mentioned
    for path in mentioned:
        normalised = re.sub(r"\{[^}]+\}|\$[A-Z_]+", "{}", path)
        assert normalised in routes, f"{path} in docs/receiving.md is not a route"


async def test_the_receiver_verifies_handles_and_deduplicates_real_deliveries(
    api: Api, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    customers, (billing, subscription) = await _subscribed(
        api, receiver.url + "/hooks/customer-created"
    )
    guide = run_example("receiver.py", monkeypatch, AMEBO_WEBHOOK_SECRET=subscription["secret"])
    handled: list[dict[str, Any]] = []
    guide["handle"] = handled.append

    async def through_the_guide(request: web.Request, body: bytes) -> web.StreamResponse:
        response: web.StreamResponse = await guide["webhook"](request)
        return response

    receiver.respond = through_the_guide
    payloads = [
        {"customer_id": 42, "email": "ada@example.com"},
        {"customer_id": 43, "email": "grace@example.com"},
    ]
    events = [await api.publish(customers, ACTION, payload) for payload in payloads]
    received = await receiver.wait_for(2)
    assert sorted(envelope["data"]["customer_id"] for envelope in handled) == [42, 43]
    for envelope in handled:
        assert envelope["type"] == ACTION
        assert envelope["application"] == "customers"
    assert {r.headers["amebo-event-id"] for r in received} == {e["id"] for e in events}

    async def succeeded() -> bool:
        deliveries = [await _delivery_of(api, event["id"]) for event in events]
        return all(d["status"] == "succeeded" for d in deliveries)

    await wait_until(succeeded)
    first = await _delivery_of(api, events[0]["id"])
    assert first["last_status_code"] == 204
    original = next(r for r in received if r.headers["amebo-event-id"] == events[0]["id"])
    assert original.headers["webhook-id"] == first["id"], "webhook-id is the delivery's id"

    # A retry by hand sends the same delivery again: same webhook-id, handled once.
    response = await api.client.post(f"/v1/deliveries/{first['id']}/retry", headers=billing)
    assert response.status == 202, await response.text()
    [*_, again] = await receiver.wait_for(3)
    assert again.headers["webhook-id"] == original.headers["webhook-id"]
    assert again.headers["amebo-attempt"] == "1"
    assert int(again.headers["webhook-timestamp"]) >= int(original.headers["webhook-timestamp"])
    assert len(handled) == 2, "the repeat was answered 204 without being handled again"

    async def retried_and_succeeded() -> bool:
        delivery = await _delivery_of(api, events[0]["id"])
        return delivery["attempts"] == 2 and delivery["status"] == "succeeded"

    await wait_until(retried_and_succeeded)


async def test_the_receiver_refuses_forgeries_and_old_timestamps(
    api: Api, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    customers, (_, subscription) = await _subscribed(api, receiver.url + "/hook")
    secret = subscription["secret"]
    await api.publish(customers, ACTION, {"customer_id": 7, "email": "ada@example.com"})
    [delivery] = await receiver.wait_for(1)
    guide = run_example("receiver.py", monkeypatch, AMEBO_WEBHOOK_SECRET=secret)
    guide["handle"] = lambda envelope: None
    receive = guide["receive"]
    headers = _headers(delivery)

    assert receive(delivery.body, headers) == 204
    assert receive(delivery.body.replace(b"ada@", b"eve@"), headers) == 400, "tampered body"
    impostor = run_example(
        "receiver.py", monkeypatch, AMEBO_WEBHOOK_SECRET="whsec_" + "A" * 43 + "="
    )
    assert impostor["receive"](delivery.body, headers) == 400, "signed with another secret"

    # Signed by amebo with the right secret, but sent ten minutes ago: a replay.
    sent = int(time.time()) - 600
    replayed = CIMultiDict(headers)
    replayed["webhook-id"] = "replayed-" + headers["webhook-id"]
    replayed["webhook-timestamp"] = str(sent)
    replayed["webhook-signature"] = signature_header(
        [secret_key(secret)], replayed["webhook-id"], sent, delivery.body
    )
    assert receive(delivery.body, replayed) == 400


async def test_after_rotation_both_secrets_verify_during_the_grace_period(
    api: Api, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    customers, (billing, subscription) = await _subscribed(api, receiver.url + "/hook")
    response = await api.client.post(
        f"/v1/subscriptions/{subscription['id']}/rotate-secret",
        json={"grace_seconds": 86400},
        headers=billing,
    )
    assert response.status == 200, await response.text()
    rotated = await response.json()
    assert rotated["secret"].startswith("whsec_")
    assert rotated["secret"] != subscription["secret"]

    await api.publish(customers, ACTION, {"customer_id": 7, "email": "ada@example.com"})
    [delivery] = await receiver.wait_for(1)
    assert len(delivery.headers["webhook-signature"].split(" ")) == 2
    for secret in (rotated["secret"], subscription["secret"]):
        guide = run_example("receiver.py", monkeypatch, AMEBO_WEBHOOK_SECRET=secret)
        guide["handle"] = lambda envelope: None
        assert guide["receive"](delivery.body, _headers(delivery)) == 204


async def test_an_encrypted_delivery_opens_as_the_guide_says(
    api: Api,
    receiver: Receiver,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    run_example("make_key.py", monkeypatch, main=True)
    key = capsys.readouterr().out.strip()
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", key)
    customers, (_, subscription) = await _subscribed(
        api, receiver.url + "/hook", encryption_key=key
    )
    assert subscription["encrypted"] is True
    payload = {"customer_id": 7, "email": "ada@example.com"}
    event = await api.publish(customers, ACTION, payload)
    [delivery] = await receiver.wait_for(1)
    assert delivery.headers["Content-Type"] == "application/jose"
    assert delivery.body.count(b".") == 4 and b"ada@example.com" not in delivery.body

    guide = run_example(
        "decrypt.py",
        monkeypatch,
        AMEBO_WEBHOOK_SECRET=subscription["secret"],
        AMEBO_ENCRYPTION_KEY=key,
    )
    envelope = guide["open_delivery"](delivery.body, _headers(delivery))
    assert envelope["id"] == event["id"]
    assert envelope["type"] == ACTION
    assert envelope["data"] == payload
    published = datetime.datetime.fromisoformat(envelope["timestamp"])
    assert published.tzinfo is not None

    tampered = delivery.body[:-1] + (b"B" if delivery.body.endswith(b"A") else b"A")
    with pytest.raises(WebhookVerificationError):
        guide["open_delivery"](tampered, _headers(delivery))
    other_key = run_example(
        "decrypt.py",
        monkeypatch,
        AMEBO_WEBHOOK_SECRET=subscription["secret"],
        AMEBO_ENCRYPTION_KEY="B" * 43,
    )
    with pytest.raises(InvalidJWEData):
        other_key["open_delivery"](delivery.body, _headers(delivery))
