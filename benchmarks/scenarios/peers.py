"""``peers``: the same work done by others in the same run, and amebo's figures as ratios.

(a) The machine's raw limits: pgbench committing single-row INSERTs into a jsonb table at
amebo's publish concurrencies; a bare aiohttp endpoint's request rate; and the harness's own
endpoint, which shows how fast the load generator alone can go. (b) procrastinate draining
jobs that POST the payload to the same endpoint. (c) The original amebo 0.9.6: publish,
idle delivery latency and drain, through its own API.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from typing import Any

from benchmarks.bench import Bench
from benchmarks.endpoint import endpoint
from benchmarks.loadgen import Spec, generate
from benchmarks.peers import original, procrastinate_peer, raw
from benchmarks.results import ScenarioResult
from benchmarks.scenarios.latency import delivery_latencies
from benchmarks.stats import downsample, steady_rate, summary, timeline


def run(bench: Bench) -> ScenarioResult:
    result = ScenarioResult("peers")
    steps: list[tuple[str, Callable[[Bench, ScenarioResult], None]]] = [
        ("raw limits", raw_limits),
        ("procrastinate", procrastinate),
        ("original amebo", original_amebo),
    ]
    seconds = result.data.setdefault("seconds", {})
    for label, step in steps:
        started = time.monotonic()
        try:
            step(bench, result)
        except Exception as error:  # one peer that cannot run must not hide the others
            result.notes.append(f"{label} could not be measured: {type(error).__name__}: {error}")
        seconds[label] = round(time.monotonic() - started, 1)
    ratios(bench, result)
    return result


def raw_limits(bench: Bench, result: ScenarioResult) -> None:
    plan = bench.plan
    with (
        bench.database("peers_raw") as url,
        bench.progress(len(plan.publish_concurrency) + 2, "peers: raw limits", unit="run") as bar,
    ):
        for concurrency in plan.publish_concurrency:
            measured = raw.insert_commits(url, concurrency, plan.raw_seconds, bench.logs)
            if "error" in measured:
                result.notes.append(f"pgbench at c={concurrency}: {measured['error']}")
            else:
                result.rows.append(
                    {
                        "peer": f"raw INSERT commits (pgbench), c={concurrency}",
                        "rate /s": measured["commits_s"],
                        "latency": f"{measured['latency_avg_ms']:.2f} ms mean",
                    }
                )
                result.add(f"raw INSERT c={concurrency} commits/s", measured["commits_s"], "/s")
            bar.update(1)
        for kind, label in (("aiohttp", "bare aiohttp endpoint"), ("lean", "harness endpoint")):
            measured = raw.endpoint_rate(kind, 32, plan.raw_seconds, bench.logs)
            result.rows.append(
                {
                    "peer": f"{label}, c=32 (load generator alone)",
                    "rate /s": measured["requests_s"],
                    "latency": f"{measured['p50_ms']:.2f} ms p50",
                    "note": f"generator used {measured['generator_cores']:.2f} cores",
                }
            )
            result.add(f"{label} requests/s", measured["requests_s"], "/s")
            bar.update(1)


def procrastinate(bench: Bench, result: ScenarioResult) -> None:
    plan = bench.plan
    with (
        bench.database("peers_procrastinate") as url,
        endpoint(bench.logs) as receiver,
        bench.progress(plan.procrastinate_jobs, "peers: procrastinate", unit="job") as bar,
    ):
        measured = procrastinate_peer.drain(
            url,
            receiver,
            plan.procrastinate_jobs,
            plan.procrastinate_concurrency,
            bench.logs,
            bar.update,
        )
    result.rows.append(
        {
            "peer": f"procrastinate drain, {measured['jobs']:,} jobs, "
            f"concurrency {measured['concurrency']}",
            "rate /s": measured["deliveries_s"],
            "note": f"worker used {measured['worker_cores']:.2f} cores"
            + ("" if measured["complete"] else f"; only {measured['arrived']} arrived"),
        }
    )
    result.add("procrastinate deliveries/s", measured["deliveries_s"], "/s")
    result.throughput["procrastinate drain"] = measured["timeline"]


def original_amebo(bench: Bench, result: ScenarioResult) -> None:
    """Idle latency, then drain, then publish last: its slow delivery of what the publish
    run sends is then nobody's wait."""
    plan = bench.plan
    why_not = original.install(bench.say)
    if why_not:
        raise RuntimeError(why_not)
    with (
        bench.database("peers_original") as url,
        endpoint(bench.logs) as receiver,
        original.original(url, bench.logs) as peer,
    ):
        peer.register(receiver.base)
        base = Spec(
            host="127.0.0.1",
            port=peer.port,
            path="/v1/events",
            headers=peer.publish_headers,
            action=original.ACTION,
            warmup=plan.warmup,
            extra_json=',"deduper":"d{seq}"',
        )
        seq = _original_idle(bench, result, receiver, base)
        seq = _original_drain(bench, result, peer, receiver, _with(base, seq_start=seq))
        load = generate(
            _with(base, concurrency=8, duration=plan.publish_seconds, seq_start=seq), bench.logs
        )
        publish = summary(load["latencies_ms"])
        result.rows.append(
            {
                "peer": "original amebo 0.9.6: publish, c=8",
                "rate /s": load["event_rate"],
                "latency": f"{publish.get('p50', 0):.1f} ms p50, "
                f"{publish.get('p99', 0):.1f} ms p99",
            }
        )
        result.add("original publish c=8 events/s", load["event_rate"], "/s")


def _original_idle(bench: Bench, result: ScenarioResult, receiver: Any, base: Spec) -> int:
    """One event at a time, as in amebo's "idle": publish returned -> endpoint received."""
    receiver.reset()
    idle = generate(
        _with(base, mode="open", rate=5.0, duration=1.5, record_returns=True), bench.logs
    )
    receiver.wait_for(sum(idle["statuses"].values()), timeout=60)
    latencies, missing = delivery_latencies(idle, receiver.received())
    idle_summary = summary(latencies)
    result.rows.append(
        {
            "peer": "original amebo 0.9.6: idle delivery latency",
            "latency": f"{idle_summary.get('p50', 0):.1f} ms p50, "
            f"{idle_summary.get('p99', 0):.1f} ms p99",
            "note": f"{missing} not delivered within 60 s" if missing else "",
        }
    )
    result.add("original idle delivery p50", idle_summary.get("p50"), "ms")
    result.add("original idle delivery p99", idle_summary.get("p99"), "ms")
    result.latency["original idle delivery"] = downsample(latencies)
    return int(idle["seq_end"])


def _original_drain(
    bench: Bench, result: ScenarioResult, peer: original.Original, receiver: Any, base: Spec
) -> int:
    """A backlog published asleep (its ``sleep_until``), then woken all at once."""
    receiver.reset()
    load = generate(
        _with(
            base,
            concurrency=8,
            duration=300,
            warmup=0,
            max_requests=bench.plan.original_backlog,
            extra_json=',"deduper":"d{seq}","sleep_until":3600',
        ),
        bench.logs,
    )
    published = load["requests"]
    peer.release_sleeping()
    with bench.progress(published, "peers: original drain", unit="delivery") as bar:
        complete = receiver.wait_for(published, timeout=30 + published, on_progress=bar.update)
    times = receiver.received().times
    result.rows.append(
        {
            "peer": f"original amebo 0.9.6: drain, {published:,} events",
            "rate /s": steady_rate(times),
            "note": "" if complete else f"only {len(times)} arrived",
        }
    )
    result.add("original deliveries/s", steady_rate(times), "/s")
    result.throughput["original amebo drain"] = timeline(times, min(times)) if times else []
    return int(load["seq_end"])


def _with(spec: Spec, **changes: Any) -> Spec:
    return dataclasses.replace(spec, **changes)


def ratios(bench: Bench, result: ScenarioResult) -> None:
    """amebo's figures from this run's other scenarios, as multiples of each peer's."""

    def amebo(scenario: str, name: str) -> float | None:
        done = bench.done.get(scenario)
        return None if done is None or done.skipped else done.figure(name)

    pairs = [
        (
            "publish c=32 (deliveries held) / raw INSERT c=32",
            amebo("publish", "c=32 deliveries held events/s"),
            result.figure("raw INSERT c=32 commits/s"),
        ),
        (
            "publish c=32 (delivering) / raw INSERT c=32",
            amebo("publish", "c=32 events/s"),
            result.figure("raw INSERT c=32 commits/s"),
        ),
        (
            "publish c=8 / raw INSERT c=8",
            amebo("publish", "c=8 events/s"),
            result.figure("raw INSERT c=8 commits/s"),
        ),
        (
            "publish c=8 / original publish c=8",
            amebo("publish", "c=8 events/s"),
            result.figure("original publish c=8 events/s"),
        ),
        (
            "drain / procrastinate drain",
            amebo("drain", "deliveries/s"),
            result.figure("procrastinate deliveries/s"),
        ),
        (
            "drain / original drain",
            amebo("drain", "deliveries/s"),
            result.figure("original deliveries/s"),
        ),
        (
            "original idle p50 / amebo idle p50 (latency: higher is better for amebo)",
            result.figure("original idle delivery p50"),
            amebo("latency", "idle delivery p50"),
        ),
        (
            "harness endpoint alone / amebo drain (the endpoint's headroom)",
            result.figure("harness endpoint requests/s"),
            amebo("drain", "deliveries/s"),
        ),
    ]
    missing = []
    for label, mine, theirs in pairs:
        if mine is None or not theirs:
            missing.append(label)
            continue
        result.rows.append({"peer": f"ratio: {label}", "ratio": round(mine / theirs, 2)})
        result.add(f"ratio {label}", mine / theirs, "x")
    if missing:
        result.notes.append(
            "ratios not computed (run the scenarios they need in the same run, e.g. `all`): "
            + "; ".join(missing)
        )
