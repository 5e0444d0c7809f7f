"""Logins: failures are rate-limited, secrets never reach the logs, and every comparison of a
secret takes the same time whatever it is compared with.

(Who may do what is tests/integration/test_api_auth.py.)
"""

from __future__ import annotations

import ast
import base64
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from amebo.config import Settings
from tests.faults.harness import ADMIN as PROCESS_ADMIN
from tests.faults.harness import ADMIN_TOKEN, AmeboProcess, Endpoint, processes, until
from tests.support.api import ADMIN, amebo_api, basic, test_settings

DEFAULTS = Settings()


async def _status(api: Any, headers: dict[str, str]) -> tuple[int, dict[str, str], Any]:
    response = await api.client.get("/v1/actions", headers=headers)
    body = await response.read()
    return response.status, dict(response.headers), orjson.loads(body) if body else None


async def test_failed_logins_per_name_then_429(database_url: str) -> None:
    limits = test_settings(
        login_failures_per_name=DEFAULTS.login_failures_per_name,
        login_failures_per_address=DEFAULTS.login_failures_per_address,
    )
    async with amebo_api(database_url, limits) as api:
        shop = await api.register_application("shop")
        idle = await api.register_application("idle")
        assert (await _status(api, shop))[0] == 200  # verified once: remembered
        for _ in range(DEFAULTS.login_failures_per_name):
            status, _, _ = await _status(api, basic("shop", "a-guess"))
            assert status == 401
        status, headers, problem = await _status(api, basic("shop", "one-guess-too-many"))
        assert status == 429
        assert headers["Content-Type"] == "application/problem+json"
        assert 1 <= int(headers["Retry-After"]) <= 60
        assert problem["errors"] == [
            {"pointer": "/headers/Authorization", "message": "too many failed attempts"}
        ]
        # The guesser cannot lock out a client this process already verified...
        assert (await _status(api, shop))[0] == 200
        # ...other names are not limited...
        assert (await _status(api, idle))[0] == 200
        # ...and the limit holds even for the right secret of a name under attack, until
        # the bucket refills: bcrypt never runs for it, and the guesser learns nothing.
        async with amebo_api(database_url, limits) as fresh_process:
            for _ in range(DEFAULTS.login_failures_per_name):
                await _status(fresh_process, basic("shop", "a-guess"))
            assert (await _status(fresh_process, shop))[0] == 429


async def test_failed_logins_per_address_then_429(database_url: str) -> None:
    settings = test_settings(login_failures_per_name=100, login_failures_per_address=5)
    async with amebo_api(database_url, settings) as api:
        for n in range(5):  # unknown names count too, each only once
            assert (await _status(api, basic(f"nobody{n}", "guess")))[0] == 401
        status, headers, _ = await _status(api, basic("yet-another-name", "guess"))
        assert status == 429
        assert int(headers["Retry-After"]) == 12  # a failure's worth comes back every 60/5 s


async def test_wrong_admin_tokens_count_against_the_address(database_url: str) -> None:
    settings = test_settings(login_failures_per_address=3)
    async with amebo_api(database_url, settings) as api:
        wrong = {"Authorization": "Bearer amebo_not-the-token"}
        assert [(await _status(api, wrong))[0] for _ in range(4)] == [401, 401, 401, 429]
        assert (await _status(api, ADMIN))[0] == 200  # the real token still works


# Logs --------------------------------------------------------------------------------------


async def test_no_secret_or_token_reaches_the_logs(database_url: str, tmp_path: Path) -> None:
    """A real `amebo serve` at debug level, driven through logins good, bad and limited,
    subscriptions, rotations and failing deliveries: its whole output holds no credential."""
    secret = "shop-secret-value-1f2e3d"
    wrong = "wrong-secret-value-9a8b7c"
    key = base64.urlsafe_b64encode(b"k" * 32).rstrip(b"=").decode()
    endpoint = Endpoint(lambda n: "500")
    await endpoint.start()
    credentials: list[str] = [ADMIN_TOKEN, secret, wrong, key]
    try:
        async with processes() as started, aiohttp.ClientSession() as session:
            serve = AmeboProcess(
                "serve",
                database_url,
                tmp_path,
                AMEBO_LOG_LEVEL="debug",
                AMEBO_LOGIN_FAILURES_PER_NAME="3",
            )
            started.append(serve)
            await serve.start()

            async def call(method: str, path: str, headers: dict[str, str], body: Any) -> Any:
                async with session.request(
                    method, serve.url + path, headers=headers, json=body
                ) as response:
                    return response.status, await response.json(content_type=None)

            shop = basic("shop", secret)
            await call(
                "POST",
                "/v1/applications",
                PROCESS_ADMIN,
                {"application": "shop", "secret": secret, "address": "http://shop"},
            )
            await call(
                "POST",
                "/v1/actions",
                shop,
                {"action": "shop.v1.sold", "application": "shop", "schemata": {"type": "object"}},
            )
            status, created = await call(
                "POST",
                "/v1/subscriptions",
                shop,
                {
                    "application": "shop",
                    "action": "shop.v1.sold",
                    "handler": f"{endpoint.url}/shop",
                    "encryption_key": key,
                },
            )
            assert status == 201, created
            credentials.append(created["secret"])
            status, rotated = await call(
                "POST", f"/v1/subscriptions/{created['id']}/rotate-secret", shop, {}
            )
            assert status == 200, rotated
            credentials.append(rotated["secret"])
            statuses = [(await call("GET", "/v1/actions", basic("shop", wrong), None))[0]]
            statuses += [(await call("GET", "/v1/actions", basic("shop", wrong), None))[0]]
            statuses += [
                (await call("GET", "/v1/actions", {"Authorization": f"Bearer {wrong}"}, None))[0]
            ]
            statuses += [(await call("GET", "/v1/actions", basic("shop", wrong), None))[0]]
            statuses += [(await call("GET", "/v1/actions", basic("shop", wrong), None))[0]]
            assert statuses == [401, 401, 401, 401, 429]
            assert (await call("GET", "/v1/actions", shop, None))[0] == 200
            await call("POST", "/v1/events", shop, {"action": "shop.v1.sold", "payload": {}})
            await until(lambda: endpoint.requests >= 2, 30, "two delivery attempts")
            await serve.stop()
            output = serve.logs()
    finally:
        await endpoint.stop()

    assert "amebo listening" in output
    for credential in credentials:
        encoded = base64.b64encode(f"shop:{credential}".encode()).decode()
        assert credential not in output, f"{credential[:6]}... appears in the log"
        assert encoded not in output
    assert "$2b$" not in output, "a bcrypt hash appears in the log"


# Constant time -----------------------------------------------------------------------------

AUDITED = ["amebo/auth.py", "amebo/api/auth.py", "amebo/delivery/signing.py", "amebo/registry.py"]
SENSITIVE = ("secret", "token", "hash", "signature", "digest", "password", "key")


def _names(node: ast.AST) -> list[str]:
    found = []
    for part in ast.walk(node):
        if isinstance(part, ast.Name):
            found.append(part.id)
        elif isinstance(part, ast.Attribute):
            found.append(part.attr)
        elif isinstance(part, ast.Subscript) and isinstance(part.slice, ast.Constant):
            found.append(str(part.slice.value))
    return found


def test_secrets_are_never_compared_with_equality() -> None:
    """``==`` stops at the first differing byte, so its time tells a guesser how much of a
    guess was right. Every comparison of a secret, token, hash or signature in amebo goes
    through ``hmac.compare_digest`` or bcrypt instead."""
    root = Path(__file__).resolve().parents[2]
    offenders = []
    for relative in AUDITED:
        tree = ast.parse((root / relative).read_text())
        for node in ast.walk(tree):
            if not isinstance(node, ast.Compare):
                continue
            if not any(isinstance(op, (ast.Eq, ast.NotEq)) for op in node.ops):
                continue
            operands = [node.left, *node.comparators]
            if any(isinstance(o, ast.Constant) and o.value is None for o in operands):
                continue
            named = [n for o in operands for n in _names(o)]
            if any(word in n.lower() for n in named for word in SENSITIVE):
                offenders.append(f"{relative}:{node.lineno}")
    assert offenders == []
    source = (root / "amebo/auth.py").read_text()
    assert source.count("hmac.compare_digest") >= 2
