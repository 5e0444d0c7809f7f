"""procrastinate doing amebo's delivery job: each job POSTs its payload to the endpoint.

The worker runs as procrastinate users run it: ``procrastinate --app
benchmarks.peers.procrastinate_app.app worker``. ``python -m benchmarks.peers.procrastinate_app
defer COUNT URL`` applies the schema and defers the backlog in batches.
"""

from __future__ import annotations

import asyncio
import os
import sys
from typing import Any

import aiohttp
from procrastinate import App, PsycopgConnector

app = App(connector=PsycopgConnector(conninfo=os.environ.get("BENCH_PROCRASTINATE_URL", "")))
_session: aiohttp.ClientSession | None = None


@app.task(name="deliver")
async def deliver(url: str, payload: dict[str, Any]) -> None:
    global _session
    if _session is None:
        _session = aiohttp.ClientSession()
    async with _session.post(url, json=payload) as response:
        if response.status >= 300:
            raise RuntimeError(f"endpoint answered {response.status}")


async def defer(count: int, url: str) -> None:
    async with app.open_async():
        await app.schema_manager.apply_schema_async()
        for first in range(0, count, 1000):
            jobs = [
                {
                    "url": url,
                    "payload": {
                        "seq": seq,
                        "customer_id": seq,
                        "email": f"user{seq}@example.com",
                        "pad": "x" * 64,
                    },
                }
                for seq in range(first, min(first + 1000, count))
            ]
            await deliver.batch_defer_async(*jobs)


if __name__ == "__main__":
    asyncio.run(defer(int(sys.argv[2]), sys.argv[3]))
