"""What a scenario hands back: headline figures, the raw summaries behind them, and series to
plot."""

from __future__ import annotations

import dataclasses
from typing import Any


@dataclasses.dataclass
class Figure:
    name: str
    value: float | None
    unit: str
    note: str = ""


@dataclasses.dataclass
class ScenarioResult:
    name: str
    figures: list[Figure] = dataclasses.field(default_factory=list)
    # One table per scenario in the report: rows of column -> value.
    rows: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    data: dict[str, Any] = dataclasses.field(default_factory=dict)
    # Plot series: label -> latencies (ms) for distributions; label -> [[s, per s]] for rates.
    latency: dict[str, list[float]] = dataclasses.field(default_factory=dict)
    throughput: dict[str, list[list[float]]] = dataclasses.field(default_factory=dict)
    memory: list[list[float]] = dataclasses.field(default_factory=list)
    notes: list[str] = dataclasses.field(default_factory=list)
    skipped: str | None = None
    started_load: dict[str, float] = dataclasses.field(default_factory=dict)
    seconds: float = 0.0

    def add(self, name: str, value: float | None, unit: str, note: str = "") -> None:
        self.figures.append(Figure(name, value, unit, note))

    def figure(self, name: str) -> float | None:
        for figure in self.figures:
            if figure.name == name:
                return figure.value
        return None


def load_row(label: str, result: dict[str, Any], latency: dict[str, float]) -> dict[str, Any]:
    """One table row for a run of the load generator."""
    failed = sum(n for code, n in result["statuses"].items() if code not in ("200", "201", "204"))
    return {
        "run": label,
        "events/s": round(result["event_rate"]),
        "p50 ms": latency.get("p50"),
        "p90 ms": latency.get("p90"),
        "p99 ms": latency.get("p99"),
        "p99.9 ms": latency.get("p99.9"),
        "failed": failed + sum(result["errors"].values()),
        "serve cores": round(result.get("serve_cores", 0.0), 2),
        "postgres cores": round(result.get("postgres_cores", 0.0), 2),
        "generator cores": round(result.get("generator_cores", 0.0), 2),
    }
