"""``scale``: publish, latency and drain on an empty log, then again with a large history.

Two ``amebo serve`` processes run side by side, one on an empty database and one on a
database filled with history (10,000,000 events in full mode; see ``benchmarks.backfill``),
and rounds of figures alternate between them. Measuring the empty log first and the large
one minutes later, as this scenario first did, confounded the log's size with the machine's
drift and the fill's after-effects: a p99 of about 2 ms differed by 24-29 % between such
rounds, and by nothing when the same databases were measured interleaved. "change %" is the
change in the worse direction: a positive figure means slower with the large log.
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


def mean_figures(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    names = {name for figures in rounds for name in figures}
    means: dict[str, Any] = {}
    for name in names:
        values = [figures[name] for figures in rounds if figures.get(name) is not None]
        means[name] = sum(values) / len(values) if values else None
    return means


def _listed(rounds: list[dict[str, Any]], name: str) -> str:
    """Each round's figure, in the order taken: the spread behind a mean."""

    def shown(value: float | None) -> str:
        if value is None:
            return "-"
        return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"

    return "; ".join(shown(r.get(name)) for r in rounds)


def run(bench: Bench) -> ScenarioResult:
    events = bench.plan.scale_events
    result = ScenarioResult("scale")
    with (
        amebo_rig(bench, "scale-empty", env=HOLDING) as empty_rig,
        amebo_rig(bench, "scale-filled", env=HOLDING) as filled_rig,
    ):
        started = time.monotonic()
        with bench.progress(events, "scale: filling the log", unit="event") as bar:
            backfill.fill(
                filled_rig.database_url,
                events,
                ACTION,
                APPLICATION,
                filled_rig.subscriptions[0],
                bar.update,
            )
        filled = time.monotonic()
        result.data["sizes"] = backfill.sizes(filled_rig.database_url)
        # Both databases are served at once and measured in alternating order (empty, filled,
        # then filled, empty, ...), so that a drift of the machine's speed during the run, or
        # the wake of the fill, weighs on both alike.
        rounds: dict[str, list[dict[str, Any]]] = {"empty": [], "filled": []}
        for pair in range(bench.plan.scale_pairs):
            order = [("empty", empty_rig), ("filled", filled_rig)]
            for name, rig in order if pair % 2 == 0 else reversed(order):
                rounds[name].append(round_of_figures(rig))
        empty, full = mean_figures(rounds["empty"]), mean_figures(rounds["filled"])
        result.data["rounds"] = rounds
        result.data["seconds"] = {"fill": filled - started, "rounds": time.monotonic() - filled}
        bench.say(f"   scale: {result.data['seconds']}")
        for name, higher_is_better in COMPARED:
            if empty.get(name) is None:
                continue
            delta = change(empty[name], full[name], higher_is_better)
            result.rows.append(
                {
                    "figure": name,
                    "empty log": empty[name],
                    f"{events:,} events": full[name],
                    "change % (worse +)": delta,
                    "rounds, empty": _listed(rounds["empty"], name),
                    "rounds, filled": _listed(rounds["filled"], name),
                }
            )
            result.add(f"{name} change %", delta, "%")
        result.add("log rows", result.data["sizes"]["log rows"], "rows")
        result.add("serve peak RSS", max(empty_rig.peak_rss_mb(), filled_rig.peak_rss_mb()), "MB")
        result.memory = filled_rig.memory_series()
    pairs = bench.plan.scale_pairs
    result.notes.append(
        f"Each figure is the mean of {pairs} round(s) per database, taken in alternating order "
        "against two amebo processes serving an empty and a filled database at once."
    )
    result.notes.append(
        "Latency percentiles of short quick-mode runs move by more than 20 % between two "
        "identical runs on a busy machine; judge scale on full-mode figures."
        if bench.plan.mode == "quick"
        else f"Filled with {events:,} events ({result.data['sizes']['log rows']:,} log rows)."
    )
    return result
