"""Failed logins are limited per application name and per client address.

Each name and each address has a bucket of ``limit`` failures that refills evenly over a
minute. While a bucket is empty, a login that would need bcrypt is answered 429 with a
Retry-After, before bcrypt runs: a guesser gets a few tries a minute and cannot spend
amebo's CPU. Secrets this process has already verified still pass (see ``amebo.api.auth``),
so flooding an application's name with wrong secrets does not lock out its running clients.

Buckets live in the process: with several ``serve`` processes the limit applies to each.
The client address is the TCP peer; ``X-Forwarded-For`` is not trusted.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable

from amebo.errors import AmeboError, Detail

WINDOW = 60.0


class TooManyFailedLogins(AmeboError):
    title = "Too many failed logins"

    def __init__(self, retry_after: int) -> None:
        super().__init__(
            f"too many failed logins; retry in {retry_after} seconds",
            [Detail("/headers/Authorization", "too many failed attempts")],
        )
        self.retry_after = retry_after


@dataclasses.dataclass
class _Bucket:
    tokens: float
    updated: float


class LoginLimits:
    def __init__(
        self,
        per_name: int = 10,
        per_address: int = 30,
        capacity: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._limits = {"name": per_name, "address": per_address}
        self._capacity = capacity
        self._clock = clock
        self._buckets: dict[tuple[str, str], _Bucket] = {}

    def check(self, name: str | None, address: str | None) -> None:
        """Raises ``TooManyFailedLogins`` if the name's or the address's bucket is empty."""
        now = self._clock()
        keys = [(kind, value) for kind, value in (("name", name), ("address", address)) if value]
        longest = max((self._wait(key, now) for key in keys), default=0.0)
        if longest > 0:
            raise TooManyFailedLogins(max(1, math.ceil(longest)))

    def failed(self, name: str | None, address: str | None) -> None:
        now = self._clock()
        for kind, value in (("name", name), ("address", address)):
            if not value:
                continue
            key = (kind, value)
            bucket = self._refilled(key, now)
            bucket.tokens = max(bucket.tokens - 1.0, 0.0)
            # Most recently failed last, so eviction drops whoever failed longest ago.
            self._buckets.pop(key, None)
            self._buckets[key] = bucket
        while len(self._buckets) > self._capacity:
            del self._buckets[next(iter(self._buckets))]

    def _rate(self, kind: str) -> float:
        return self._limits[kind] / WINDOW

    def _refilled(self, key: tuple[str, str], now: float) -> _Bucket:
        limit = float(self._limits[key[0]])
        bucket = self._buckets.get(key)
        if bucket is None:
            return _Bucket(limit, now)
        bucket.tokens = min(limit, bucket.tokens + (now - bucket.updated) * self._rate(key[0]))
        bucket.updated = now
        return bucket

    def _wait(self, key: tuple[str, str], now: float) -> float:
        """Seconds until the bucket holds a whole failure again; 0 if it does now."""
        if key not in self._buckets:
            return 0.0
        bucket = self._refilled(key, now)
        if bucket.tokens >= 1.0:
            return 0.0
        return (1.0 - bucket.tokens) / self._rate(key[0])
