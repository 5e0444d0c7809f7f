"""``scale``: publish, latency and drain on an empty log, then again with a large history.

Both rounds run against the same ``amebo serve`` and database, minutes apart, so the only
difference is the history filled in between (10,000,000 events in full mode; see
``benchmarks.backfill``). "change %" is the change in the worse direction: a positive figure
means slower with the large log.
"""

from __future__ import annotations

import time
from typing import Any

from benchmarks import backfill
from benchmarks.amebo_server import ACTION, APPLICATION
from benchmarks.bench import Bench
from benchmarks.results import ScenarioResult
from benchmarks.rig import HOLDING, Rig, amebo_rig
from benchmarks.scenarios.drain import drain
from benchmarks.scenarios.latency import measure
from benchmarks.stats import summary

# (figure, True when higher is better)
COMPARED = (
    ("publish c=32 events/s", True),
    ("publish c=32 p99 ms", False),
    ("idle delivery p50 ms", False),
    ("idle delivery p99 ms", False),
    ("1000/s delivery p99 ms", False),
    ("drain deliveries/s", True),
)


def round_of_figures(rig: Rig) -> dict[str, Any]:
    plan = rig.bench.plan
    figures: dict[str, Any] = {}
    load = rig.generate(rig.spec(concurrency=32, duration=plan.publish_seconds))
    figures["publish c=32 events/s"] = load["event_rate"]
    figures["publish c=32 p99 ms"] = summary(load["latencies_ms"]).get("p99")
    rig.catch_up(timeout=120)
    idle = measure(rig, "idle", plan.idle_rate, plan.scale_idle_seconds)
    idle_summary = summary(idle["delivery"])
    figures["idle delivery p50 ms"] = idle_summary.get("p50")
    figures["idle delivery p99 ms"] = idle_summary.get("p99")
    if plan.scale_busy_latency:
        busy = measure(rig, "1000/s", 1000.0, plan.latency_seconds)
        figures["1000/s delivery p99 ms"] = summary(busy["delivery"]).get("p99")
    figures["drain deliveries/s"] = drain(rig, plan.scale_backlog)["deliveries_s"]
    return figures


def change(before: float | None, after: float | None, higher_is_better: bool) -> float | None:
    if before is None or after is None or before == 0:
        return None
    relative = (after - before) / before * 100.0
    return -relative if higher_is_better else relative


def run(bench: Bench) -> ScenarioResult:
    events = bench.plan.scale_events
    result = ScenarioResult("scale")
    with amebo_rig(bench, "scale", env=HOLDING) as rig:
        started = time.monotonic()
        empty = round_of_figures(rig)
        filling = time.monotonic()
        with bench.progress(events, "scale: filling the log", unit="event") as bar:
            backfill.fill(
                rig.database_url, events, ACTION, APPLICATION, rig.subscriptions[0], bar.update
            )
        filled = time.monotonic()
        result.data["sizes"] = backfill.sizes(rig.database_url)
        full = round_of_figures(rig)
        result.data["seconds"] = {
            "empty round": filling - started,
            "fill": filled - filling,
            "full round": time.monotonic() - filled,
        }
        bench.say(f"   scale: {result.data['seconds']}")
        for name, higher_is_better in COMPARED:
            if name not in empty:
                continue
            delta = change(empty[name], full[name], higher_is_better)
            result.rows.append(
                {
                    "figure": name,
                    "empty log": empty[name],
                    f"{events:,} events": full[name],
                    "change % (worse +)": delta,
                }
            )
            result.add(f"{name} change %", delta, "%")
        result.add("log rows", result.data["sizes"]["log rows"], "rows")
        result.add("serve peak RSS", rig.peak_rss_mb(), "MB")
        result.memory = rig.memory_series()
    result.notes.append(
        "Latency percentiles of short quick-mode runs move by more than 20 % between two "
        "identical runs on a busy machine; judge scale on full-mode figures."
        if bench.plan.mode == "quick"
        else f"Filled with {events:,} events ({result.data['sizes']['log rows']:,} log rows)."
    )
    return result
