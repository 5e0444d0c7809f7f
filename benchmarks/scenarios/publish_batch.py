"""``publish-batch``: POST /v1/events/batch with 1,000 events per request, closed loop.

Run three times: events fanned out to one subscription (delivery then competes for the cores
and falls behind, as it would); the same with the endpoint holding its requests, so each
event still fans out to a pending delivery but sending waits (the ingest rate; `drain`
measures sending); and events nobody subscribes to.
"""

from __future__ import annotations

from benchmarks.amebo_server import APPLICATION, SCHEMA
from benchmarks.bench import Bench
from benchmarks.results import ScenarioResult, load_row
from benchmarks.rig import amebo_rig
from benchmarks.stats import downsample, summary

UNSUBSCRIBED = "bench.v1.unsubscribed"
BATCH = 1000
HELD = "deliveries held"


def run(bench: Bench) -> ScenarioResult:
    plan = bench.plan
    result = ScenarioResult("publish-batch")
    with amebo_rig(bench, "publish-batch") as rig:
        rig.amebo.call(
            "POST",
            "/v1/actions",
            {"action": UNSUBSCRIBED, "application": APPLICATION, "schemata": SCHEMA},
        )
        runs = [
            ("subscribed", None, False),
            (HELD, None, True),
            ("unsubscribed", UNSUBSCRIBED, False),
        ]
        with bench.progress(len(runs), "publish-batch", unit="run") as bar:
            for label, action, held in runs:
                spec = rig.spec(
                    body="batch",
                    batch_size=BATCH,
                    concurrency=plan.batch_concurrency,
                    duration=plan.batch_seconds,
                )
                if action:
                    spec.action = action
                if held:
                    rig.endpoint.hold()
                load = rig.generate(spec)
                if held:
                    rig.endpoint.release()
                latency = summary(load["latencies_ms"])
                row = load_row(f"{label}, c={plan.batch_concurrency}", load, latency)
                result.rows.append(row)
                result.latency[f"{label} (per request of {BATCH})"] = downsample(
                    load["latencies_ms"]
                )
                result.throughput[label] = load["timeline"]
                name = "events/s" if label == "subscribed" else f"{label} events/s"
                result.add(name, load["event_rate"], "events/s")
                result.add(f"{label} request p99", latency.get("p99"), "ms")
                if action is None and not rig.catch_up(timeout=300):
                    result.notes.append(f"after {label}, deliveries had not caught up in 300 s")
                bar.update(1)
        result.add("serve peak RSS", rig.peak_rss_mb(), "MB")
        result.memory = rig.memory_series()
    return result
