"""The goals of issue 5, checked against the figures of one run.

A goal whose figures were not measured in this run (its scenario was not run, or failed) is
reported as such rather than guessed.
"""

from __future__ import annotations

import dataclasses
import operator
from collections.abc import Callable, Mapping

from benchmarks.results import ScenarioResult

Results = Mapping[str, ScenarioResult]


@dataclasses.dataclass(frozen=True)
class Verdict:
    goal: str
    target: str
    measured: float | None
    unit: str
    met: bool | None
    how: str


def _figure(results: Results, scenario: str, name: str) -> float | None:
    result = results.get(scenario)
    return None if result is None or result.skipped else result.figure(name)


def _ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or not denominator:
        return None
    return numerator / denominator


@dataclasses.dataclass(frozen=True)
class Goal:
    goal: str
    target: str
    unit: str
    measure: Callable[[Results], float | None]
    compare: Callable[[float, float], bool]
    bound: float
    how: str

    def check(self, results: Results) -> Verdict:
        value = self.measure(results)
        met = None if value is None else self.compare(value, self.bound)
        return Verdict(self.goal, self.target, value, self.unit, met, self.how)


def _scale_worst(results: Results) -> float | None:
    result = results.get("scale")
    if result is None or result.skipped:
        return None
    changes = [
        f.value for f in result.figures if f.name.endswith("change %") and f.value is not None
    ]
    return max(changes, default=None)


def _peak_rss(results: Results) -> float | None:
    peaks = [
        f.value
        for r in results.values()
        if not r.skipped
        for f in r.figures
        if f.name == "serve peak RSS" and f.value is not None
    ]
    return max(peaks, default=None)


GE, LE = operator.ge, operator.le

GOALS = (
    Goal(
        "publish at concurrency 32",
        ">= 5,000 events/s",
        "events/s",
        lambda r: _figure(r, "publish", "c=32 deliveries held events/s"),
        GE,
        5000,
        "publish: closed loop, 32 connections, each event fanned out to a pending delivery "
        "whose sending waits (drain measures sending)",
    ),
    Goal(
        "publish vs raw INSERT commits at concurrency 32",
        ">= 0.5x",
        "x",
        lambda r: _ratio(
            _figure(r, "publish", "c=32 deliveries held events/s"),
            _figure(r, "peers", "raw INSERT c=32 commits/s"),
        ),
        GE,
        0.5,
        "publish c=32 (deliveries held) / pgbench single-row INSERT c=32",
    ),
    Goal(
        "publish p99 at 1,000 events/s offered",
        "<= 10 ms",
        "ms",
        lambda r: _figure(r, "latency", "1000/s publish p99"),
        LE,
        10,
        "latency: open loop, request due -> response",
    ),
    Goal(
        "publish-batch",
        ">= 30,000 events/s",
        "events/s",
        lambda r: _figure(r, "publish-batch", "deliveries held events/s"),
        GE,
        30000,
        "POST /v1/events/batch, 1,000 events per request, each event fanned out to a pending "
        "delivery whose sending waits",
    ),
    Goal(
        "idle delivery latency p50",
        "<= 2 ms",
        "ms",
        lambda r: _figure(r, "latency", "idle delivery p50"),
        LE,
        2,
        "publish returned -> endpoint received",
    ),
    Goal(
        "idle delivery latency p99",
        "<= 5 ms",
        "ms",
        lambda r: _figure(r, "latency", "idle delivery p99"),
        LE,
        5,
        "publish returned -> endpoint received",
    ),
    Goal(
        "delivery latency p99 at 1,000 events/s offered",
        "<= 10 ms",
        "ms",
        lambda r: _figure(r, "latency", "1000/s delivery p99"),
        LE,
        10,
        "publish returned -> endpoint received",
    ),
    Goal(
        "drain",
        ">= 3,000 deliveries/s",
        "deliveries/s",
        lambda r: _figure(r, "drain", "deliveries/s"),
        GE,
        3000,
        "backlog released to a local endpoint",
    ),
    Goal(
        "drain vs procrastinate",
        ">= 5x",
        "x",
        lambda r: _ratio(
            _figure(r, "drain", "deliveries/s"), _figure(r, "peers", "procrastinate deliveries/s")
        ),
        GE,
        5,
        "amebo drain / procrastinate drain, same endpoint",
    ),
    Goal(
        "drain vs the original amebo 0.9.6",
        ">= 30x",
        "x",
        lambda r: _ratio(
            _figure(r, "drain", "deliveries/s"), _figure(r, "peers", "original deliveries/s")
        ),
        GE,
        30,
        "amebo drain / amebo 0.9.6 drain, same endpoint",
    ),
    Goal(
        "scale: worst change with a large log",
        "<= 20 %",
        "%",
        _scale_worst,
        LE,
        20,
        "worst of publish, latency, drain vs the empty log (worse direction only)",
    ),
    Goal(
        "serve RSS under load",
        "< 200 MB",
        "MB",
        _peak_rss,
        operator.lt,
        200,
        "peak over every scenario, serve process and children",
    ),
)


def evaluate(results: Results) -> list[Verdict]:
    return [goal.check(results) for goal in GOALS]
