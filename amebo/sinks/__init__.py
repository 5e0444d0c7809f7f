"""Sinks carry an envelope to a subscriber: HTTP now, brokers later, behind one interface.

A sink knows nothing of the database: it is handed an envelope and a target and reports
what happened as a ``Result``.
"""

from __future__ import annotations

import dataclasses
from typing import Protocol

from amebo.delivery.envelope import Envelope


@dataclasses.dataclass(frozen=True)
class Result:
    ok: bool
    status_code: int | None = None
    error: str | None = None
    latency_ms: float = 0.0
    response: str | None = None
    retry_after: float | None = None
    gone: bool = False
    permanent: bool = False  # retrying cannot succeed (e.g. the outbound policy denies it)


class Sink(Protocol):
    async def send(self, target: str, envelope: Envelope) -> Result: ...

    async def close(self) -> None: ...
