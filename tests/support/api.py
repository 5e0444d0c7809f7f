"""An in-process amebo (the same runtime ``serve`` builds) behind aiohttp's test server."""

from __future__ import annotations

import base64
import contextlib
import dataclasses
from collections.abc import AsyncIterator
from typing import Any

from aiohttp.test_utils import TestClient, TestServer

from amebo.config import Settings
from amebo.runtime import Runtime, running

ADMIN_TOKEN = "test-admin-token-0123456789"


def basic(application: str, secret: str) -> dict[str, str]:
    token = base64.b64encode(f"{application}:{secret}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


@dataclasses.dataclass
class Api:
    client: TestClient[Any, Any]
    runtime: Runtime

    async def register_application(self, name: str, secret: str | None = None) -> dict[str, str]:
        secret = secret or f"{name}-secret-value"
        response = await self.client.post(
            "/v1/applications",
            json={"application": name, "secret": secret, "address": f"http://{name}.local"},
            headers=ADMIN,
        )
        assert response.status == 201, await response.text()
        return basic(name, secret)

    async def register_action(
        self, auth: dict[str, str], application: str, action: str, schemata: Any = None
    ) -> None:
        schemata = {"type": "object"} if schemata is None else schemata
        response = await self.client.post(
            "/v1/actions",
            json={"action": action, "application": application, "schemata": schemata},
            headers=auth,
        )
        assert response.status == 201, await response.text()

    async def subscribe(
        self, auth: dict[str, str], application: str, action: str, handler: str, **extra: Any
    ) -> dict[str, Any]:
        response = await self.client.post(
            "/v1/subscriptions",
            json={"application": application, "action": action, "handler": handler, **extra},
            headers=auth,
        )
        assert response.status == 201, await response.text()
        created: dict[str, Any] = await response.json()
        return created

    async def publish(
        self, auth: dict[str, str], action: str, payload: Any, deduper: str | None = None
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"action": action, "payload": payload}
        if deduper is not None:
            body["deduper"] = deduper
        response = await self.client.post("/v1/events", json=body, headers=auth)
        assert response.status in (200, 201), await response.text()
        result: dict[str, Any] = await response.json()
        return result


def test_settings(**changes: Any) -> Settings:
    base = Settings(
        admin_token=ADMIN_TOKEN,
        retry_schedule=(0.2, 0.4),
        poll_interval=0.5,
        delivery_timeout=5.0,
        # Suites here fail logins on purpose hundreds of times from one address; the tests of
        # the limit itself (tests/integration/test_login_security.py) set their own.
        login_failures_per_name=100_000,
        login_failures_per_address=100_000,
    )
    return base.replace(**changes)


test_settings.__test__ = False  # type: ignore[attr-defined]  # a helper, not a test


@contextlib.asynccontextmanager
async def amebo_api(
    database_url: str, settings: Settings | None = None, deliver: bool = True
) -> AsyncIterator[Api]:
    async with running(settings or test_settings(), database_url, deliver=deliver) as runtime:
        client: TestClient[Any, Any] = TestClient(TestServer(runtime.app))
        await client.start_server()
        try:
            yield Api(client, runtime)
        finally:
            await client.close()
