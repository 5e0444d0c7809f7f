"""The delivery worker: claim due deliveries, send each through the sink, record outcomes.

Claims and outcomes are batched (one statement claims many rows; one statement records
many outcomes), while each send runs on its own so a slow endpoint holds only its own slots.
The worker sleeps until woken: directly by a publisher in the same process, by NOTIFY from
other processes, at the due time of the next scheduled retry, or by a slow safety poll.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import datetime
import uuid
from collections.abc import Collection
from typing import Any

import psycopg
import psycopg_pool
import structlog
from psycopg.types.json import Jsonb

from amebo import deliveries
from amebo.db.sql import query
from amebo.db.upkeep import TableStatistics
from amebo.delivery.breaker import BreakerConfig
from amebo.delivery.envelope import Message, wrap
from amebo.delivery.retry import RetryPolicy
from amebo.delivery.upkeep import QueueVacuum
from amebo.eventlog import Fact, record
from amebo.registry import deactivation_fact
from amebo.sinks import Result, Sink
from amebo.wakeup import being_cancelled, wait

log = structlog.get_logger(__name__)

CHANNEL = "amebo_deliveries"
JOBS_CHANNEL = "amebo_retry_jobs"
RESPONSE_KEPT = 1024


@dataclasses.dataclass(frozen=True)
class WorkerConfig:
    batch_size: int = 200
    concurrency: int = 256
    endpoint_concurrency: int = 32
    lease_seconds: float = 60.0
    send_timeout: float = 15.0
    poll_interval: float = 5.0
    breaker: BreakerConfig = dataclasses.field(default_factory=BreakerConfig)
    vacuum_after: int = 1000  # finished deliveries between vacuums of the queue; 0: never
    statistics_after: int = 1000  # rows written between checks of table statistics; 0: never
    record_interval: float = 0.005  # at most one batch of outcomes recorded per interval


@dataclasses.dataclass(frozen=True)
class Outcome:
    message: Message
    lease: uuid.UUID
    result: Result
    status: str  # succeeded | failed | dead
    next_attempt_at: datetime.datetime | None
    attempted_at: datetime.datetime

    def recorded(self) -> dict[str, Any]:
        """What amebo.record_outcomes takes for this outcome (sql/migrations/0013)."""
        fact = self.fact()
        return {
            "delivery_id": self.message.delivery_id,
            "token": self.lease,
            "subscription_id": self.message.subscription_id,
            "ok": self.result.ok,
            "gone": self.result.gone,
            "stream": fact.stream,
            "data": fact.data,
        }

    def fact(self) -> Fact:
        r = self.result
        return Fact(
            stream=f"delivery-{self.message.delivery_id}",
            type="delivery.attempted",
            data={
                "delivery_id": str(self.message.delivery_id),
                "event_id": str(self.message.event_id),
                "subscription_id": str(self.message.subscription_id),
                "attempt": self.message.attempt + 1,
                "outcome": self.status,
                "status_code": r.status_code,
                "latency_ms": r.latency_ms,
                "error": r.error,
                "response": (r.response or "")[:RESPONSE_KEPT] or None,
                "next_attempt_at": self.next_attempt_at.isoformat()
                if self.next_attempt_at
                else None,
                "attempted_at": self.attempted_at.isoformat(),
            },
        )


class DeliveryWorker:
    def __init__(
        self,
        pool: psycopg_pool.AsyncConnectionPool[Any],
        sink: Sink,
        policy: RetryPolicy,
        config: WorkerConfig,
    ) -> None:
        self._pool = pool
        self._sink = sink
        self._policy = policy
        self._config = config
        self._wake = asyncio.Event()
        self._slot_freed = asyncio.Event()
        self._outcomes: list[Outcome] = []
        self._outcomes_ready = asyncio.Event()
        self._inflight = 0
        self._endpoints: dict[str, asyncio.Semaphore] = {}
        self._per_subscription: collections.Counter[uuid.UUID] = collections.Counter()
        self._tasks: list[asyncio.Task[None]] = []
        self._sends: set[asyncio.Task[None]] = set()
        self._jobs_wake = asyncio.Event()
        self._smallest_claim = max(1, min(config.batch_size, config.concurrency) // 4)
        self.recorded = asyncio.Event()  # test signal: set after each recorded batch
        self.claims = 0  # claim statements run: a test signal
        self.queue_vacuum = QueueVacuum(pool, config.vacuum_after)
        # Every process that writes runs a worker, so the worker runs the process's upkeep
        # of the tables' statistics; the publisher and relay note their writes here too.
        self.table_statistics = TableStatistics(pool, config.statistics_after)

    def wake(self) -> None:
        self._wake.set()

    def wake_for(self, subscriptions: Collection[uuid.UUID]) -> None:
        """New work for ``subscriptions``. No wake when every one of them has its endpoint
        saturated here: the claim would leave them out, and a freed slot wakes the worker
        anyway."""
        if not all(self._saturated(s) for s in subscriptions):
            self._wake.set()

    def wake_jobs(self) -> None:
        self._jobs_wake.set()

    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._claim_loop(), name="amebo-claim"),
            asyncio.create_task(self._record_loop(), name="amebo-record"),
            asyncio.create_task(self._bulk_retry_loop(), name="amebo-bulk-retry"),
            asyncio.create_task(self.queue_vacuum.run(), name="amebo-queue-vacuum"),
            asyncio.create_task(self.table_statistics.run(), name="amebo-table-statistics"),
        ]

    async def stop(self) -> None:
        for task in self._tasks[:1]:
            task.cancel()
        await asyncio.gather(*self._tasks[:1], return_exceptions=True)
        if self._sends:
            await asyncio.wait(self._sends, timeout=5)
        for task in self._sends:
            task.cancel()
        await self._flush()
        for task in self._tasks[1:]:
            task.cancel()
        await asyncio.gather(*self._tasks[1:], return_exceptions=True)
        self._tasks = []

    async def close_sink(self) -> None:
        await self._sink.close()

    # Claiming -------------------------------------------------------------------------

    async def _claim_loop(self) -> None:
        while True:
            try:
                await self._claim_once()
            except asyncio.CancelledError:
                raise
            except (psycopg.Error, psycopg_pool.PoolTimeout) as error:
                if being_cancelled():
                    raise
                log.warning("claim failed; will retry", error=str(error))
                await wait(self._wake, self._config.poll_interval)

    async def _claim_once(self) -> None:
        free = self._config.concurrency - self._inflight
        if free < self._smallest_claim:
            # Claiming a row or two each time a send finishes would spend a round trip per
            # delivery; wait until a worthwhile batch fits.
            self._slot_freed.clear()
            await self._slot_freed.wait()
            return
        # Clear before claiming: a wake-up that lands during the claim must not be lost.
        self._wake.clear()
        wanted = min(free, self._config.batch_size)
        claimed_at = asyncio.get_running_loop().time()
        messages, lease, next_due_in = await self._claim(wanted)
        for message in messages:
            self._inflight += 1
            task = asyncio.create_task(self._deliver(message, lease, claimed_at))
            self._sends.add(task)
            task.add_done_callback(self._sends.discard)
        if len(messages) == wanted:
            return
        await wait(self._wake, self._idle_timeout(next_due_in))

    async def _claim(self, limit: int) -> tuple[list[Message], uuid.UUID, float | None]:
        """Claims up to ``limit`` due deliveries under a new lease; also answers the seconds
        until the next unclaimed delivery a claim could take falls due (None: nothing)."""
        lease = uuid.uuid4()
        self.claims += 1
        async with self._pool.connection() as conn:
            cursor = await conn.execute(
                query("delivery_claim"),
                {
                    "limit": limit,
                    "lease_seconds": self._config.lease_seconds,
                    "token": lease,
                    "busy": self._busy_subscriptions(),
                },
            )
            rows = await cursor.fetchall()
        next_due_in: float | None = rows[0][0]
        messages = [Message(*row[1:]) for row in rows if row[1] is not None]
        return messages, lease, next_due_in

    def _idle_timeout(self, next_due_in: float | None) -> float:
        if next_due_in is None:
            return self._config.poll_interval
        return min(max(next_due_in, 0.0), self._config.poll_interval)

    def _saturated(self, subscription_id: uuid.UUID) -> bool:
        """Whether the subscription's endpoint has every slot taken: claiming more of its
        work now would only park it, holding slots that healthy endpoints could use."""
        return self._per_subscription[subscription_id] >= self._config.endpoint_concurrency

    def _busy_subscriptions(self) -> list[uuid.UUID]:
        return [sid for sid in self._per_subscription if self._saturated(sid)]

    # Sending --------------------------------------------------------------------------

    async def _deliver(self, message: Message, lease: uuid.UUID, claimed_at: float) -> None:
        self._per_subscription[message.subscription_id] += 1
        try:
            endpoint = self._endpoints.get(message.handler)
            if endpoint is None:
                endpoint = asyncio.Semaphore(self._config.endpoint_concurrency)
                self._endpoints[message.handler] = endpoint
            async with endpoint:
                if not self._lease_outlasts_send(claimed_at):
                    # Sending now could outlive the lease and race another worker's claim:
                    # let the lease lapse instead, and the row is claimed again afresh.
                    log.info(
                        "delivery left for a later claim", delivery_id=str(message.delivery_id)
                    )
                    return
                result = await self._sink.send(message.handler, wrap(message))
            self._outcomes.append(self._judge(message, lease, result))
            self._outcomes_ready.set()
        finally:
            self._inflight -= 1
            was_saturated = self._saturated(message.subscription_id)
            remaining = self._per_subscription[message.subscription_id] - 1
            if remaining:
                self._per_subscription[message.subscription_id] = remaining
            else:
                del self._per_subscription[message.subscription_id]
            if was_saturated and not self._saturated(message.subscription_id):
                # The claim left this subscription out while it was saturated (and its due
                # rows out of the sleep's deadline): now that it is not, it has work to
                # claim. Not sooner: a claim can hold more of its deliveries than its
                # endpoint's slots, and each of those finishing would cost an empty claim.
                self._wake.set()
            self._slot_freed.set()

    def _lease_outlasts_send(self, claimed_at: float) -> bool:
        held = asyncio.get_running_loop().time() - claimed_at
        return held + self._config.send_timeout + 1.0 < self._config.lease_seconds

    def _judge(self, message: Message, lease: uuid.UUID, result: Result) -> Outcome:
        now = datetime.datetime.now(datetime.UTC)
        if result.ok:
            return Outcome(message, lease, result, "succeeded", None, now)
        retry = message.attempt + 1
        if result.gone or result.permanent or retry > message.max_retries:
            return Outcome(message, lease, result, "dead", None, now)
        policy = self._policy
        if message.retry_schedule:
            policy = dataclasses.replace(policy, schedule=message.retry_schedule)
        delay = policy.delay(retry, result.retry_after)
        return Outcome(
            message, lease, result, "failed", now + datetime.timedelta(seconds=delay), now
        )

    # Recording ------------------------------------------------------------------------

    async def _record_loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self._outcomes_ready.wait()
            self._outcomes_ready.clear()
            flushed_at = loop.time()
            try:
                await self._flush()
            except asyncio.CancelledError:
                raise
            except (psycopg.Error, psycopg_pool.PoolTimeout) as error:
                if being_cancelled():
                    raise
                log.warning("recording outcomes failed; will retry", error=str(error))
                await asyncio.sleep(0.5)  # back off from a failing database, then retry
                self._outcomes_ready.set()
            # A rate limit, not a wait for work: outcomes that finish until then share the
            # next batch, so that a busy worker commits a batch every record_interval rather
            # than one per outcome or two. A lone outcome is recorded at once.
            await asyncio.sleep(max(0.0, flushed_at + self._config.record_interval - loop.time()))

    async def _flush(self) -> None:
        if not self._outcomes:
            return
        outcomes, self._outcomes = self._outcomes, []
        try:
            await self._record(outcomes)
        except BaseException:
            self._outcomes[:0] = outcomes
            raise
        self.recorded.set()
        if any(o.status == "failed" for o in outcomes):
            self.wake()  # a retry may be due sooner than the worker planned to look

    async def _record(self, outcomes: list[Outcome]) -> None:
        breaker = self._config.breaker
        async with self._pool.connection() as conn:
            # One statement, its own transaction (sql/migrations/0013).
            cursor = await conn.execute(
                query("delivery_outcomes_record"),
                {
                    "outcomes": Jsonb([o.recorded() for o in outcomes]),
                    "threshold": breaker.threshold,
                    "cooldown_min": breaker.cooldown_min,
                    "cooldown_max": breaker.cooldown_max,
                    "deactivate_after": breaker.deactivate_after,
                },
            )
            rows = await cursor.fetchall()
        recorded = {delivery_id for delivery_id, _, _ in rows if delivery_id is not None}
        failing = [(s, failing_for) for _, s, failing_for in rows if s is not None]
        kept = [o for o in outcomes if o.message.delivery_id in recorded]
        gone = {o.message.subscription_id for o in kept if o.result.gone}
        ended = [deactivation_fact(s, "endpoint answered 410 Gone") for s in sorted(gone)] + [
            deactivation_fact(s, f"endpoint failing for {failing_for:.0f}s")
            for s, failing_for in failing
            if s not in gone
        ]
        if ended:
            # Rare, and safe to lose to a crash: the endpoint's next outcome decides again.
            async with self._pool.connection() as conn, conn.transaction():
                await record(conn, ended)
            for fact in ended:
                log.warning("subscription deactivated", **fact.data)
        self.queue_vacuum.note_finished(sum(o.status != "failed" for o in kept))
        self.table_statistics.note(2 * len(kept))  # a fact in the log, a delivery changed
        if len(kept) < len(outcomes):
            log.info("outcomes dropped: lease lost", count=len(outcomes) - len(kept))

    # Bulk retries -----------------------------------------------------------------------

    async def _bulk_retry_loop(self) -> None:
        while True:
            self._jobs_wake.clear()
            try:
                async with self._pool.connection() as conn:
                    while await deliveries.advance_bulk_retry(conn):
                        self._wake.set()
            except asyncio.CancelledError:
                raise
            except (psycopg.Error, psycopg_pool.PoolTimeout) as error:
                if being_cancelled():
                    raise
                log.warning("bulk retry failed; will retry", error=str(error))
            await wait(self._jobs_wake, self._config.poll_interval)
