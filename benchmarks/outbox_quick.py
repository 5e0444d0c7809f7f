"""Outbox throughput and relay lag, end to end: ``python -m benchmarks.outbox_quick``.

For each producer transaction size (1 and 100 rows by default) it creates a fresh database,
starts ``amebo serve`` (API, relay and delivery worker) as a subprocess, subscribes a local
endpoint, and has a few producer connections commit ROWS outbox rows. It reports:

- producer commits per second (rows/s written to the outbox);
- rows/s relayed and delivered: ROWS over the time from the first row written to the last
  webhook received;
- relay lag per row, p50/p99: from the producer's commit (the client's clock after COMMIT
  returns) to the start of the relay transaction that published it (the event's
  ``published_at``); same host, so one clock;
- end-to-end lag per row, p50/p99: from the producer's commit to the webhook's arrival.

The endpoint is a minimal HTTP/1.1 responder in this process (204 to everything), so the
measured costs are amebo's and PostgreSQL's, not the endpoint's. Self-contained on purpose:
the benchmark harness in ``benchmarks/`` can fold it in.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import dataclasses
import json
import os
import signal
import socket
import statistics
import sys
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any

import aiohttp
import psycopg
from psycopg.conninfo import make_conninfo
from psycopg.types.json import Jsonb

from amebo.db.migrations import migrate
from amebo.ids import uuid7

SERVER = os.environ.get("AMEBO_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
TOKEN = "bench-admin-token-0123456789"
ACTION = "orders.v1.placed"
SCHEMA = {
    "type": "object",
    "properties": {"order_id": {"type": "integer"}, "total": {"type": "number"}},
    "required": ["order_id", "total"],
}
DEADLINE = 600.0  # seconds any one run may take before it is called failed


class Endpoint(asyncio.Protocol):
    """Answers 204 to each request and notes when each event id arrived."""

    arrivals: dict[str, float]
    done: asyncio.Event
    expected: int

    def __init__(self, arrivals: dict[str, float], done: asyncio.Event, expected: int) -> None:
        self.arrivals, self.done, self.expected = arrivals, done, expected
        self._buffer = bytearray()
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        while True:
            end = self._buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(self._buffer[:end]).lower()
            length = _header(head, b"content-length")
            total = end + 4 + int(length or 0)
            if len(self._buffer) < total:
                return
            del self._buffer[:total]
            event_id = _header(head, b"amebo-event-id")
            if event_id is not None:
                self.arrivals.setdefault(event_id.decode(), time.time())
                if len(self.arrivals) >= self.expected:
                    self.done.set()
            assert self._transport is not None
            self._transport.write(b"HTTP/1.1 204 No Content\r\n\r\n")


def _header(head: bytes, name: bytes) -> bytes | None:
    start = head.find(b"\r\n" + name + b":")
    if start < 0:
        return None
    start += len(name) + 3
    stop = head.find(b"\r\n", start)
    return head[start : stop if stop >= 0 else None].strip()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextlib.contextmanager
def fresh_database(tag: str) -> Any:
    name = f"amebo_bench_outbox_{os.getpid()}_{tag}"
    admin = make_conninfo(SERVER, dbname="postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    url = make_conninfo(SERVER, dbname=name)
    migrate(url)
    try:
        yield url
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextlib.asynccontextmanager
async def amebo_serve(url: str, port: int) -> AsyncIterator[str]:
    env = {
        **os.environ,
        "AMEBO_DATABASE_URL": url,
        "AMEBO_ADDRESS": f"127.0.0.1:{port}",
        "AMEBO_ADMIN_TOKEN": TOKEN,
        "AMEBO_LOG_LEVEL": "warning",
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "amebo", "serve", env=env, stdout=asyncio.subprocess.DEVNULL
    )
    base = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as session:
            deadline = time.monotonic() + 30
            while True:
                with contextlib.suppress(aiohttp.ClientError):
                    async with session.get(base + "/health") as response:
                        if response.status == 200:
                            break
                if time.monotonic() > deadline or process.returncode is not None:
                    raise RuntimeError("amebo serve did not come up")
                await asyncio.sleep(0.1)  # polling a starting process, with a deadline
        yield base
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), 20)
        except TimeoutError:
            process.kill()
            await process.wait()


async def register(base: str, handler: str) -> None:
    admin = {"Authorization": f"Bearer {TOKEN}"}
    app = {"Authorization": "Basic " + base64.b64encode(b"shop:shop-secret-value").decode()}
    async with aiohttp.ClientSession() as session:
        for path, body, auth in (
            (
                "/v1/applications",
                {"application": "shop", "secret": "shop-secret-value", "address": handler},
                admin,
            ),
            ("/v1/actions", {"action": ACTION, "application": "shop", "schemata": SCHEMA}, app),
            (
                "/v1/subscriptions",
                {"application": "shop", "action": ACTION, "handler": handler},
                app,
            ),
        ):
            async with session.post(base + path, json=body, headers=auth) as r:
                if r.status != 201:
                    raise RuntimeError(f"{path}: {r.status} {await r.text()}")


async def produce(url: str, rows: int, size: int, commits: dict[str, float]) -> None:
    """One producer connection: ``rows`` outbox rows in transactions of ``size``."""
    insert = "INSERT INTO amebo.outbox (id, action, payload) VALUES (%s, %s, %s)"
    async with await psycopg.AsyncConnection.connect(url) as conn:
        written = 0
        while written < rows:
            ids = [str(uuid7()) for _ in range(min(size, rows - written))]
            params = [
                (i, ACTION, Jsonb({"order_id": written + n, "total": 9.5}))
                for n, i in enumerate(ids)
            ]
            async with conn.transaction(), conn.cursor() as cursor:
                if len(params) == 1:
                    await cursor.execute(insert, params[0])
                else:
                    await cursor.executemany(insert, params)
            committed = time.time()
            for event_id in ids:
                commits[event_id] = committed
            written += len(ids)


def _percentiles(values: Sequence[float]) -> tuple[float, float]:
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return cuts[49], cuts[98]


@dataclasses.dataclass(frozen=True)
class Result:
    scenario: str  # "live": amebo runs while producers write; "backlog": it starts after
    transaction_rows: int
    rows: int
    producers: int
    written_per_s: float
    relayed_per_s: float
    relayed_delivered_per_s: float
    relay_lag_ms_p50: float | None
    relay_lag_ms_p99: float | None
    end_to_end_ms_p50: float | None
    end_to_end_ms_p99: float | None


async def _write(url: str, rows: int, size: int, producers: int) -> tuple[dict[str, float], float]:
    """Commit times by event id, and the rate at which the producers wrote."""
    commits: dict[str, float] = {}
    share = [rows // producers + (i < rows % producers) for i in range(producers)]
    started = time.time()
    await asyncio.wait_for(
        asyncio.gather(*(produce(url, n, size, commits) for n in share)), DEADLINE
    )
    return commits, rows / (time.time() - started)


async def _published(url: str) -> dict[str, float]:
    async with await psycopg.AsyncConnection.connect(url) as conn:
        cursor = await conn.execute(
            "SELECT id::text, extract(epoch FROM published_at) FROM amebo.events"
        )
        return {event_id: float(at) for event_id, at in await cursor.fetchall()}


async def run(rows: int, size: int, producers: int, backlog: bool) -> Result:
    """Live: producers write while amebo relays. Backlog: producers write while amebo is
    down, then amebo starts and drains the outbox (relay lag is then meaningless)."""
    arrivals: dict[str, float] = {}
    done = asyncio.Event()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: Endpoint(arrivals, done, rows), "127.0.0.1", 0, reuse_address=True
    )
    handler = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/orders"
    try:
        with fresh_database(f"{'backlog' if backlog else 'live'}{size}") as url:
            async with amebo_serve(url, _free_port()) as base:
                await register(base, handler)
                started = time.time()
                if not backlog:
                    commits, written_per_s = await _write(url, rows, size, producers)
                    await asyncio.wait_for(done.wait(), DEADLINE)
            if backlog:
                commits, written_per_s = await _write(url, rows, size, producers)
                async with amebo_serve(url, _free_port()):
                    await asyncio.wait_for(done.wait(), DEADLINE)
            published = await _published(url)
            if backlog:  # the clock starts with the first batch, not the process
                started = min(published.values())
    finally:
        server.close()
        await server.wait_closed()
    assert set(published) == set(commits) == set(arrivals), "an event is missing or extra"
    relay = [(published[i] - commits[i]) * 1000 for i in commits]
    end_to_end = [(arrivals[i] - commits[i]) * 1000 for i in commits]
    lags: list[float | None] = [None] * 4
    if not backlog:
        lags = [*_percentiles(relay), *_percentiles(end_to_end)]
    return Result(
        "backlog" if backlog else "live",
        size,
        rows,
        producers,
        written_per_s=written_per_s,
        relayed_per_s=rows / (max(published.values()) - started),
        relayed_delivered_per_s=rows / (max(arrivals.values()) - started),
        relay_lag_ms_p50=lags[0],
        relay_lag_ms_p99=lags[1],
        end_to_end_ms_p50=lags[2],
        end_to_end_ms_p99=lags[3],
    )


def _ms(p50: float | None, p99: float | None) -> str:
    return "-" if p50 is None or p99 is None else f"{p50:.0f} / {p99:.0f}"


def _table(results: Sequence[Result]) -> str:
    lines = [
        "| scenario | rows/tx | producers | written rows/s | relayed rows/s "
        "| relayed+delivered rows/s | relay lag p50 / p99 (ms) | end-to-end p50 / p99 (ms) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(
            f"| {r.scenario} | {r.transaction_rows} | {r.producers} | {r.written_per_s:,.0f} "
            f"| {r.relayed_per_s:,.0f} | {r.relayed_delivered_per_s:,.0f} "
            f"| {_ms(r.relay_lag_ms_p50, r.relay_lag_ms_p99)} "
            f"| {_ms(r.end_to_end_ms_p50, r.end_to_end_ms_p99)} |"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--sizes", default="1,100", help="rows per producer transaction")
    parser.add_argument("--producers", type=int, default=4)
    parser.add_argument(
        "--backlog", action="store_true", help="also drain a backlog written while amebo is down"
    )
    parser.add_argument("--json", metavar="PATH", help="also write the results here")
    args = parser.parse_args(argv)
    results = []
    for backlog in (False, True) if args.backlog else (False,):
        for size in (int(s) for s in args.sizes.split(",")):
            result = asyncio.run(run(args.rows, size, args.producers, backlog))
            print(json.dumps(dataclasses.asdict(result)), flush=True)
            results.append(result)
    print(_table(results))
    if args.json:
        with open(args.json, "w") as out:
            json.dump([dataclasses.asdict(r) for r in results], out, indent=2)


if __name__ == "__main__":
    main()
