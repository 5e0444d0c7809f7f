"""A soak: `amebo serve` at a steady publish rate for a while, sampled every second.

Memory (RSS of the serve process), database connections (pg_stat_activity), publish latency
and the delivery backlog must not grow: the last third of the run is compared with the first
(after a warm-up). One minute in `make test`, ten in `make test-faults`; AMEBO_SOAK_SECONDS
overrides both.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import statistics
import time
from pathlib import Path

import psycopg
from psycopg.conninfo import conninfo_to_dict

from tests.faults.harness import (
    AmeboProcess,
    Endpoint,
    Publisher,
    processes,
    register,
    scale,
    settled,
    tally,
)

SECONDS = float(os.environ.get("AMEBO_SOAK_SECONDS") or scale(60, 600))
RATE = scale(50, 100)  # events per second
WARM_UP = 0.2  # of the run, not judged: pools fill, statements get prepared, caches warm
MEMORY_GROWTH_MB = 16.0
# The pool's ceiling (runtime.open_pool), the LISTEN and NOTIFY connections, and slack for
# one reconnect.
CONNECTIONS_CEILING = 20 + 2 + 2


@dataclasses.dataclass(frozen=True)
class Sample:
    at: float
    rss_mb: float
    connections: int
    backlog: int  # deliveries accepted but not yet received


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmRSS for process {pid}")


async def test_soak_holds_steady(database_url: str, tmp_path: Path) -> None:
    database = conninfo_to_dict(database_url)["dbname"]
    endpoint = Endpoint()
    await endpoint.start()
    try:
        async with (
            processes() as started,
            await psycopg.AsyncConnection.connect(database_url, autocommit=True) as observer,
        ):
            serve = AmeboProcess(
                "serve",
                database_url,
                tmp_path,
                AMEBO_LOG_LEVEL="warning",
                # Production-like timeouts: on a busy machine the fault tests' one second can
                # pass before a healthy endpoint's answer is read, and a soak is about leaks.
                AMEBO_DELIVERY_TIMEOUT="10",
                AMEBO_LEASE_SECONDS="30",
            )
            started.append(serve)
            await serve.start()
            auth = await register(serve.url, {"billing": endpoint})
            publisher = Publisher(serve.url, auth)
            events = int(SECONDS * RATE)
            began = time.monotonic()
            publishing = asyncio.create_task(publisher.run(range(events), RATE))

            samples: list[Sample] = []
            while not publishing.done():
                cursor = await observer.execute(
                    # Client backends only: autovacuum workers on this database come and
                    # go (up to autovacuum_max_workers) and are not amebo's connections.
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND pid <> "
                    "pg_backend_pid() AND backend_type = 'client backend'",
                    [database],
                )
                row = await cursor.fetchone()
                assert row is not None
                samples.append(
                    Sample(
                        time.monotonic() - began,
                        rss_mb(serve.pid),
                        int(row[0]),
                        len(publisher.accepted) - len(endpoint.delivered),
                    )
                )
                await asyncio.wait({publishing}, timeout=1.0)  # the sampling interval
            await publishing

            accepted = set(publisher.accepted.values())
            await endpoint.wait_for({(e, "billing") for e in accepted}, timeout=60)
            result = tally(
                f"soak {SECONDS:.0f}s at {RATE}/s",
                events,
                accepted,
                ["billing"],
                endpoint.delivered,
            )
            await settled(database_url)
            assert "unhandled error" not in serve.logs()
    finally:
        await endpoint.stop()

    judged = [s for s in samples if s.at >= SECONDS * WARM_UP]
    third = max(len(judged) // 3, 1)
    first, last = judged[:third], judged[-third:]
    latencies = [(at - began, took) for at, took in publisher.latencies]
    early = [took for at, took in latencies if first[0].at <= at <= first[-1].at]
    late = [took for at, took in latencies if last[0].at <= at <= last[-1].at]

    memory = statistics.median(s.rss_mb for s in last) - statistics.median(s.rss_mb for s in first)
    p99_early, p99_late = _p99(early), _p99(late)
    print(
        f"  rss {first[0].rss_mb:.1f} -> {last[-1].rss_mb:.1f} MB (median growth {memory:+.1f}), "
        f"connections max {max(s.connections for s in samples)} "
        f"(first third {max(s.connections for s in first)}, "
        f"last {max(s.connections for s in last)}), "
        f"publish p99 {p99_early * 1000:.1f} -> {p99_late * 1000:.1f} ms, "
        f"backlog max {max(s.backlog for s in last)}"
    )
    duplicates = [seen for seen in endpoint.attempts.values() if len(seen) > 1]
    assert result.lost == 0
    assert result.duplicated == 0, f"amebo-attempt of each duplicate: {duplicates[:20]}"
    assert not publisher.unexpected, publisher.unexpected[:5]
    assert memory < MEMORY_GROWTH_MB, f"serve grew by {memory:.1f} MB"
    assert max(s.connections for s in samples) <= CONNECTIONS_CEILING
    assert max(s.connections for s in last) <= max(s.connections for s in first) + 2
    assert p99_late <= max(3 * p99_early, 0.25), (p99_early, p99_late)
    # Delivery keeps up: the backlog at the end is no larger than a few seconds of events.
    assert max(s.backlog for s in last) <= max(2 * max(s.backlog for s in first), 5 * RATE)


def _p99(values: list[float]) -> float:
    assert values, "no publish answered in this part of the run"
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
