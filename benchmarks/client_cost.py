"""CPU per delivery request: aiohttp's client (as amebo used it until 2026-12-01) against
amebo's own HTTP/1.1 client (``amebo/sinks/http1.py``, ADR 0007).

``python -m benchmarks.client_cost [REQUESTS] [CONCURRENCY]`` starts the harness endpoint
in its own process, sends the same signed-envelope-sized POSTs with each client in turn
(twice each, alternating, on uvloop as ``amebo serve`` runs) and prints requests/s and this
process's CPU per request, with the machine it ran on.
"""

from __future__ import annotations

import asyncio
import resource
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from tempfile import mkdtemp

import aiohttp
import uvloop
import yarl

from amebo.sinks.http1 import Http1Client
from benchmarks import machine
from benchmarks.endpoint import endpoint

BODY = (
    b'{"id":"0190f3c2-0000-7000-8000-000000000001","type":"bench.v1.tick",'
    b'"application":"bench","timestamp":"2026-12-01T00:00:00+00:00",'
    b'"data":{"seq":1,"customer_id":1,"email":"user1@example.com","pad":"' + b"x" * 64 + b'"}}'
)
HEADERS = {
    "content-type": "application/json",
    "webhook-id": "0190f3c2-0000-8000-8000-000000000001",
    "webhook-timestamp": "1764547200",
    "webhook-signature": "v1,K5oZfzN95Z9UVu1EsfQmfVNQhnkZ2pj9o9NDN/H/pI4=",
    "amebo-event-id": "0190f3c2-0000-7000-8000-000000000001",
    "amebo-action": "bench.v1.tick",
    "amebo-attempt": "1",
}


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def _measure(
    name: str, post: Callable[[], Awaitable[int]], requests: int, concurrency: int
) -> None:
    slots = asyncio.Semaphore(concurrency)

    async def one() -> int:
        async with slots:
            return await post()

    await asyncio.gather(*(one() for _ in range(500)))  # connections open, caches warm
    cpu, started = _cpu(), time.perf_counter()
    statuses = await asyncio.gather(*(one() for _ in range(requests)))
    wall, used = time.perf_counter() - started, _cpu() - cpu
    assert set(statuses) == {204}, set(statuses)
    rate, cost = requests / wall, 1e6 * used / requests
    print(f"{name:>8}: {rate:8,.0f} requests/s, {cost:5.0f} us CPU each")


async def _aiohttp(url: str, requests: int, concurrency: int) -> None:
    async with aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=256, limit_per_host=concurrency),
        timeout=aiohttp.ClientTimeout(total=15),
        skip_auto_headers=("User-Agent",),
        headers={"user-agent": "amebo"},
    ) as session:

        async def post() -> int:
            async with session.post(
                url, data=BODY, headers=HEADERS, allow_redirects=False
            ) as response:
                await response.content.read(1024)
                await response.content.read(65_536)
                return response.status

        await _measure("aiohttp", post, requests, concurrency)


async def _amebo(url: str, requests: int, concurrency: int) -> None:
    client = Http1Client(timeout=15, per_origin=concurrency)
    target = yarl.URL(url)

    async def post() -> int:
        return (await client.post(target, BODY, HEADERS)).status

    await _measure("amebo", post, requests, concurrency)
    await client.close()


def main() -> None:
    requests = int(sys.argv[1]) if len(sys.argv) > 1 else 20_000
    concurrency = int(sys.argv[2]) if len(sys.argv) > 2 else 64
    described = machine.describe()
    print(f"machine: {described}")
    print(f"{requests:,} POSTs at concurrency {concurrency} to the harness endpoint")
    with endpoint(Path(mkdtemp(prefix="amebo-client-cost-"))) as receiver:
        url = receiver.url("/hooks/0")
        for _ in range(2):
            uvloop.run(_aiohttp(url, requests, concurrency))
            uvloop.run(_amebo(url, requests, concurrency))


if __name__ == "__main__":
    main()
