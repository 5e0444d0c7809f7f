"""The HTTP sink: POST the envelope to the subscriber's handler URL.

2xx is success; anything else, 3xx included (redirects are not followed), is a failure.
``Retry-After`` on 429 and 503 is honoured; 410 Gone tells amebo to stop for good.
"""

from __future__ import annotations

import email.utils
import time

import aiohttp

from amebo.delivery.envelope import Envelope
from amebo.sinks import Result

RESPONSE_EXCERPT_BYTES = 1024


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
    def __init__(self, timeout: float, total_connections: int, per_host: int) -> None:
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._connector_args = {"limit": total_connections, "limit_per_host": per_host}
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(**self._connector_args, ttl_dns_cache=60),  # type: ignore[arg-type]
                timeout=self._timeout,
                skip_auto_headers=("User-Agent",),
                headers={"user-agent": "amebo"},
            )
        return self._session

    async def send(self, target: str, envelope: Envelope) -> Result:
        started = time.perf_counter()
        try:
            async with self._client().post(
                target, data=envelope.body, headers=envelope.headers, allow_redirects=False
            ) as response:
                excerpt = await response.content.read(RESPONSE_EXCERPT_BYTES)
                status = response.status
                retry_after = (
                    parse_retry_after(response.headers.get("Retry-After"))
                    if status in (429, 503)
                    else None
                )
        except TimeoutError:
            return Result(ok=False, error="timed out", latency_ms=_since(started))
        except (aiohttp.ClientError, OSError, ValueError) as error:
            return Result(ok=False, error=_describe(error), latency_ms=_since(started))
        return Result(
            ok=200 <= status < 300,
            status_code=status,
            latency_ms=_since(started),
            response=excerpt.decode("utf-8", "replace"),
            retry_after=retry_after,
            gone=status == 410,
        )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def _since(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 3)


def _describe(error: BaseException) -> str:
    text = str(error) or type(error).__name__
    return f"{type(error).__name__}: {text}"[:500]
