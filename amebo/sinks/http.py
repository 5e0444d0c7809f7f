"""The HTTP sink: POST the envelope to the subscriber's handler URL.

2xx is success; anything else, 3xx included (redirects are not followed), is a failure.
``Retry-After`` on 429 and 503 is honoured; 410 Gone tells amebo to stop for good.
"""

from __future__ import annotations

import email.utils
import functools
import time

import aiohttp
import yarl

from amebo.delivery.envelope import Envelope
from amebo.sinks import Result
from amebo.sinks.policy import NetworkPolicy, PolicyResolver, PolicyViolation

RESPONSE_EXCERPT_BYTES = 1024
# How much more of a response body is read just to see it end; past this it is not checked.
RESPONSE_CHECKED_BYTES = 65_536


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
        total_connections: int,
        per_host: int,
        policy: NetworkPolicy | None = None,
    ) -> None:
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._limits = (total_connections, per_host)
        self._policy = policy or NetworkPolicy()
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            total, per_host = self._limits
            connector = aiohttp.TCPConnector(
                limit=total,
                limit_per_host=per_host,
                ttl_dns_cache=60,
                resolver=None if self._policy.open else PolicyResolver(self._policy),
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                timeout=self._timeout,
                skip_auto_headers=("User-Agent",),
                headers={"user-agent": "amebo"},
            )
        return self._session

    async def send(self, target: str, envelope: Envelope) -> Result:
        started = time.perf_counter()
        try:
            if not self._policy.open:
                self._policy.check_literal(_host(target))
            async with self._client().post(
                target, data=envelope.body, headers=envelope.headers, allow_redirects=False
            ) as response:
                excerpt = await response.content.read(RESPONSE_EXCERPT_BYTES)
                await _read_rest(response)
                status = response.status
                retry_after = (
                    parse_retry_after(response.headers.get("Retry-After"))
                    if status in (429, 503)
                    else None
                )
        except PolicyViolation as error:
            return Result(ok=False, error=str(error), latency_ms=_since(started), permanent=True)
        except TimeoutError:
            return Result(ok=False, error="timed out", latency_ms=_since(started))
        except (aiohttp.ClientError, OSError, ValueError) as error:
            denied = _policy_violation(error)
            if denied is not None:
                return Result(
                    ok=False, error=str(denied), latency_ms=_since(started), permanent=True
                )
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


async def _read_rest(response: aiohttp.ClientResponse) -> None:
    """An endpoint that dies mid-answer may not have done the work, whatever its status line
    said: a body cut short raises ``ClientPayloadError``, a failure to retry."""
    left = RESPONSE_CHECKED_BYTES
    while left > 0:
        chunk = await response.content.read(min(left, 16_384))
        if not chunk:
            return
        left -= len(chunk)


def _since(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 3)


def _describe(error: BaseException) -> str:
    text = str(error) or type(error).__name__
    return f"{type(error).__name__}: {text}"[:500]


def _policy_violation(error: BaseException) -> PolicyViolation | None:
    """aiohttp wraps resolver errors; find ours anywhere in the chain."""
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, PolicyViolation):
            return seen
        if isinstance(seen, aiohttp.ClientConnectorError) and isinstance(
            seen.os_error, PolicyViolation
        ):
            return seen.os_error
        seen = seen.__cause__ or seen.__context__
    return None


@functools.lru_cache(maxsize=4096)
def _host(target: str) -> str:
    return yarl.URL(target).host or ""
