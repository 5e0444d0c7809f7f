"""``latency``: open loop at fixed offered rates; publish-returned -> endpoint-received.

"idle" sends one event at a time, spaced, so each meets an idle system. The endpoint stamps
each arrival with CLOCK_MONOTONIC, the generator each publish response; both are the same
host clock. A delivery can arrive before its publish response does (the worker is woken at
commit, while the response is still on its way), so small negative latencies are real.
"""

from __future__ import annotations

from typing import Any

from benchmarks.bench import Bench
from benchmarks.endpoint import Received
from benchmarks.results import ScenarioResult
from benchmarks.rig import Rig, amebo_rig
from benchmarks.stats import downsample, summary


def delivery_latencies(load: dict[str, Any], received: Received) -> tuple[list[float], int]:
    """(latencies in ms of measured events, how many of them never arrived)."""
    arrived: dict[int, float] = {}
    for seq, at in zip(received.seqs, received.times, strict=True):
        arrived.setdefault(seq, at)
    latencies, missing = [], 0
    for seq, returned in load["returned"]:
        if returned < load["measure_from"]:
            continue
        at = arrived.get(seq)
        if at is None:
            missing += 1
        else:
            latencies.append((at - returned) * 1000.0)
    return latencies, missing


def measure(rig: Rig, label: str, rate: float, seconds: float) -> dict[str, Any]:
    """One open-loop run at ``rate``, then waits for delivery to finish and joins the two."""
    rig.reset_endpoint()
    load = rig.generate(rig.spec(mode="open", rate=rate, duration=seconds, record_returns=True))
    caught_up = rig.catch_up(timeout=120)
    latencies, missing = delivery_latencies(load, rig.endpoint.received())
    origin = load["measure_from"] - rig.bench.plan.warmup
    return {
        "label": label,
        "load": load,
        "delivery": latencies,
        "missing": missing,
        "caught_up": caught_up,
        "origin": origin,
    }


def run(bench: Bench) -> ScenarioResult:
    plan = bench.plan
    result = ScenarioResult("latency")
    runs = [("idle", plan.idle_rate)] + [(f"{rate:g}/s", rate) for rate in plan.latency_rates]
    with (
        amebo_rig(bench, "latency") as rig,
        bench.progress(len(runs), "latency", unit="run") as bar,
    ):
        for label, rate in runs:
            measured = measure(rig, label, rate, plan.latency_seconds)
            record(result, measured)
            bar.update(1)
        result.add("serve peak RSS", rig.peak_rss_mb(), "MB")
        result.memory = rig.memory_series()
    return result


def record(result: ScenarioResult, measured: dict[str, Any]) -> None:
    label, load = measured["label"], measured["load"]
    delivery = summary(measured["delivery"])
    publish = summary(load["latencies_ms"])
    negative = sum(1 for v in measured["delivery"] if v < 0)
    result.rows.append(
        {
            "offered": label,
            "achieved events/s": round(load["event_rate"]),
            "publish p50 ms": publish.get("p50"),
            "publish p99 ms": publish.get("p99"),
            "delivery p50 ms": delivery.get("p50"),
            "delivery p90 ms": delivery.get("p90"),
            "delivery p99 ms": delivery.get("p99"),
            "delivery p99.9 ms": delivery.get("p99.9"),
            "delivery max ms": delivery.get("max"),
            "arrived before response": negative,
            "missing": measured["missing"],
            "serve cores": round(load["serve_cores"], 2),
        }
    )
    for name in ("p50", "p90", "p99", "p99.9"):
        result.add(f"{label} delivery {name}", delivery.get(name), "ms")
    result.add(f"{label} publish p99", publish.get("p99"), "ms")
    result.latency[f"{label} delivery"] = downsample(measured["delivery"])
    result.throughput[f"{label} published"] = load["timeline"]
    if not measured["caught_up"]:
        result.notes.append(f"{label}: delivery had not caught up 120 s after publishing ended")
    if load["max_late_ms"] > 50:
        result.notes.append(
            f"{label}: the generator fell up to {load['max_late_ms']:.0f} ms behind schedule "
            "(a busy machine); latency still counts from the due time"
        )
