"""The HTTP sink: POST the envelope to the subscriber's handler URL.

2xx is success; anything else, 3xx included (redirects are not followed), is a failure.
``Retry-After`` on 429 and 503 is honoured; 410 Gone tells amebo to stop for good.
"""

from __future__ import annotations

import email.utils
import functools
import time

import yarl

from amebo.delivery.envelope import Envelope
from amebo.sinks import Result
from amebo.sinks.http1 import Http1Client
from amebo.sinks.policy import NetworkPolicy, PolicyViolation


def parse_retry_after(value: str | None) -> float | None:
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(when.timestamp() - time.time(), 0.0)


class HttpSink:
    def __init__(
        self,
        timeout: float,
        per_host: int,
        policy: NetworkPolicy | None = None,
    ) -> None:
        self._client = Http1Client(timeout, per_host, policy)

    async def send(self, target: str, envelope: Envelope) -> Result:
        started = time.perf_counter()
        try:
            response = await self._client.post(_url(target), envelope.body, envelope.headers)
        except PolicyViolation as error:
            return Result(ok=False, error=str(error), latency_ms=_since(started), permanent=True)
        except TimeoutError:
            return Result(ok=False, error="timed out", latency_ms=_since(started))
        except (OSError, ValueError) as error:
            return Result(ok=False, error=_describe(error), latency_ms=_since(started))
        status = response.status
        return Result(
            ok=200 <= status < 300,
            status_code=status,
            latency_ms=_since(started),
            response=response.excerpt.decode("utf-8", "replace"),
            retry_after=parse_retry_after(response.retry_after) if status in (429, 503) else None,
            gone=status == 410,
        )

    async def close(self) -> None:
        await self._client.close()


def _since(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 3)


def _describe(error: BaseException) -> str:
    text = str(error) or type(error).__name__
    return f"{type(error).__name__}: {text}"[:500]


@functools.lru_cache(maxsize=4096)
def _url(target: str) -> yarl.URL:
    return yarl.URL(target)
