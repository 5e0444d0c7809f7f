"""``fanout``: one action with 100 subscriptions (100 handler paths on one endpoint).

Three figures: publishing while each event fans out to 100 pending deliveries, the drain of
the resulting backlog, and how long one event takes, on an idle system, until all 100 of its
deliveries have arrived.
"""

from __future__ import annotations

import time

from benchmarks.bench import Bench
from benchmarks.results import ScenarioResult, load_row
from benchmarks.rig import HOLDING, Rig, amebo_rig
from benchmarks.stats import downsample, summary

# Seconds between idle events: long enough for 100 deliveries each even on a busy machine,
# or "idle" would measure a backlog.
IDLE_SPACING = 0.25


def run(bench: Bench) -> ScenarioResult:
    plan = bench.plan
    fan = plan.fanout_subscriptions
    result = ScenarioResult("fanout")
    with amebo_rig(bench, "fanout", subscribers=fan, env=HOLDING) as rig:
        # 1. Publishing with a 100-way fan-out, while delivery is held back.
        rig.reset_endpoint()
        rig.endpoint.hold()
        load = rig.generate(
            rig.spec(concurrency=8, duration=600, warmup=0, max_requests=plan.fanout_events)
        )
        latency = summary(load["latencies_ms"])
        result.rows.append(load_row(f"publish, {fan} subscriptions, c=8", load, latency))
        result.add("publish events/s", load["event_rate"], "events/s")
        result.add("publish p99", latency.get("p99"), "ms")
        result.latency["publish"] = downsample(load["latencies_ms"])
        expected = load["events"] * fan
        time.sleep(0.5)
        released = rig.endpoint.release()
        with bench.progress(expected, "fanout drain", unit="delivery") as bar:
            rig.endpoint.wait_for(expected, timeout=300, on_progress=bar.update)
        times = [t for t in rig.endpoint.received().times if t >= released]
        span = max(times) - released if times else 0.0
        rate = len(times) / span if span > 0 else 0.0
        result.add("drain deliveries/s", rate, "deliveries/s")
        result.rows.append(
            {
                "run": f"drain of {expected:,} deliveries",
                "events/s": None,
                "deliveries/s": round(rate),
            }
        )

        # 2. One event at a time: publish returned -> the last of its deliveries arrived.
        completions = idle_fanout(rig, plan.fanout_idle_events, fan)
        completion = summary(completions)
        result.rows.append(
            {
                "run": f"idle: publish returned -> all {fan} arrived",
                "p50 ms": completion.get("p50"),
                "p90 ms": completion.get("p90"),
                "p99 ms": completion.get("p99"),
            }
        )
        result.add("idle all-arrived p50", completion.get("p50"), "ms")
        result.add("idle all-arrived p99", completion.get("p99"), "ms")
        result.latency[f"idle, all {fan} arrived"] = completions
        result.add("serve peak RSS", rig.peak_rss_mb(), "MB")
        result.memory = rig.memory_series()
    return result


def idle_fanout(rig: Rig, events: int, fan: int) -> list[float]:
    rig.reset_endpoint()
    load = rig.generate(
        rig.spec(
            mode="open",
            rate=1 / IDLE_SPACING,
            duration=events * IDLE_SPACING,
            warmup=0,
            record_returns=True,
        )
    )
    rig.endpoint.wait_for(load["events"] * fan, timeout=120)
    received = rig.endpoint.received()
    last: dict[int, float] = {}
    counts: dict[int, int] = {}
    for seq, at in zip(received.seqs, received.times, strict=True):
        last[seq] = max(last.get(seq, at), at)
        counts[seq] = counts.get(seq, 0) + 1
    return [
        (last[seq] - returned) * 1000.0
        for seq, returned in load["returned"]
        if counts.get(seq) == fan
    ]
