"""PNG plots: latency distributions and throughput over time per scenario, and serve memory."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; never a display

import matplotlib.pyplot as plt
import numpy as np

from benchmarks.results import ScenarioResult


def _latency(result: ScenarioResult, path: Path) -> None:
    figure, (cdf, hist) = plt.subplots(1, 2, figsize=(12, 4.5))
    for label, values in result.latency.items():
        if not values:
            continue
        ordered = np.sort(np.asarray(values, dtype=float))
        positive = np.clip(ordered, 0.01, None)  # log axis; same-millisecond arrivals show at 0.01
        cdf.plot(positive, np.linspace(0, 100, len(ordered)), label=label)
        hist.hist(positive, bins=np.logspace(-2, 4, 120), histtype="step", label=label)
    for axis in (cdf, hist):
        axis.set_xscale("log")
        axis.set_xlabel("latency (ms, log)")
        axis.grid(True, which="both", alpha=0.3)
    cdf.set_ylabel("percentile")
    cdf.set_ylim(0, 100)
    cdf.set_title(f"{result.name}: latency distribution")
    hist.set_ylabel("count")
    hist.set_title(f"{result.name}: latency histogram")
    cdf.legend(fontsize="small")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def _throughput(result: ScenarioResult, path: Path) -> None:
    figure, axis = plt.subplots(figsize=(12, 4.5))
    for label, series in result.throughput.items():
        if series:
            times, rates = zip(*series, strict=True)
            axis.plot(times, rates, label=label, linewidth=1)
    axis.set_xlabel("seconds")
    axis.set_ylabel("per second (100 ms bins)")
    axis.set_title(f"{result.name}: throughput over time")
    axis.grid(True, alpha=0.3)
    axis.legend(fontsize="small")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def _memory(results: Mapping[str, ScenarioResult], path: Path) -> None:
    figure, axis = plt.subplots(figsize=(12, 4))
    for name, result in results.items():
        if result.memory:
            times, mbs = zip(*result.memory, strict=True)
            axis.plot(times, mbs, label=name, linewidth=1)
    axis.axhline(200, color="red", linestyle="--", linewidth=1, label="goal: 200 MB")
    axis.set_xlabel("seconds since serve started")
    axis.set_ylabel("RSS (MB)")
    axis.set_title("amebo serve resident memory")
    axis.grid(True, alpha=0.3)
    axis.legend(fontsize="small")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def write(out: Path, results: Mapping[str, ScenarioResult]) -> dict[str, list[str]]:
    """Writes the plots; returns the file names per scenario (and "memory")."""
    made: dict[str, list[str]] = {}
    for name, result in results.items():
        files = []
        if any(result.latency.values()):
            files.append(f"{name}-latency.png")
            _latency(result, out / files[-1])
        if any(result.throughput.values()):
            files.append(f"{name}-throughput.png")
            _throughput(result, out / files[-1])
        made[name] = files
    if any(r.memory for r in results.values()):
        _memory(results, out / "serve-rss.png")
        made["memory"] = ["serve-rss.png"]
    return made
