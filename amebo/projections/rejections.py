"""The rejections read model: outbox rows the relay refused, with the reasons why.

A rejected row never becomes an event, so it has no deliveries; ``GET /v1/events/{id}``
answers with this row when no event has the id.
"""

from __future__ import annotations

from collections.abc import Mapping

TABLES = ("amebo.rejections",)

HANDLERS: Mapping[str, tuple[str, ...]] = {
    "event.rejected": ("apply_event_rejected",),
}
