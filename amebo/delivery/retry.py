"""When to try a failed delivery again, and when to stop."""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Sequence

MAX_RETRY_AFTER = 86_400.0


@dataclasses.dataclass(frozen=True)
class RetryPolicy:
    """``schedule[n]`` is the delay before retry n+1; past its end the last delay repeats.
    Jitter spreads retries of many deliveries that failed together."""

    schedule: Sequence[float]
    jitter: float = 0.1

    def delay(self, retry: int, retry_after: float | None = None) -> float:
        """Seconds to wait before retry number ``retry`` (1 for the first retry)."""
        if retry_after is not None:
            return min(max(retry_after, 0.0), MAX_RETRY_AFTER)
        base = self.schedule[min(retry, len(self.schedule)) - 1]
        if self.jitter <= 0 or base == 0:
            return base
        return base * random.uniform(1 - self.jitter, 1 + self.jitter)
