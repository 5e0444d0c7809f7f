"""Who may do what: every route x {no credentials, wrong secret, another application, the
owner, admin}, and no secret or token ever in a response.

Rules: registering applications is the operator's; reading the registry, events and
deliveries takes any valid credentials; an application registers actions only for itself,
publishes only its own actions and manages only its own subscriptions and deliveries; the
operator may do everything.
"""

from __future__ import annotations

import base64
import dataclasses
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import orjson
import pytest
import pytest_asyncio

from amebo.api.routes import ROUTES
from tests.support.api import ADMIN_TOKEN, basic
from tests.support.contract import CONTRACT
from tests.support.world import ACTION, OTHER, OWNER, THIRD, World, shared_world

pytestmark = pytest.mark.asyncio(loop_scope="module")

ROLES = ("none", "wrong", "other", "owner", "admin")
SECRETS = [f"{name}-secret-value" for name in (OWNER, OTHER, THIRD)]


def _expect(
    none: int = 401, wrong: int = 401, other: int = 403, owner: int = 200, admin: int = 200
) -> dict[str, int]:
    return {"none": none, "wrong": wrong, "other": other, "owner": owner, "admin": admin}


PUBLIC = _expect(200, 200, 200, 200, 200)
READ = _expect(other=200)


@dataclasses.dataclass(frozen=True)
class Request:
    path: str
    json: Any = None


Prepare = Callable[[World], Awaitable[Request]]


@dataclasses.dataclass(frozen=True)
class Endpoint:
    method: str
    route: str  # exactly as in routes.py
    owner: str  # the application whose resource this touches
    expect: dict[str, int]
    prepare: Prepare


def fixed(path: str, body: Any = None) -> Prepare:
    async def prepare(world: World) -> Request:
        return Request(path, body)

    return prepare


async def _fresh_subscription(world: World) -> str:
    """One per case: deactivating or rotating must not change what the next case sees."""
    response = await world.api.client.post(
        "/v1/subscriptions",
        json={
            "application": OTHER,
            "action": ACTION,
            "handler": f"http://127.0.0.1:9/{world.unique('auth')}",
        },
        headers=world.admin,
    )
    assert response.status == 201, await response.text()
    return str((await response.json())["id"])


def on_fresh_subscription(suffix: str, body: Any = None) -> Prepare:
    async def prepare(world: World) -> Request:
        return Request(f"/v1/subscriptions/{await _fresh_subscription(world)}{suffix}", body)

    return prepare


async def new_application(world: World) -> Request:
    name = world.unique("newapp")
    return Request(
        "/v1/applications",
        {"application": name, "secret": f"{name}-long-secret", "address": "http://n.test"},
    )


async def new_action(world: World) -> Request:
    return Request(
        "/v1/actions",
        {"action": world.unique("customers.v1.auth"), "application": OWNER, "schemata": True},
    )


async def new_subscription(world: World) -> Request:
    return Request(
        "/v1/subscriptions",
        {
            "application": OTHER,
            "action": ACTION,
            "handler": f"http://127.0.0.1:9/{world.unique('sub')}",
        },
    )


async def new_event(world: World) -> Request:
    return Request("/v1/events", {"action": ACTION, "payload": {"email": "m@example.com"}})


async def new_batch(world: World) -> Request:
    return Request(
        "/v1/events/batch", {"events": [{"action": ACTION, "payload": {"email": "b@x.test"}}]}
    )


async def new_retry_job(world: World) -> Request:
    return Request("/v1/retry-jobs", {"application": OTHER, "statuses": ["dead"]})


async def one_retry_job(world: World) -> Request:
    response = await world.api.client.post(
        "/v1/retry-jobs", json={"application": OTHER}, headers=world.admin
    )
    assert response.status == 202, await response.text()
    return Request(f"/v1/retry-jobs/{(await response.json())['id']}")


def world_path(template: str) -> Prepare:
    async def prepare(world: World) -> Request:
        return Request(
            template.format(
                subscription=world.subscription_id,
                event=world.event_id,
                delivery=world.delivery_id,
            )
        )

    return prepare


MATRIX = [
    Endpoint("GET", "/health", OWNER, PUBLIC, fixed("/health")),
    Endpoint("GET", "/openapi.json", OWNER, PUBLIC, fixed("/openapi.json")),
    Endpoint("POST", "/v1/applications", OWNER, _expect(owner=403, admin=201), new_application),
    Endpoint("GET", "/v1/applications", OWNER, READ, fixed("/v1/applications")),
    Endpoint(
        "GET",
        "/v1/applications/{application}",
        OWNER,
        READ,
        fixed(f"/v1/applications/{OWNER}"),
    ),
    Endpoint("POST", "/v1/actions", OWNER, _expect(owner=201, admin=201), new_action),
    Endpoint("GET", "/v1/actions", OWNER, READ, fixed(f"/v1/actions?application={OWNER}")),
    Endpoint("GET", "/v1/actions/{action}", OWNER, READ, fixed(f"/v1/actions/{ACTION}")),
    Endpoint("POST", "/v1/subscriptions", OTHER, _expect(owner=201, admin=201), new_subscription),
    Endpoint("GET", "/v1/subscriptions", OTHER, READ, fixed("/v1/subscriptions")),
    Endpoint(
        "GET",
        "/v1/subscriptions/{subscription_id}",
        OTHER,
        READ,
        world_path("/v1/subscriptions/{subscription}"),
    ),
    Endpoint(
        "PATCH",
        "/v1/subscriptions/{subscription_id}",
        OTHER,
        _expect(),
        on_fresh_subscription("", {"active": False}),
    ),
    Endpoint(
        "DELETE",
        "/v1/subscriptions/{subscription_id}",
        OTHER,
        _expect(),
        on_fresh_subscription(""),
    ),
    Endpoint(
        "POST",
        "/v1/subscriptions/{subscription_id}/rotate-secret",
        OTHER,
        _expect(),
        on_fresh_subscription("/rotate-secret", {"grace_seconds": 0}),
    ),
    Endpoint("POST", "/v1/events", OWNER, _expect(owner=201, admin=201), new_event),
    # A batch answers for each item: another application's items are refused one by one.
    Endpoint("POST", "/v1/events/batch", OWNER, _expect(other=207), new_batch),
    Endpoint("GET", "/v1/events", OWNER, READ, fixed(f"/v1/events?action={ACTION}")),
    Endpoint("GET", "/v1/events/{event_id}", OWNER, READ, world_path("/v1/events/{event}")),
    Endpoint("GET", "/v1/deliveries", OTHER, READ, fixed("/v1/deliveries")),
    Endpoint(
        "GET",
        "/v1/deliveries/{delivery_id}",
        OTHER,
        READ,
        world_path("/v1/deliveries/{delivery}"),
    ),
    # The shared world never delivers, so its delivery is still pending: a caller who may
    # retry it is told 409 (it will be tried anyway), one who may not is told 403.
    Endpoint(
        "POST",
        "/v1/deliveries/{delivery_id}/retry",
        OTHER,
        _expect(owner=409, admin=409),
        world_path("/v1/deliveries/{delivery}/retry"),
    ),
    Endpoint("POST", "/v1/retry-jobs", OTHER, _expect(owner=202, admin=202), new_retry_job),
    Endpoint("GET", "/v1/retry-jobs/{job_id}", OTHER, READ, one_retry_job),
]

CASES = [(endpoint, role) for endpoint in MATRIX for role in ROLES]


async def test_the_matrix_covers_every_route() -> None:
    routed = {(r.method, r.path) for r in ROUTES}
    covered = {(e.method, e.route) for e in MATRIX}
    assert routed - covered == set(), "routes missing from the authorization matrix"
    assert covered - routed == set(), "matrix rows for routes that do not exist"


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def world(server_url: str, template_name: str) -> AsyncIterator[World]:
    async with shared_world(server_url, template_name) as world:
        yield world


def _credentials(world: World, endpoint: Endpoint, role: str) -> dict[str, str]:
    others = {OWNER: world.owner, OTHER: world.other, THIRD: world.third}
    if role == "none":
        return {}
    if role == "wrong":
        return basic(endpoint.owner, "a-wrong-secret-value")
    if role == "other":
        return world.third  # touches neither customers' nor billing's things
    if role == "owner":
        return others[endpoint.owner]
    return world.admin


def forbidden_texts(world: World) -> list[str]:
    return [
        *SECRETS,
        ADMIN_TOKEN,
        "a-wrong-secret-value",
        world.subscription_secret,
        "secret_hash",
        "$2b$",
    ]


@pytest.mark.parametrize(
    ("endpoint", "role"), CASES, ids=[f"{e.method} {e.route} {role}" for e, role in CASES]
)
async def test_authorization_matrix(world: World, endpoint: Endpoint, role: str) -> None:
    request = await endpoint.prepare(world)
    before = await world.log_rows()
    response = await world.api.client.request(
        endpoint.method,
        request.path,
        json=request.json,
        headers=_credentials(world, endpoint, role),
    )
    body = await response.read()
    expected = endpoint.expect[role]
    assert response.status == expected, body.decode(errors="replace")[:400]

    if expected in (401, 403):
        assert response.content_type == "application/problem+json"
        assert await world.log_rows() == before, "a refused request wrote to the log"
    if expected == 401:
        assert "Basic" in response.headers["WWW-Authenticate"]
        assert "Bearer" in response.headers["WWW-Authenticate"]
    if expected == 207:
        [item] = orjson.loads(body)["results"]
        assert item["status"] == 403
        assert await world.log_rows() == before

    text = body.decode() + " ".join(f"{k}: {v}" for k, v in response.headers.items())
    for secret in forbidden_texts(world):
        assert secret not in text, f"{secret!r} leaked"
    problems = CONTRACT.check(
        endpoint.method, request.path, response.status, response.content_type, body
    )
    assert not problems or CONTRACT.template(request.path.split("?")[0]) is None, problems


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


BAD_HEADERS = [
    "",
    "Basic",
    "Basic ",
    "Basic !!!not-base64!!!",
    f"Basic {_b64('no-colon-here')}",
    f"Basic {_b64(':secret-without-name')}",
    f"Basic {_b64('nobody:whatever-secret')}",
    f"Basic {_b64('customers:')}",
    f"Basic {_b64('customers:' + ADMIN_TOKEN)}",
    f"Basic {_b64('customers' + chr(0) + ':customers-secret-value')}",
    f"Basic {_b64('customers:customers-secret-value')}x",
    "Bearer",
    "Bearer ",
    "Bearer wrong-token",
    f"Bearer {ADMIN_TOKEN}x",
    f"Bearer {ADMIN_TOKEN[:-1]}",
    "Bearer customers-secret-value",
    f"Token {ADMIN_TOKEN}",
    f"Digest {ADMIN_TOKEN}",
    ADMIN_TOKEN,
    "Bearer " + "x" * 4000,
]


@pytest.mark.parametrize("header", BAD_HEADERS, ids=[h[:40] or "empty" for h in BAD_HEADERS])
async def test_bad_credentials_get_401_with_a_challenge_and_echo_nothing(
    world: World, header: str
) -> None:
    response = await world.api.client.get("/v1/applications", headers={"Authorization": header})
    assert response.status == 401
    assert response.content_type == "application/problem+json"
    assert "Basic" in response.headers["WWW-Authenticate"]
    text = await response.text()
    for secret in [*forbidden_texts(world), "wrong-token", "whatever-secret", "x" * 100]:
        assert secret not in text
    assert await world.healthy()


async def test_schemes_are_case_insensitive(world: World) -> None:
    for header in (f"bearer {ADMIN_TOKEN}", f"BASIC {_b64('customers:customers-secret-value')}"):
        response = await world.api.client.get("/v1/applications", headers={"Authorization": header})
        assert response.status == 200, await response.text()


def _keys(document: Any) -> set[str]:
    if isinstance(document, dict):
        return set(document) | {k for v in document.values() for k in _keys(v)}
    if isinstance(document, list):
        return {k for v in document for k in _keys(v)}
    return set()


async def test_reads_never_return_secrets(world: World) -> None:
    client = world.api.client
    key = base64.urlsafe_b64encode(b"k" * 32).decode().rstrip("=")
    created = await client.post(
        "/v1/subscriptions",
        json={
            "application": OTHER,
            "action": ACTION,
            "handler": "http://127.0.0.1:9/encrypted",
            "encryption_key": key,
        },
        headers=world.other,
    )
    assert created.status == 201, await created.text()
    subscription = await created.json()
    assert subscription["secret"].startswith("whsec_")
    assert subscription["encrypted"] is True
    assert "encryption_key" not in subscription

    reads = [
        "/v1/applications",
        f"/v1/applications/{OWNER}",
        "/v1/subscriptions",
        f"/v1/subscriptions/{subscription['id']}",
        f"/v1/subscriptions/{world.subscription_id}",
        f"/v1/subscriptions?application={OTHER}&active=true",
        f"/v1/events/{world.event_id}",
        "/v1/deliveries",
        f"/v1/deliveries/{world.delivery_id}",
    ]
    for path in reads:
        for headers in (world.admin, world.owner, world.other):
            response = await client.get(path, headers=headers)
            assert response.status == 200, (path, await response.text())
            text = await response.text()
            for secret in [*forbidden_texts(world), subscription["secret"], key]:
                assert secret not in text, (path, secret)
            keys = _keys(orjson.loads(text))
            assert not keys & {"secret", "secret_hash", "encryption_key", "token"}, (path, keys)

    application = await (await client.get(f"/v1/applications/{OWNER}", headers=world.owner)).json()
    assert set(application) == {"name", "address", "description", "registered_at"}


async def test_an_application_cannot_act_for_another_by_naming_it(world: World) -> None:
    """The body's application field never overrides who authenticated."""
    client = world.api.client
    before = await world.log_rows()
    attempts = [
        ("/v1/actions", {"action": "billing.v1.forged", "application": OTHER, "schemata": {}}),
        (
            "/v1/subscriptions",
            {"application": OWNER, "action": ACTION, "handler": "http://127.0.0.1:9/forged"},
        ),
        ("/v1/retry-jobs", {"application": OWNER}),
    ]
    for path, body in attempts:
        response = await client.post(path, json=body, headers=world.third)
        assert response.status == 403, (path, await response.text())
        document = await response.json()
        assert document["status"] == 403
    assert await world.log_rows() == before
