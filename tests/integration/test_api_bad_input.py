"""Bad input of every kind, at every endpoint: a specific 4xx, a problem document that says
where, nothing written, and a server that stays healthy.

One amebo serves the whole module (tests.support.world); each case counts the log's rows
before and after.
"""

from __future__ import annotations

import asyncio
import dataclasses
import io
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
import pytest_asyncio

from amebo.config import Settings
from tests.support.api import amebo_api, test_settings
from tests.support.contract import CONTRACT
from tests.support.receiver import Receiver
from tests.support.world import ACTION, OTHER, OWNER, World, shared_world

pytestmark = pytest.mark.asyncio(loop_scope="module")

LIMIT = Settings().max_body_bytes
MISSING: Any = object()


@dataclasses.dataclass(frozen=True)
class Case:
    id: str
    method: str
    path: str  # {subscription}, {event}, {delivery} are filled in from the world
    who: str  # admin | owner | other
    json: Any = MISSING  # serialised with orjson
    raw: bytes | None = None  # sent as is
    content_type: str | None = "application/json"
    status: int = 422
    pointers: tuple[str, ...] = ()  # each must be among the problem's pointers


# Each writing endpoint with a body it accepts; the generic cases below spoil it.
BODIES: list[tuple[str, str, str, dict[str, Any]]] = [
    (
        "POST",
        "/v1/applications",
        "admin",
        {"application": "fresh", "secret": "a-long-enough-secret", "address": "http://x.test"},
    ),
    (
        "POST",
        "/v1/actions",
        "owner",
        {"action": "customers.v1.fresh", "application": OWNER, "schemata": {"type": "object"}},
    ),
    (
        "POST",
        "/v1/subscriptions",
        "other",
        {"application": OTHER, "action": ACTION, "handler": "http://127.0.0.1:9/fresh"},
    ),
    ("PATCH", "/v1/subscriptions/{subscription}", "other", {"active": False}),
    ("POST", "/v1/events", "owner", {"action": ACTION, "payload": {"email": "a@example.com"}}),
    (
        "POST",
        "/v1/events/batch",
        "owner",
        {"events": [{"action": ACTION, "payload": {"email": "a@example.com"}}]},
    ),
    ("POST", "/v1/subscriptions/{subscription}/rotate-secret", "other", {"grace_seconds": 60}),
    ("POST", "/v1/retry-jobs", "admin", {"statuses": ["dead"]}),
]


def _nested(valid: dict[str, Any], depth: int) -> bytes:
    """``valid`` with a member nested ``depth`` arrays deep (too deep for orjson to write)."""
    inner = b"[" * depth + b"1" + b"]" * depth
    return orjson.dumps(valid)[:-1] + b', "deep": ' + inner + b"}"


def _generic(method: str, path: str, who: str, valid: dict[str, Any]) -> list[Case]:
    name = f"{method} {path}"
    text = orjson.dumps(valid)
    cases = [
        Case(f"{name} malformed", method, path, who, raw=b'{"a": ', status=400, pointers=("",)),
        Case(f"{name} truncated", method, path, who, raw=text[: len(text) // 2], status=400),
        Case(f"{name} not json", method, path, who, raw=b"hello", status=400),
        Case(f"{name} trailing garbage", method, path, who, raw=text + b" {}", status=400),
        Case(f"{name} single quotes", method, path, who, raw=text.replace(b'"', b"'"), status=400),
        Case(f"{name} NaN", method, path, who, raw=b'{"x": NaN}', status=400),
        Case(f"{name} huge number", method, path, who, raw=b'{"x": 1e400}', status=400),
        Case(f"{name} invalid utf-8", method, path, who, raw=b'{"x": "\xff\xfe"}', status=400),
        Case(f"{name} lone surrogate", method, path, who, raw=b'{"x": "\\ud800"}', status=400),
        Case(
            f"{name} nul in value",
            method,
            path,
            who,
            json={**valid, "note": "a\x00b"},
            status=400,
            pointers=("/note",),
        ),
        Case(f"{name} nul in key", method, path, who, json={**valid, "a\x00": 1}, status=400),
        Case(
            f"{name} nested 300 deep",
            method,
            path,
            who,
            raw=_nested(valid, 300),
            status=400,
            pointers=("/deep" + "/0" * 63,),
        ),
        Case(f"{name} nested 5000 deep", method, path, who, raw=b"[" * 5000, status=400),
        Case(
            f"{name} text/plain",
            method,
            path,
            who,
            raw=text,
            content_type="text/plain",
            status=415,
        ),
        Case(
            f"{name} form",
            method,
            path,
            who,
            raw=b"a=1",
            content_type="application/x-www-form-urlencoded",
            status=415,
        ),
        Case(f"{name} array", method, path, who, json=[valid], pointers=("",)),
        Case(f"{name} string", method, path, who, json="text", pointers=("",)),
        Case(f"{name} null", method, path, who, json=None, pointers=("",)),
        Case(
            f"{name} unknown field",
            method,
            path,
            who,
            json={**valid, "unexpected": 1},
            pointers=("/unexpected",),
        ),
        Case(
            f"{name} too large",
            method,
            path,
            who,
            raw=b'{"x": "' + b"a" * LIMIT + b'"}',
            status=413,
        ),
    ]
    if not path.endswith("rotate-secret"):  # there, no body means "use the defaults"
        cases.append(Case(f"{name} empty", method, path, who, raw=b"", status=400))
    return cases


def _fields(
    method: str, path: str, who: str, valid: dict[str, Any], field: str, values: list[Any]
) -> list[Case]:
    return [
        Case(
            f"{method} {path} {field}={value!r:.40}",
            method,
            path,
            who,
            json=_set(valid, field, value),
            pointers=(_pointer(field),),
        )
        for value in values
    ]


def _set(document: dict[str, Any], field: str, value: Any) -> dict[str, Any]:
    """A copy with ``field`` (a/b/0 for nested) set, or removed when value is MISSING."""
    copy = orjson.loads(orjson.dumps(document))
    *parents, last = field.split("/")
    target = copy
    for part in parents:
        target = target[int(part)] if isinstance(target, list) else target[part]
    if value is MISSING:
        del target[last]
    else:
        target[last] = value
    return copy  # type: ignore[no-any-return]


def _pointer(field: str) -> str:
    return "/" + field


INJECTIONS = [
    "x'; DROP TABLE amebo.log; --",
    "' OR '1'='1",
    "{{7*7}}",
    "${7*7}",
    "#{7*7}",
    "<%= 7*7 %>",
    "<script>alert(1)</script>",
    "../../etc/passwd",
]
BAD_NAMES = [
    "",
    "x" * 129,
    "x" * 100_000,
    "café",
    "名前",
    "emoji😀",
    "a b",
    "-leading-dash",
    "tab\tinside",
    "new\nline",
    17,
    None,
    ["list"],
    MISSING,
    *INJECTIONS,
]
BAD_URLS = [
    "",
    "not a url",
    "javascript:alert(1)",
    "file:///etc/passwd",
    "ftp://example.com/x",
    "http://",
    "http:// spaced.example",
    "http://x.test/" + "a" * 3000,
    "gopher://127.0.0.1:6379/_FLUSHALL",
    42,
    MISSING,
    *INJECTIONS,
]
(_APP, _ACTION, _SUB, _PATCH, _EVENT, _BATCH, _ROTATE, _RETRY_JOB) = BODIES

CASES: list[Case] = [case for body in BODIES for case in _generic(*body)]
CASES += _fields(*_APP, "application", BAD_NAMES)
CASES += _fields(*_APP, "address", BAD_URLS)
CASES += _fields(*_APP, "secret", ["", "short", "x" * 1025, 12345678, None, MISSING])
CASES += _fields(*_APP, "description", [7, ["x"], "x" * 4001])
CASES += _fields(*_ACTION, "action", BAD_NAMES)
CASES += _fields(*_ACTION, "application", BAD_NAMES)
CASES += _fields(*_ACTION, "description", [False, "x" * 4001])
CASES += _fields(*_ACTION, "schemata", ["a string", 42, None, [], MISSING])
CASES += _fields(*_SUB, "application", BAD_NAMES)
CASES += _fields(*_SUB, "action", BAD_NAMES)
CASES += _fields(*_SUB, "handler", BAD_URLS)
CASES += _fields(*_SUB, "max_retries", [-1, 101, "3", 1.5, True, 1e30, None])
CASES += _fields(*_SUB, "retry_schedule", [[], [-1], ["1"], [1] * 51, [1e9], "5,10"])
CASES += _fields(*_SUB, "encryption_key", ["short", "!" * 43, 7])
CASES += _fields(*_PATCH, "active", [True, "false", 0, None, MISSING])
CASES += _fields(*_EVENT, "action", BAD_NAMES)
CASES += _fields(*_EVENT, "deduper", ["", "d" * 513, 5, None])
CASES += _fields(*_EVENT, "payload", [MISSING])
CASES += _fields(*_BATCH, "events", [[], "x", None, [1], MISSING])
CASES += _fields(*_BATCH, "events/0/action", ["", "café", 3, MISSING])
CASES += _fields(*_BATCH, "events/0/payload", [MISSING])
CASES += _fields(*_ROTATE, "grace_seconds", [-1, "60", 1e9, None])
CASES += _fields(*_RETRY_JOB, "statuses", [[], ["bogus"], "dead", ["dead", "dead"]])
CASES += [
    Case(
        "POST /v1/events/batch 1001 events",
        "POST",
        "/v1/events/batch",
        "owner",
        json={"events": [{"action": ACTION, "payload": {"email": "a@b.example"}}] * 1001},
        pointers=("/events",),
    ),
    Case(
        "POST /v1/retry-jobs bad subscription_id",
        "POST",
        "/v1/retry-jobs",
        "admin",
        json={"subscription_id": "nope"},
        pointers=("/subscription_id",),
    ),
    Case(
        "POST /v1/retry-jobs bad since",
        "POST",
        "/v1/retry-jobs",
        "admin",
        json={"since": "yesterday"},
        pointers=("/since",),
    ),
]

# Publishing: the payload against the action's schema, and names that do not exist.
CASES += [
    Case(
        "publish unknown action",
        "POST",
        "/v1/events",
        "owner",
        json={"action": "customers.v1.nope", "payload": {}},
        status=404,
        pointers=("/action",),
    ),
    Case(
        "publish without the required email",
        "POST",
        "/v1/events",
        "owner",
        json={"action": ACTION, "payload": {"name": "Ada"}},
        pointers=("/payload/email",),
    ),
    Case(
        "publish an email that is not one",
        "POST",
        "/v1/events",
        "owner",
        json={"action": ACTION, "payload": {"email": "not-an-email"}},
        pointers=("/payload/email",),
    ),
    Case(
        "publish a number as email",
        "POST",
        "/v1/events",
        "owner",
        json={"action": ACTION, "payload": {"email": 12}},
        pointers=("/payload/email",),
    ),
    Case(
        "publish an array payload",
        "POST",
        "/v1/events",
        "owner",
        json={"action": ACTION, "payload": []},
        pointers=("/payload",),
    ),
    Case(
        "publish a nul in the payload",
        "POST",
        "/v1/events",
        "owner",
        json={"action": ACTION, "payload": {"email": "a@example.com", "name": "A\x00"}},
        status=400,
        pointers=("/payload/name",),
    ),
    Case(
        "subscribe to an unknown action",
        "POST",
        "/v1/subscriptions",
        "other",
        json={"application": OTHER, "action": "nobody.v1.emits", "handler": "http://x.test/"},
        status=404,
        pointers=("/action",),
    ),
    Case(
        "register an action for an unknown application",
        "POST",
        "/v1/actions",
        "admin",
        json={"action": "ghost.v1.x", "application": "ghost", "schemata": {}},
        status=404,
        pointers=("/application",),
    ),
    Case(
        "subscribe for an unknown application",
        "POST",
        "/v1/subscriptions",
        "admin",
        json={"application": "ghost", "action": ACTION, "handler": "http://x.test/"},
        status=404,
        pointers=("/application",),
    ),
]

# Action schemas that are not valid JSON Schemas, or that try to reach out or to hang.
INVALID_SCHEMAS: list[tuple[str, Any, str]] = [
    ("unknown type", {"type": "nonsense"}, "/schemata/type"),
    ("type is a number", {"type": 12}, "/schemata/type"),
    ("negative minLength", {"minLength": -1}, "/schemata/minLength"),
    ("required is a string", {"required": "email"}, "/schemata/required"),
    ("properties is a list", {"properties": []}, "/schemata/properties"),
    ("nested invalid", {"properties": {"a": {"type": "nope"}}}, "/schemata/properties/a/type"),
    ("unknown $schema", {"$schema": "http://example.com/my-draft"}, "/schemata/$schema"),
    ("$schema not a string", {"$schema": 5}, "/schemata/$schema"),
    ("dangling local $ref", {"$ref": "#/$defs/missing"}, "/schemata"),
    ("backreference", {"type": "string", "pattern": "(a)\\1"}, "/schemata"),
    ("lookahead", {"type": "string", "pattern": "(?=a)a"}, "/schemata"),
    ("unclosed class", {"type": "string", "pattern": "["}, "/schemata"),
    ("exploding repetition", {"type": "string", "pattern": "((a{100}){100}){100}"}, "/schemata"),
    ("bad patternProperties", {"patternProperties": {"(a)\\1": {}}}, "/schemata"),
]


def _action_with(schemata: Any) -> dict[str, Any]:
    return {"action": "customers.v1.schema", "application": OWNER, "schemata": schemata}


CASES += [
    Case(f"schema {label}", "POST", "/v1/actions", "owner", json=_action_with(schema), pointers=())
    for label, schema, _ in INVALID_SCHEMAS
]

# Unknown or malformed ids and names in paths: 404, never 500.
RANDOM = str(uuid.UUID(int=0x1234))
NOT_FOUND_PATHS = [
    ("GET", "/v1/applications/nobody"),
    ("GET", "/v1/applications/" + "x" * 129),
    ("GET", "/v1/applications/" + "x" * 4000),
    ("GET", "/v1/applications/a%00b"),
    ("GET", "/v1/applications/%FF%FE"),
    ("GET", "/v1/applications/caf%C3%A9"),
    ("GET", "/v1/applications/x'%3B%20DROP%20TABLE%20amebo.log%3B--"),
    ("GET", "/v1/applications/%7B%7B7*7%7D%7D"),
    ("GET", "/v1/actions/nothing.v1.here"),
    ("GET", "/v1/actions/a%00b"),
    ("GET", "/v1/actions/%ED%A0%80"),
    ("GET", "/v1/subscriptions/not-a-uuid"),
    ("GET", f"/v1/subscriptions/{RANDOM}"),
    ("GET", "/v1/subscriptions/%00"),
    ("PATCH", "/v1/subscriptions/not-a-uuid"),
    ("PATCH", f"/v1/subscriptions/{RANDOM}"),
    ("DELETE", "/v1/subscriptions/not-a-uuid"),
    ("DELETE", f"/v1/subscriptions/{RANDOM}"),
    ("POST", "/v1/subscriptions/not-a-uuid/rotate-secret"),
    ("POST", f"/v1/subscriptions/{RANDOM}/rotate-secret"),
    ("GET", "/v1/events/not-a-uuid"),
    ("GET", f"/v1/events/{RANDOM}"),
    ("GET", "/v1/events/" + RANDOM + "0"),
    ("GET", "/v1/deliveries/not-a-uuid"),
    ("GET", f"/v1/deliveries/{RANDOM}"),
    ("POST", "/v1/deliveries/not-a-uuid/retry"),
    ("POST", f"/v1/deliveries/{RANDOM}/retry"),
    ("GET", "/v1/retry-jobs/not-a-uuid"),
    ("GET", f"/v1/retry-jobs/{RANDOM}"),
    ("GET", "/v1/nowhere"),
    ("GET", "/v2/applications"),
]
CASES += [
    Case(
        f"{method} {path:.60}",
        method,
        path,
        "admin",
        json={"active": False} if method == "PATCH" else MISSING,
        status=404,
    )
    for method, path in NOT_FOUND_PATHS
]

# Query parameters: 400 with a pointer to /query/<name>.
BAD_QUERIES = [
    ("/v1/actions?limit=abc", "limit"),
    ("/v1/actions?limit=0", "limit"),
    ("/v1/actions?limit=-1", "limit"),
    ("/v1/actions?limit=10001", "limit"),
    ("/v1/actions?limit=1e3", "limit"),
    ("/v1/actions?limit=99999999999999999999999", "limit"),
    ("/v1/actions?q=%00", "q"),
    ("/v1/actions?application=a%00", "application"),
    ("/v1/subscriptions?active=maybe", "active"),
    ("/v1/subscriptions?limit=x", "limit"),
    ("/v1/subscriptions?application=%00", "application"),
    ("/v1/events?before=xyz", "before"),
    ("/v1/events?limit=1001", "limit"),
    ("/v1/events?action=%00", "action"),
    ("/v1/deliveries?status=bogus", "status"),
    ("/v1/deliveries?since=yesterday", "since"),
    ("/v1/deliveries?subscription_id=nope", "subscription_id"),
    ("/v1/deliveries?limit=0", "limit"),
    ("/v1/deliveries?application=%00", "application"),
]
CASES += [
    Case(f"GET {path}", "GET", path, "admin", status=400, pointers=(f"/query/{name}",))
    for path, name in BAD_QUERIES
]
CASES += [
    Case("PUT /v1/applications", "PUT", "/v1/applications", "admin", status=405),
    Case("DELETE /v1/events", "DELETE", "/v1/events", "admin", status=405),
]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def world(server_url: str, template_name: str) -> AsyncIterator[World]:
    async with shared_world(server_url, template_name) as world:
        yield world


def _headers(world: World, who: str) -> dict[str, str]:
    return dict({"admin": world.admin, "owner": world.owner, "other": world.other}[who])


def _fill(world: World, path: str) -> str:
    return path.format(
        subscription=world.subscription_id, event=world.event_id, delivery=world.delivery_id
    )


async def _send(world: World, case: Case) -> tuple[int, str, bytes]:
    headers = _headers(world, case.who)
    data: bytes | None = case.raw
    if case.json is not MISSING:
        data = orjson.dumps(case.json)
    if data is not None and case.content_type is not None:
        headers["Content-Type"] = case.content_type
    response = await world.api.client.request(
        case.method,
        _fill(world, case.path),
        data=io.BytesIO(data) if data is not None and len(data) > 65_536 else data,
        headers=headers,
    )
    return response.status, response.headers.get("Content-Type", ""), await response.read()


def assert_problem(status: int, content_type: str, body: bytes, expected: int) -> dict[str, Any]:
    assert status == expected, body.decode(errors="replace")[:500]
    assert content_type.startswith("application/problem+json"), content_type
    document: dict[str, Any] = orjson.loads(body)
    assert document["status"] == expected
    assert document["title"] and document["detail"]
    for error in document["errors"]:
        assert error["pointer"] == "" or error["pointer"].startswith("/"), error
        assert error["message"]
    return document


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
async def test_bad_input_is_refused_specifically_and_writes_nothing(
    world: World, case: Case
) -> None:
    before = await world.log_rows()
    status, content_type, body = await _send(world, case)
    document = assert_problem(status, content_type, body, case.status)
    pointers = [error["pointer"] for error in document["errors"]]
    for pointer in case.pointers:
        assert any(p == pointer or p.startswith(pointer + "/") for p in pointers), document
    if case.status in (400, 422) and case.pointers:
        assert document["errors"], document
    if CONTRACT.template(_fill(world, case.path).split("?")[0]) is not None:
        problems = CONTRACT.check(case.method, _fill(world, case.path), status, content_type, body)
        assert not problems, problems
    assert await world.log_rows() == before
    assert await world.healthy()


@pytest.mark.parametrize(
    ("label", "schema", "pointer"), INVALID_SCHEMAS, ids=[s[0] for s in INVALID_SCHEMAS]
)
async def test_invalid_action_schemas_point_into_schemata(
    world: World, label: str, schema: Any, pointer: str
) -> None:
    response = await world.api.client.post(
        "/v1/actions", json=_action_with(schema), headers=world.owner
    )
    document = assert_problem(response.status, response.content_type, await response.read(), 422)
    pointers = [error["pointer"] for error in document["errors"]]
    assert any(p == pointer or p.startswith(pointer + "/") for p in pointers), document


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def remote() -> AsyncIterator[Receiver]:
    receiver = Receiver()
    await receiver.start()
    yield receiver
    await receiver.stop()


async def test_remote_refs_are_refused_and_never_fetched(world: World, remote: Receiver) -> None:
    schemas = [
        {"$ref": f"{remote.url}/schema.json"},
        {"properties": {"a": {"$ref": f"{remote.url}/a.json#/x"}}},
        {"$id": f"{remote.url}/base/", "$ref": "other.json"},
        {"$schema": "https://json-schema.org/draft/2020-12/schema", "$ref": f"{remote.url}/x"},
        {"$schema": "http://json-schema.org/draft-07/schema#", "$ref": f"{remote.url}/y"},
        {"$dynamicRef": f"{remote.url}/dyn#meta"},
        {"allOf": [{"$ref": "https://example.invalid/never.json"}]},
    ]
    before = await world.log_rows()
    for schema in schemas:
        response = await world.api.client.post(
            "/v1/actions", json=_action_with(schema), headers=world.owner
        )
        body = await response.read()
        assert_problem(response.status, response.content_type, body, 422)
        assert any(e["pointer"].startswith("/schemata") for e in orjson.loads(body)["errors"])
    assert remote.received == []
    assert await world.log_rows() == before


async def test_catastrophic_regex_is_accepted_but_cannot_hang_validation(world: World) -> None:
    """A linear-time engine has no catastrophic patterns: they compile and match quickly."""
    action = world.unique("customers.v1.regex")
    schema = {
        "type": "object",
        "properties": {
            "a": {"type": "string", "pattern": "^(a+)+$"},
            "b": {"type": "string", "pattern": "^(a|a)*$"},
            "c": {"type": "string", "pattern": "^(.*a){20}$"},
        },
        "patternProperties": {"^(x+x+)+y$": {"type": "string"}},
    }
    response = await world.api.client.post(
        "/v1/actions",
        json={"action": action, "application": OWNER, "schemata": schema},
        headers=world.owner,
    )
    assert response.status == 201, await response.text()
    evil = "a" * 50_000 + "!"
    before = await world.log_rows()
    started = time.monotonic()
    async with asyncio.timeout(10):
        response = await world.api.client.post(
            "/v1/events",
            json={"action": action, "payload": {"a": evil, "b": evil, "c": evil, "x" * 5000: ""}},
            headers=world.owner,
        )
    elapsed = time.monotonic() - started
    document = assert_problem(response.status, response.content_type, await response.read(), 422)
    pointers = {e["pointer"] for e in document["errors"]}
    assert {"/payload/a", "/payload/b", "/payload/c"} <= pointers, document
    assert elapsed < 2.0, f"validation took {elapsed:.2f}s"
    assert await world.log_rows() == before


async def test_a_chunked_body_past_the_limit_gets_413(world: World) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"x": "'
        for _ in range(LIMIT // 65_536 + 2):
            yield b"a" * 65_536
        yield b'"}'

    before = await world.log_rows()
    response = await world.api.client.post(
        "/v1/events",
        data=chunks(),
        headers={**world.owner, "Content-Type": "application/json"},
    )
    assert_problem(response.status, response.content_type, await response.read(), 413)
    assert await world.log_rows() == before
    assert await world.healthy()


async def test_a_batch_of_bad_items_reports_each_and_writes_nothing(world: World) -> None:
    before = await world.log_rows()
    response = await world.api.client.post(
        "/v1/events/batch",
        json={
            "events": [
                {"action": "customers.v1.nope", "payload": {}},
                {"action": ACTION, "payload": {"email": "nope"}},
                {"action": ACTION, "payload": {}},
            ]
        },
        headers=world.owner,
    )
    assert response.status == 207
    results = (await response.json())["results"]
    assert [r["status"] for r in results] == [404, 422, 422]
    assert results[0]["errors"][0]["pointer"] == "/events/0/action"
    assert results[1]["errors"][0]["pointer"] == "/events/1/payload/email"
    assert results[2]["errors"][0]["pointer"] == "/events/2/payload/email"
    assert await world.log_rows() == before


async def test_a_body_just_under_the_limit_is_read(world: World) -> None:
    """The limit refuses what is past it, not what is near it: here the schema answers."""
    filler = "a" * (LIMIT - 200)
    response = await world.api.client.post(
        "/v1/events",
        json={"action": ACTION, "payload": {"email": "a@example.com"}, "deduper": filler},
        headers=world.owner,
    )
    document = assert_problem(response.status, response.content_type, await response.read(), 422)
    assert [e["pointer"] for e in document["errors"]] == ["/deduper"]


async def test_json_with_charset_parameter_is_accepted(world: World) -> None:
    response = await world.api.client.post(
        "/v1/events",
        data=orjson.dumps({"action": ACTION, "payload": {"email": "c@example.com"}}),
        headers={**world.owner, "Content-Type": "application/json; charset=utf-8"},
    )
    assert response.status == 201, await response.text()


async def test_free_text_fields_store_injection_strings_verbatim(world: World) -> None:
    """What passes validation is data: stored and returned byte for byte, never run."""
    for text in [*INJECTIONS, "unicode: café 名前 😀", 'quote " backslash \\ end']:
        action = world.unique("customers.v1.text")
        response = await world.api.client.post(
            "/v1/actions",
            json={
                "action": action,
                "application": OWNER,
                "schemata": {"description": text},
                "description": text,
            },
            headers=world.owner,
        )
        assert response.status == 201, await response.text()
        published = await world.api.client.post(
            "/v1/events",
            json={"action": action, "payload": {"text": text}, "deduper": text},
            headers=world.owner,
        )
        assert published.status == 201, await published.text()
        event_id = (await published.json())["id"]
        found = await (
            await world.api.client.get(f"/v1/actions/{action}", headers=world.owner)
        ).json()
        assert found["description"] == text
        assert found["schemata"] == {"description": text}
        event = await (
            await world.api.client.get(f"/v1/events/{event_id}", headers=world.owner)
        ).json()
        assert event["payload"] == {"text": text}
        assert event["deduper"] == text
        searched = await world.api.client.get(
            "/v1/actions", params={"q": text}, headers=world.owner
        )
        assert searched.status == 200
        assert action in [a["name"] for a in (await searched.json())["actions"]]
    async with world.api.runtime.pool.connection() as conn:
        cursor = await conn.execute("SELECT to_regclass('amebo.log') IS NOT NULL")
        assert await cursor.fetchone() == (True,)


async def test_raw_bytes_in_request_line_and_headers_never_cause_a_500(world: World) -> None:
    """What the test client cannot send: non-UTF-8 bytes straight on the socket."""
    server = world.api.client.server
    requests = [
        b"GET /v1/applications/\xff\xfe HTTP/1.1\r\n",
        b"GET /v1/actions?q=\xff HTTP/1.1\r\n",
        b"GET /v1/applications HTTP/1.1\r\nAuthorization: Bearer \xff\xfe\r\n",
        b"GET /v1/applications HTTP/1.1\r\nAuthorization: Basic \xff\r\n",
    ]
    for head in requests:
        reader, writer = await asyncio.open_connection(server.host, server.port)
        try:
            writer.write(head + b"Host: x\r\nConnection: close\r\n\r\n")
            await writer.drain()
            async with asyncio.timeout(5):
                answer = await reader.read()
        finally:
            writer.close()
            await writer.wait_closed()
        status = int(answer.split(b" ", 2)[1])
        assert 400 <= status < 500, (head, answer[:300])
    assert await world.healthy()


async def test_the_body_limit_is_the_configured_one(database_url: str) -> None:
    async with amebo_api(database_url, test_settings(max_body_bytes=2048), deliver=False) as api:
        headers = await api.register_application("customers")
        await api.register_action(headers, OWNER, ACTION)
        under = {"action": ACTION, "payload": {"pad": "a" * 1900}}
        response = await api.client.post("/v1/events", json=under, headers=headers)
        assert response.status == 201, await response.text()
        over = {"action": ACTION, "payload": {"pad": "a" * 2100}}
        response = await api.client.post("/v1/events", json=over, headers=headers)
        document = assert_problem(
            response.status, response.content_type, await response.read(), 413
        )
        assert "2048" in document["detail"]


async def test_a_wrong_method_names_the_allowed_ones(world: World) -> None:
    response = await world.api.client.put("/v1/subscriptions", headers=world.admin)
    assert_problem(response.status, response.content_type, await response.read(), 405)
    assert {m.strip() for m in response.headers["Allow"].split(",")} >= {"GET", "POST"}
