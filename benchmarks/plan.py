"""How long and how big each scenario runs, in quick mode (``make bench``, under two minutes
for everything) and in full mode (the figures the README quotes)."""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class Plan:
    mode: str
    warmup: float
    publish_concurrency: tuple[int, ...]
    publish_seconds: float
    batch_seconds: float
    batch_concurrency: int
    idle_rate: float  # events/s for "idle": each event alone in the system
    latency_rates: tuple[float, ...]
    latency_seconds: float
    drain_backlog: int
    fanout_subscriptions: int
    fanout_events: int
    fanout_idle_events: int
    scale_events: int
    scale_backlog: int
    scale_busy_latency: bool  # also compare delivery latency at 1,000 events/s offered
    # Seconds of each scale round's idle latency run: its p99 is compared across rounds, and
    # one from 500 samples (10 s at 50/s) moved by 30 % between two empty-log runs.
    scale_idle_seconds: float
    scale_pairs: int  # rounds per database, alternating which goes first
    raw_seconds: float
    procrastinate_jobs: int
    procrastinate_concurrency: int
    original_backlog: int
    outbox_producers: int
    outbox_seconds: float


QUICK = Plan(
    mode="quick",
    warmup=0.3,
    publish_concurrency=(1, 8, 32, 64),
    publish_seconds=1.5,
    batch_seconds=2.0,
    batch_concurrency=4,
    idle_rate=50.0,
    latency_rates=(100.0, 1000.0, 3000.0),
    latency_seconds=1.0,
    drain_backlog=5_000,
    fanout_subscriptions=100,
    fanout_events=20,
    fanout_idle_events=8,
    scale_events=30_000,
    scale_backlog=2_000,
    scale_busy_latency=False,
    scale_idle_seconds=1.0,
    scale_pairs=1,
    raw_seconds=1.0,
    procrastinate_jobs=500,
    procrastinate_concurrency=32,
    original_backlog=30,
    outbox_producers=8,
    outbox_seconds=1.5,
)

FULL = Plan(
    mode="full",
    warmup=2.0,
    publish_concurrency=(1, 8, 32, 64),
    publish_seconds=10.0,
    batch_seconds=10.0,
    batch_concurrency=4,
    idle_rate=50.0,
    latency_rates=(100.0, 1000.0, 3000.0),
    latency_seconds=10.0,
    drain_backlog=50_000,
    fanout_subscriptions=100,
    fanout_events=500,
    fanout_idle_events=40,
    scale_events=10_000_000,
    scale_backlog=50_000,
    scale_busy_latency=True,
    scale_idle_seconds=40.0,
    scale_pairs=2,
    raw_seconds=10.0,
    procrastinate_jobs=20_000,
    procrastinate_concurrency=32,
    original_backlog=500,
    outbox_producers=8,
    outbox_seconds=10.0,
)

PLANS = {"quick": QUICK, "full": FULL}
