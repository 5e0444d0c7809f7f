"""Percentiles and rates from raw samples."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

PERCENTILES = {"p50": 50.0, "p90": 90.0, "p99": 99.0, "p99.9": 99.9}


def summary(latencies_ms: Sequence[float]) -> dict[str, float]:
    if not latencies_ms:
        return {"count": 0}
    values = np.asarray(latencies_ms, dtype=float)
    result = {"count": float(len(values)), "mean": float(values.mean())}
    for name, q in PERCENTILES.items():
        result[name] = float(np.percentile(values, q))
    result["max"] = float(values.max())
    return result


def steady_rate(times: Sequence[float]) -> float:
    """Arrivals per second between the first and the last arrival."""
    if len(times) < 2:
        return 0.0
    span = max(times) - min(times)
    return (len(times) - 1) / span if span > 0 else 0.0


def timeline(times: Sequence[float], origin: float, width: float = 0.1) -> list[list[float]]:
    """[[seconds since origin, arrivals per second], ...] in bins of ``width`` seconds."""
    if not times:
        return []
    offsets = np.asarray(times, dtype=float) - origin
    top = max(float(offsets.max()), 0.0)
    bins = int(top / width) + 1
    counts = np.bincount(np.clip((offsets / width).astype(int), 0, None), minlength=bins)
    return [[round(i * width, 3), float(c) / width] for i, c in enumerate(counts)]


def downsample(values: Sequence[float], limit: int = 20_000) -> list[float]:
    """At most ``limit`` values, evenly picked from the sorted ones, for plots and JSON."""
    if len(values) <= limit:
        return list(values)
    ordered = np.sort(np.asarray(values, dtype=float))
    picks = np.linspace(0, len(ordered) - 1, limit).astype(int)
    return [float(v) for v in ordered[picks]]
