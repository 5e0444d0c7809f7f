"""``outbox``: events written by SQL producers (``amebo.publish``), relayed and delivered.

Two runs: one publish at a time, spaced ("idle": producer commit -> endpoint received), and
several producers back to back (rows/s committed, and rows/s relayed and delivered). Skipped
when the database has no outbox. ``benchmarks/outbox_quick.py`` measures more shapes
(transactions of many rows, a backlog written while amebo is down) on its own.
"""

from __future__ import annotations

from typing import Any

import psycopg

from benchmarks.amebo_server import ACTION
from benchmarks.bench import Bench
from benchmarks.results import ScenarioResult
from benchmarks.rig import Rig, amebo_rig
from benchmarks.sqlproducer import ProducerSpec, produce
from benchmarks.stats import downsample, summary, timeline


def has_outbox(database_url: str) -> bool:
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT to_regclass('amebo.outbox') IS NOT NULL"
            " AND to_regprocedure('amebo.publish(text, jsonb, text, jsonb)') IS NOT NULL"
        ).fetchone()
    return bool(row and row[0])


def measure(rig: Rig, label: str, spec: ProducerSpec) -> dict[str, Any]:
    rig.reset_endpoint()
    produced = produce(spec, rig.bench.logs)
    rig.next_seq = produced["seq_end"]
    count = len(produced["committed"])
    caught_up = rig.endpoint.wait_for(count, timeout=120)
    received = rig.endpoint.received()
    arrived = dict(zip(received.seqs, received.times, strict=True))
    lags = [(arrived[s] - at) * 1000.0 for s, at in produced["committed"] if s in arrived]
    last = max(received.times) if received.times else produced["started"]
    span = last - produced["started"]
    return {
        "label": label,
        "committed": count,
        "commit_rate": produced["rate"],
        "delivered_rate": len(received.times) / span if span > 0 else 0.0,
        "commit": summary(produced["latencies_ms"]),
        "end_to_end": lags,
        "caught_up": caught_up,
        "errors": produced["errors"],
        "producer_timeline": produced["timeline"],
        "delivery_timeline": timeline(received.times, produced["started"]),
    }


def run(bench: Bench) -> ScenarioResult:
    plan = bench.plan
    result = ScenarioResult("outbox")
    with amebo_rig(bench, "outbox") as rig:
        if not has_outbox(rig.database_url):
            result.skipped = "this amebo has no amebo.outbox table or amebo.publish function"
            return result
        runs = [
            (
                "idle",
                ProducerSpec(
                    rig.database_url,
                    ACTION,
                    mode="open",
                    rate=plan.idle_rate,
                    duration=plan.latency_seconds,
                ),
            ),
            (
                f"{plan.outbox_producers} producers",
                ProducerSpec(
                    rig.database_url,
                    ACTION,
                    producers=plan.outbox_producers,
                    duration=plan.outbox_seconds,
                ),
            ),
        ]
        with bench.progress(len(runs), "outbox", unit="run") as bar:
            for label, spec in runs:
                spec.seq_start = rig.next_seq
                measured = measure(rig, label, spec)
                lag = summary(measured["end_to_end"])
                result.rows.append(
                    {
                        "run": label,
                        "committed rows/s": round(measured["commit_rate"]),
                        "relayed+delivered rows/s": round(measured["delivered_rate"]),
                        "commit p50 ms": measured["commit"].get("p50"),
                        "commit -> received p50 ms": lag.get("p50"),
                        "p90 ms": lag.get("p90"),
                        "p99 ms": lag.get("p99"),
                        "errors": sum(measured["errors"].values()),
                    }
                )
                result.add(f"{label} committed rows/s", measured["commit_rate"], "rows/s")
                result.add(f"{label} delivered rows/s", measured["delivered_rate"], "rows/s")
                result.add(f"{label} commit->received p50", lag.get("p50"), "ms")
                result.add(f"{label} commit->received p99", lag.get("p99"), "ms")
                result.latency[f"{label}: commit -> received"] = downsample(measured["end_to_end"])
                result.throughput[f"{label}: committed"] = measured["producer_timeline"]
                result.throughput[f"{label}: delivered"] = measured["delivery_timeline"]
                if not measured["caught_up"]:
                    result.notes.append(f"{label}: not every row was delivered within 120 s")
                bar.update(1)
        result.add("serve peak RSS", rig.peak_rss_mb(), "MB")
        result.memory = rig.memory_series()
    return result
