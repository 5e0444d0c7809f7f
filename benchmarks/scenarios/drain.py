"""``drain``: a backlog of N events, then delivered to a local endpoint as fast as amebo can.

The backlog is published through the batch API while the endpoint holds every request
unanswered, so amebo's worker has only its first claim in flight (the endpoint's concurrency
limit) and the rest waits in the queue, with no failures or retries. Releasing the endpoint
starts the clock; the rate counts the deliveries that arrive after it.
"""

from __future__ import annotations

import time
from typing import Any

import psycopg

from benchmarks.bench import Bench
from benchmarks.processes import backend_cpu_seconds, cpu_seconds
from benchmarks.results import ScenarioResult
from benchmarks.rig import HOLDING, Rig, amebo_rig
from benchmarks.stats import steady_rate, timeline

BATCH = 1000


def queued(database_url: str) -> int:
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT count(*) FROM amebo.delivery_queue").fetchone()
    return int(row[0]) if row else 0


def drain(rig: Rig, backlog: int, per_event: int = 1, label: str = "drain") -> dict[str, Any]:
    """Publishes ``backlog`` events with delivery held, releases it, and measures."""
    rig.reset_endpoint()
    rig.endpoint.hold()
    spec = rig.spec(
        body="batch",
        batch_size=min(BATCH, backlog),
        concurrency=1,
        duration=600,
        warmup=0,
        max_requests=max(1, backlog // BATCH),
    )
    load = rig.generate(spec)
    expected = load["events"] * per_event
    time.sleep(0.5)  # the worker's claim of the first batch settles
    waiting = queued(rig.database_url)
    cpu_before = cpu_seconds(rig.amebo.pid)
    backends_before = backend_cpu_seconds(rig.database)
    endpoint_before = cpu_seconds(rig.endpoint.pid)
    released = rig.endpoint.release()
    with rig.bench.progress(expected, label, unit="delivery") as bar:
        complete = rig.endpoint.wait_for(expected, timeout=300, on_progress=bar.update)
    received = rig.endpoint.received()
    cpu = cpu_seconds(rig.amebo.pid) - cpu_before
    backends = backend_cpu_seconds(rig.database) - backends_before
    endpoint_cpu = cpu_seconds(rig.endpoint.pid) - endpoint_before
    after = [t for t in received.times if t >= released]
    span = (max(after) - released) if after else 0.0
    seqs = [s for s in received.seqs if s >= 0]
    return {
        "published": load["events"],
        "publish_events_s": load["event_rate"],
        "queued_at_release": waiting,
        "expected": expected,
        "arrived": len(received.times),
        "arrived_after_release": len(after),
        "duplicates": len(seqs) - len(set(seqs)),
        "complete": complete,
        "seconds": span,
        "deliveries_s": len(after) / span if span > 0 else 0.0,
        "steady_deliveries_s": steady_rate(after),
        "serve_cores": cpu / span if span > 0 else 0.0,
        "postgres_cores": backends / span if span > 0 else 0.0,
        "endpoint_cores": endpoint_cpu / span if span > 0 else 0.0,
        "timeline": timeline(after, released),
    }


def run(bench: Bench) -> ScenarioResult:
    result = ScenarioResult("drain")
    with amebo_rig(bench, "drain", env=HOLDING) as rig:
        measured = drain(rig, bench.plan.drain_backlog)
        result.add("deliveries/s", measured["deliveries_s"], "deliveries/s")
        result.rows.append(
            {
                "backlog": measured["published"],
                "queued at release": measured["queued_at_release"],
                "delivered after release": measured["arrived_after_release"],
                "seconds": round(measured["seconds"], 2),
                "deliveries/s": round(measured["deliveries_s"]),
                "first-to-last deliveries/s": round(measured["steady_deliveries_s"]),
                "duplicates": measured["duplicates"],
                "serve cores": round(measured["serve_cores"], 2),
                "postgres cores": round(measured["postgres_cores"], 2),
                "endpoint cores": round(measured["endpoint_cores"], 2),
            }
        )
        result.throughput["amebo drain"] = measured["timeline"]
        if not measured["complete"]:
            result.notes.append(
                f"only {measured['arrived']} of {measured['expected']} deliveries arrived in 300 s"
            )
        result.add("serve peak RSS", rig.peak_rss_mb(), "MB")
        result.memory = rig.memory_series()
    result.data["drain"] = {k: v for k, v in measured.items() if k != "timeline"}
    return result
