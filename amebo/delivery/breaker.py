"""The circuit breaker: endpoints that keep failing are held back, probed, then restored.

State lives in ``amebo.endpoint_health`` so every worker process sees the same circuit. It
is operational state, not a fact: it is updated in the transaction that records outcomes,
and a rebuild of the projections leaves it alone.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

import psycopg

from amebo.db.sql import query


@dataclasses.dataclass(frozen=True)
class BreakerConfig:
    threshold: int = 5
    cooldown_min: float = 5.0
    cooldown_max: float = 600.0
    deactivate_after: float = 5 * 86_400.0


@dataclasses.dataclass(frozen=True)
class Failing:
    subscription_id: uuid.UUID
    failing_for: float


async def record_health(
    conn: psycopg.AsyncConnection[Any],
    config: BreakerConfig,
    outcomes: Iterable[tuple[uuid.UUID, bool]],
) -> list[Failing]:
    """Apply (subscription, succeeded) pairs; returns endpoints failing past the deactivation
    threshold, for the caller to deactivate."""
    succeeded: dict[uuid.UUID, bool] = {}
    failures: dict[uuid.UUID, int] = defaultdict(int)
    for subscription_id, ok in outcomes:
        succeeded[subscription_id] = succeeded.get(subscription_id, False) or ok
        if not ok:
            failures[subscription_id] += 1
    if not succeeded:
        return []
    ids = sorted(succeeded)
    cursor = await conn.execute(
        query("endpoint_health_record"),
        {
            "subscription_ids": ids,
            "succeeded": [succeeded[i] for i in ids],
            "failures": [failures[i] for i in ids],
            "threshold": config.threshold,
            "cooldown_min": config.cooldown_min,
            "cooldown_max": config.cooldown_max,
        },
    )
    rows = await cursor.fetchall()
    held = [(sid, until, cooldown) for sid, until, cooldown, _ in rows if until is not None]
    if held:
        await conn.execute(
            query("endpoint_queue_hold"),
            {
                "subscription_ids": [sid for sid, _, _ in held],
                "open_until": [until for _, until, _ in held],
                "cooldown": [cooldown for _, _, cooldown in held],
            },
        )
    return [
        Failing(sid, failing_for)
        for sid, _, _, failing_for in rows
        if failing_for >= config.deactivate_after
    ]
