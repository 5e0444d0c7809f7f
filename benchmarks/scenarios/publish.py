"""``publish``: HTTP publish in a closed loop at several concurrencies.

Each event fans out to one subscription, as in use, so delivery competes for the same cores.
Two more runs at concurrency 32 isolate the publish path: one with the endpoint holding its
requests (each event still fans out to a pending delivery, but sending waits, as when
subscribers lag; `drain` measures sending), and one on an action nobody subscribes to.
Between runs, delivery is allowed to catch up.
"""

from __future__ import annotations

from benchmarks.amebo_server import APPLICATION, SCHEMA
from benchmarks.bench import Bench
from benchmarks.results import ScenarioResult, load_row
from benchmarks.rig import amebo_rig
from benchmarks.stats import downsample, summary

UNSUBSCRIBED = "bench.v1.unsubscribed"
HELD = "c=32 deliveries held"


def run(bench: Bench) -> ScenarioResult:
    plan = bench.plan
    result = ScenarioResult("publish")
    with amebo_rig(bench, "publish") as rig:
        rig.amebo.call(
            "POST",
            "/v1/actions",
            {"action": UNSUBSCRIBED, "application": APPLICATION, "schemata": SCHEMA},
        )
        runs = [(f"c={c}", c, None, False) for c in plan.publish_concurrency]
        runs.append((HELD, 32, None, True))
        runs.append(("c=32 unsubscribed", 32, UNSUBSCRIBED, False))
        with bench.progress(len(runs), "publish", unit="run") as bar:
            for label, concurrency, action, held in runs:
                spec = rig.spec(concurrency=concurrency, duration=plan.publish_seconds)
                if action:
                    spec.action = action
                if held:
                    rig.endpoint.hold()
                load = rig.generate(spec)
                if held:
                    rig.endpoint.release()
                latency = summary(load["latencies_ms"])
                result.rows.append(load_row(label, load, latency))
                result.latency[label] = downsample(load["latencies_ms"])
                result.throughput[label] = load["timeline"]
                result.add(f"{label} events/s", load["event_rate"], "events/s")
                for name in ("p50", "p90", "p99", "p99.9"):
                    result.add(f"{label} {name}", latency.get(name), "ms")
                if action is None and not rig.catch_up(timeout=120):
                    result.notes.append(f"after {label}, deliveries had not caught up in 120 s")
                bar.update(1)
        result.add("serve peak RSS", rig.peak_rss_mb(), "MB")
        result.memory = rig.memory_series()
    return result
