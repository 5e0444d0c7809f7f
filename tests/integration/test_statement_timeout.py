"""amebo's own statement timeout: a publish stuck behind a lock gets a 503, not a hang."""

from __future__ import annotations

from typing import Any

import psycopg

from tests.support.api import amebo_api, test_settings


async def test_a_publish_waiting_on_a_locked_log_gets_a_503_after_the_timeout(
    database_url: str,
) -> None:
    async with amebo_api(database_url, test_settings(statement_timeout=0.3)) as api:
        auth = await api.register_application("orders")
        await api.register_action(auth, "orders", "orders.v1.placed")
        async with await psycopg.AsyncConnection.connect(database_url) as blocker:
            await blocker.execute("LOCK TABLE amebo.log IN ACCESS EXCLUSIVE MODE")
            body: dict[str, Any] = {"action": "orders.v1.placed", "payload": {}}
            response = await api.client.post("/v1/events", json=body, headers=auth)
            assert response.status == 503, await response.text()
            assert response.headers["Retry-After"] == "2"
            problem = await response.json()
            assert problem["detail"].startswith("the database took too long")
            await blocker.rollback()
        # The lock gone, the same request is accepted.
        accepted = await api.publish(auth, "orders.v1.placed", {})
        assert accepted["id"]
