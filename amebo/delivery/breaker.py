"""The circuit breaker: endpoints that keep failing are held back, probed, then restored.

State lives in ``amebo.endpoint_health`` so every worker process sees the same circuit. It
is operational state, not a fact: ``amebo.record_outcomes`` (sql/migrations/0013) updates it
in the statement that records a batch of outcomes, and a rebuild of the projections leaves
it alone. This module holds the breaker's settings.
"""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class BreakerConfig:
    threshold: int = 5
    cooldown_min: float = 5.0
    cooldown_max: float = 600.0
    deactivate_after: float = 5 * 86_400.0
