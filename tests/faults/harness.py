"""What the fault tests share: amebo run as real processes, an endpoint that misbehaves on
cue, a publisher that retries like a careful client, and a tally of what arrived.

Fast mode (``make test``) publishes a few hundred events per fault; ``AMEBO_FAULTS=full``
(``make test-faults``) publishes thousands and injects each fault more often.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import psycopg
from aiohttp import web

from amebo import projections
from amebo.projections.rebuild import rebuild
from tests.support.api import basic

FULL = os.environ.get("AMEBO_FAULTS", "").lower() == "full"
ADMIN_TOKEN = "fault-admin-token-0123456789abcdef"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
ACTION = "orders.v1.placed"

# Short timings so that faults resolve within seconds; the lease must outlast a send by more
# than a second (Settings refuses anything else).
FAST_DELIVERY = {
    "AMEBO_LEASE_SECONDS": "3",
    "AMEBO_DELIVERY_TIMEOUT": "1",
    "AMEBO_POLL_INTERVAL": "0.5",
    "AMEBO_RETRY_SCHEDULE": "0.1,0.3,0.6",
    "AMEBO_MAX_RETRIES": "100",
    "AMEBO_BREAKER_COOLDOWN": "0.3",
    "AMEBO_BREAKER_COOLDOWN_MAX": "1",
    "AMEBO_DELIVERY_CONCURRENCY": "64",
    "AMEBO_ENDPOINT_CONCURRENCY": "16",
}


def scale(fast: int, full: int) -> int:
    return full if FULL else fast


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


async def until(predicate: Callable[[], Any], timeout: float, what: str) -> None:
    """Poll ``predicate`` (sync or async) with a deadline; the message says what never came."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout}s")
        await asyncio.sleep(0.05)


# amebo as a process ----------------------------------------------------------------------


class AmeboProcess:
    """``amebo serve`` or ``amebo worker`` with its output in a file, started and killed at will."""

    def __init__(
        self, command: str, database_url: str, folder: Path, port: int | None = None, **env: str
    ) -> None:
        self.command = command
        self.port = port or free_port()
        self.log_path = folder / f"amebo-{command}-{self.port}.log"
        self.env = {
            **os.environ,
            **FAST_DELIVERY,
            "AMEBO_DATABASE_URL": database_url,
            "AMEBO_ADDRESS": f"127.0.0.1:{self.port}",
            "AMEBO_ADMIN_TOKEN": ADMIN_TOKEN,
            "AMEBO_LOG_LEVEL": "info",
            **env,
        }
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    async def start(self, timeout: float = 30.0) -> None:
        self.starts += 1
        with self.log_path.open("ab") as log:
            log.write(f"--- start {self.starts}\n".encode())
            log.flush()
            self.process = subprocess.Popen(
                [sys.executable, "-m", "amebo", self.command],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        ready = "listening on" if self.command == "serve" else "delivery worker running"
        marker = f"--- start {self.starts}\n"

        def started() -> bool:
            assert self.process is not None
            if self.process.poll() is not None:
                raise AssertionError(f"amebo {self.command} exited:\n{self.logs()[-3000:]}")
            return ready in self.logs().rpartition(marker)[2]

        await until(started, timeout, f"amebo {self.command} to start")

    def kill(self) -> None:
        """SIGKILL: no cleanup, no flush, no goodbye."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    async def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            await asyncio.to_thread(self.process.wait, 15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


@contextlib.asynccontextmanager
async def processes() -> AsyncIterator[list[AmeboProcess]]:
    """Every process a test registers here is stopped at the end, whatever happened."""
    started: list[AmeboProcess] = []
    try:
        yield started
    finally:
        for process in started:
            await process.stop()


# The endpoint ------------------------------------------------------------------------------

OK, FAIL, HANG, CUT, DROP = "ok", "500", "hang", "cut", "drop"
Behaviour = Callable[[int], str]


def always_ok(n: int) -> str:
    return OK


@dataclasses.dataclass
class Endpoint:
    """A subscriber's HTTP endpoint. ``behaviour(n)`` decides how request n is answered:
    OK (204), FAIL (500), HANG (answers long after amebo's timeout), CUT (starts a 200 and
    closes the connection mid-body), DROP (closes the connection without answering). Only a
    completed OK counts as delivered."""

    behaviour: Behaviour = always_ok
    hang_seconds: float = 2.0
    port: int = 0
    requests: int = 0
    delivered: collections.Counter[tuple[str, str]] = dataclasses.field(
        default_factory=collections.Counter
    )
    answers: collections.Counter[str] = dataclasses.field(default_factory=collections.Counter)
    # The amebo-attempt header of each completed OK, by (event, subscriber): tells a duplicate
    # that was a retry after a failure (1, 2) from one sent again after a lost lease (1, 1).
    attempts: dict[tuple[str, str], list[str]] = dataclasses.field(default_factory=dict)
    _runner: web.AppRunner | None = None
    _changed: asyncio.Event = dataclasses.field(default_factory=asyncio.Event)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        await self.up()

    async def up(self) -> None:
        app = web.Application()
        app.router.add_post("/{subscriber}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port)
        await site.start()
        if not self.port:
            server = site._server
            assert server is not None
            self.port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def down(self) -> None:
        """Stop listening and drop every open connection: refused until ``up``."""
        await self.stop()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        self.requests += 1
        answer = self.behaviour(self.requests)
        self.answers[answer] += 1
        if answer == FAIL:
            return web.Response(status=500, text="injected failure")
        if answer == HANG:
            await asyncio.sleep(self.hang_seconds)  # the endpoint is stuck; amebo gives up
            return web.Response(status=204)
        if answer == DROP:
            assert request.transport is not None
            request.transport.close()
            return web.Response(status=204)  # never reaches amebo: the connection is gone
        if answer == CUT:
            response = web.StreamResponse(status=200)
            response.content_length = 1000
            await response.prepare(request)
            await response.write(b'{"partial":')
            assert request.transport is not None
            request.transport.close()
            return response
        pair = (_event_id(body), request.match_info["subscriber"])
        self.delivered[pair] += 1
        self.attempts.setdefault(pair, []).append(request.headers.get("amebo-attempt", "?"))
        self._changed.set()
        return web.Response(status=204)

    async def wait_for(self, expected: set[tuple[str, str]], timeout: float) -> None:
        """Until every (event, subscriber) pair in ``expected`` has been delivered: woken by
        each delivery, bounded by ``timeout``."""
        deadline = time.monotonic() + timeout
        while not expected <= self.delivered.keys():
            left = deadline - time.monotonic()
            if left <= 0:
                missing = len(expected - self.delivered.keys())
                raise AssertionError(f"{missing} of {len(expected)} deliveries missing")
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), left)


def _event_id(body: bytes) -> str:
    return str(orjson.loads(body)["id"])


# Publishing --------------------------------------------------------------------------------


@dataclasses.dataclass
class Publisher:
    """Publishes ``{"n": n}`` with deduper ``n`` and retries each until it gets a 2xx, as a
    careful client does: a retry after a crash or a 503 cannot publish twice. Records every
    answer, and the slowest one, so tests can say how the API behaved during the fault."""

    base_url: str
    auth: dict[str, str]
    action: str = ACTION
    request_timeout: float = 15.0
    accepted: dict[int, str] = dataclasses.field(default_factory=dict)
    answers: collections.Counter[str] = dataclasses.field(default_factory=collections.Counter)
    unexpected: list[str] = dataclasses.field(default_factory=list)
    unavailable: collections.Counter[str] = dataclasses.field(
        default_factory=collections.Counter
    )  # the detail of each 503
    slowest: float = 0.0
    latencies: list[tuple[float, float]] = dataclasses.field(default_factory=list)

    async def run(self, numbers: Iterable[int], rate: float, concurrency: int = 8) -> None:
        """Starts event n no earlier than n/rate seconds in; at most ``concurrency`` at once."""
        gate = asyncio.Semaphore(concurrency)
        started = time.monotonic()
        timeout = aiohttp.ClientTimeout(total=self.request_timeout)
        async with aiohttp.ClientSession(timeout=timeout) as session:

            async def one(index: int, n: int) -> None:
                async with gate:
                    await self._publish(session, n)

            tasks = []
            for index, n in enumerate(numbers):
                due = started + index / rate
                if due > time.monotonic():
                    await asyncio.sleep(due - time.monotonic())  # pacing the load, not waiting
                tasks.append(asyncio.create_task(one(index, n)))
            await asyncio.gather(*tasks)

    async def _publish(self, session: aiohttp.ClientSession, n: int) -> None:
        body = {"action": self.action, "payload": {"n": n}, "deduper": f"event-{n}"}
        for attempt in range(2000):
            began = time.monotonic()
            try:
                async with session.post(
                    f"{self.base_url}/v1/events", json=body, headers=self.auth
                ) as response:
                    text = await response.text()
                    status = response.status
                    retry_after = response.headers.get("Retry-After")
                    content_type = response.content_type
            except TimeoutError:
                self._answered("timeout", began)
                self.unexpected.append(f"event {n}: no answer within {self.request_timeout}s")
            except aiohttp.ClientError as error:
                # The process was killed: nothing listens, or the connection broke mid-request.
                self._answered(type(error).__name__, began)
            else:
                self._answered(str(status), began)
                if status in (200, 201):
                    self.accepted[n] = str(orjson.loads(text)["id"])
                    return
                if status != 503:
                    self.unexpected.append(f"event {n}: {status} {text[:300]}")
                    return
                if not retry_after or content_type != "application/problem+json":
                    self.unexpected.append(f"event {n}: 503 without Retry-After or problem+json")
                else:
                    self.unavailable[orjson.loads(text)["detail"]] += 1
            await asyncio.sleep(min(0.05 * (attempt + 1), 0.5))  # client back-off
        raise AssertionError(f"event {n} was never accepted")

    def _answered(self, answer: str, began: float) -> None:
        took = time.monotonic() - began
        self.answers[answer] += 1
        self.slowest = max(self.slowest, took)
        self.latencies.append((time.monotonic(), took))


async def api_json(
    session: aiohttp.ClientSession,
    method: str,
    url: str,
    headers: dict[str, str],
    body: Any = None,
    expect: int = 201,
) -> Any:
    async with session.request(method, url, json=body, headers=headers) as response:
        text = await response.text()
        assert response.status == expect, f"{method} {url}: {response.status} {text}"
        return orjson.loads(text) if text else None


async def register(base_url: str, subscribers: Mapping[str, Endpoint]) -> dict[str, str]:
    """The producer "shop" and one subscribing application per name, each with a handler at
    its endpoint's /name. Returns the producer's Basic credentials."""
    async with aiohttp.ClientSession() as session:
        for name in ("shop", *subscribers):
            await api_json(
                session,
                "POST",
                f"{base_url}/v1/applications",
                ADMIN,
                {"application": name, "secret": f"{name}-secret-value", "address": base_url},
            )
        await api_json(
            session,
            "POST",
            f"{base_url}/v1/actions",
            basic("shop", "shop-secret-value"),
            {"action": ACTION, "application": "shop", "schemata": {"type": "object"}},
        )
        for name, endpoint in subscribers.items():
            await api_json(
                session,
                "POST",
                f"{base_url}/v1/subscriptions",
                basic(name, f"{name}-secret-value"),
                {"application": name, "action": ACTION, "handler": f"{endpoint.url}/{name}"},
            )
    return basic("shop", "shop-secret-value")


# The tally ---------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Tally:
    fault: str
    sent: int
    accepted: int
    expected: int
    lost: int
    duplicated: int

    def line(self) -> str:
        return (
            f"{self.fault}: {self.sent} events sent, {self.accepted} accepted, "
            f"{self.expected} deliveries due, lost {self.lost}, duplicated {self.duplicated}"
        )


def tally(
    fault: str,
    sent: int,
    accepted: Iterable[str],
    subscribers: Iterable[str],
    delivered: collections.Counter[tuple[str, str]],
) -> Tally:
    expected = {(event, subscriber) for event in accepted for subscriber in subscribers}
    lost = len(expected - delivered.keys())
    duplicated = sum(count - 1 for pair, count in delivered.items() if pair in expected)
    result = Tally(fault, sent, len({e for e, _ in expected}), len(expected), lost, duplicated)
    print(result.line())
    write_report(result)
    return result


def write_report(result: Tally) -> None:
    """Appends the line to $AMEBO_FAULT_REPORT when set (``make test-faults`` collects them)."""
    path = os.environ.get("AMEBO_FAULT_REPORT")
    if path:
        with open(path, "a") as report:
            report.write(result.line() + "\n")


async def database_state(url: str) -> dict[str, int]:
    """Counts that must hold once everything settled: one event per deduper, every delivery
    succeeded, nothing left queued."""
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        cursor = await conn.execute(
            """
            SELECT (SELECT count(*) FROM amebo.events),
                   (SELECT count(DISTINCT deduper) FROM amebo.events),
                   (SELECT count(*) FROM amebo.deliveries WHERE status <> 'succeeded'),
                   (SELECT count(*) FROM amebo.delivery_queue)
            """
        )
        row = await cursor.fetchone()
    assert row is not None
    return {"events": row[0], "dedupers": row[1], "unsucceeded": row[2], "queued": row[3]}


async def projections_match_log(url: str) -> None:
    """Rebuilt from the log alone, every projection equals what the live path wrote."""
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        before = await _snapshot(conn)
        await rebuild(conn)
        after = await _snapshot(conn)
    for table in projections.TABLES:
        assert before[table] == after[table], f"{table} differs after a rebuild from the log"


async def _snapshot(conn: psycopg.AsyncConnection[Any]) -> dict[str, list[str]]:
    snapshot = {}
    for table in projections.TABLES:
        # Leases are a worker's claim, not a fact; a rebuild starts without them.
        cursor = await conn.execute(f"SELECT (to_jsonb(t) - 'lease_token')::text FROM {table} AS t")
        snapshot[table] = sorted(row[0] for row in await cursor.fetchall())
    return snapshot


async def settled(url: str, timeout: float = 30.0) -> dict[str, int]:
    """Workers record outcomes in batches after the endpoint answered: wait for the last
    batch, then return the final counts."""

    async def nothing_pending() -> bool:
        state = await database_state(url)
        return state["unsucceeded"] == 0 and state["queued"] == 0

    await until(nothing_pending, timeout, "every delivery recorded as succeeded")
    return await database_state(url)
