"""Sleeping until woken: one LISTEN connection per process, and a wait with a deadline.

Every loop that waits for work (delivery, bulk retries, the outbox relay) sleeps on an
``asyncio.Event``. The ``Listener`` sets those events when PostgreSQL sends a notification on
their channel, and sets all of them whenever it (re)connects, since notifications sent while
nobody listened are lost. A slow poll in each loop remains the safety net.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import psycopg
import structlog

from amebo.db.sql import query

log = structlog.get_logger(__name__)

RECONNECT_DELAY = 1.0


async def wait(event: asyncio.Event, timeout: float) -> None:
    """Until ``event`` is set or ``timeout`` seconds pass."""
    # Not asyncio.wait_for: on 3.11 it can swallow a cancel that lands as the event is set,
    # and then stopping the loop waits forever.
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(timeout):
            await event.wait()


def being_cancelled() -> bool:
    """Whether the running task has a cancel pending. A cancel that interrupts a query can
    surface as a database error instead of CancelledError; loops that retry on database
    errors check this so that they still stop."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


class Listener:
    """One LISTEN connection for every channel this process cares about.

    Notifications whose payload is ``own`` (a ``Notifier``'s origin) are ignored: they name a
    sender in this process that has already woken the loops here directly, and a second
    wake would cost each loop a needless round trip.
    """

    def __init__(self, url: str, own: str | None = None) -> None:
        self._url = url
        self._own = own
        self._wakes: dict[str, list[Callable[[], None]]] = defaultdict(list)
        self._task: asyncio.Task[None] | None = None
        self.connected = asyncio.Event()  # test signal: set while listening

    def on(self, channel: str, wake: Callable[[], None]) -> None:
        if not channel.isidentifier():
            raise ValueError(f"channel {channel!r} is not a plain identifier")
        self._wakes[channel].append(wake)

    def start(self) -> None:
        if self._wakes and self._task is None:
            self._task = asyncio.create_task(self._listen(), name="amebo-listen")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    def _wake_all(self) -> None:
        for wakes in self._wakes.values():
            for wake in wakes:
                wake()

    async def _listen(self) -> None:
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(
                    self._url, autocommit=True
                ) as conn:
                    for channel in self._wakes:
                        await conn.execute(f"LISTEN {channel}")  # identifiers checked in on()
                    self.connected.set()
                    self._wake_all()
                    async for notification in conn.notifies():
                        if self._own is not None and notification.payload == self._own:
                            continue
                        for wake in self._wakes.get(notification.channel, ()):
                            wake()
            except asyncio.CancelledError:
                raise
            except psycopg.Error as error:
                log.warning("listen connection lost; reconnecting", error=str(error))
            self.connected.clear()
            await asyncio.sleep(RECONNECT_DELAY)  # back-off; the loops' polls cover the gap


class Notifier:
    """Sends one NOTIFY on ``channel`` after commits that ask for it, outside their
    transactions, coalescing the asks that arrive while one is being sent.

    Why not NOTIFY inside the writing transaction: PostgreSQL serialises every transaction
    that notifies on a cluster-wide lock held until its commit record is flushed, so commits
    that notify cannot share a WAL flush, and concurrent publishes would commit one at a
    time. Sent here, the lock is held only by this small transaction. If the process dies
    between a commit and its notification, listeners elsewhere learn of the work from their
    safety poll; the work itself is committed and waits for them.

    At most one notification goes out per ``min_interval``: at 1,000 commits a second one
    per commit doubled the statements of a publish, and woke this process's own listener
    as often, only for it to ignore them. This process's worker is woken directly; others
    learn of the work at most ``min_interval`` later.

    It keeps a connection of its own rather than borrow one from the pool: a borrowed one
    would raise the pool's peak demand, and pools keep what they grow to. Its notifications
    carry ``origin``, a name for the sending process: that process's ``Listener`` ignores
    them, since whatever asked for one has woken the loops there directly.
    """

    def __init__(self, url: str, channel: str, min_interval: float = 0.005) -> None:
        self._url = url
        self._min_interval = min_interval
        self._conn: psycopg.AsyncConnection[Any] | None = None
        self._channel = channel
        self.origin = uuid.uuid4().hex
        self._asked = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def notify(self) -> None:
        self._asked.set()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"amebo-notify-{self._channel}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        if self._conn is not None:
            await self._conn.close()
            self._conn = None

    async def _send(self) -> None:
        if self._conn is None or self._conn.closed:
            self._conn = await psycopg.AsyncConnection.connect(self._url, autocommit=True)
        await self._conn.execute(
            query("notify"), {"channel": self._channel, "payload": self.origin}
        )

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self._asked.wait()
            self._asked.clear()  # an ask during the send below gets a send of its own
            sent_at = loop.time()
            try:
                await self._send()
            except psycopg.Error as error:
                if being_cancelled():
                    raise
                log.warning("notify failed; listeners will poll", error=str(error))
                if self._conn is not None:
                    await self._conn.close()  # reconnect at the next notification
                    self._conn = None
            # A rate limit, not a wait for work: asks until then share the next notification.
            await asyncio.sleep(max(0.0, sent_at + self._min_interval - loop.time()))
