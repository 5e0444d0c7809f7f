"""The usual set-up of a scenario: a fresh database, an endpoint, ``amebo serve`` on it with
the bench action subscribed to the endpoint, and its memory sampled throughout."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator
from typing import Any

from benchmarks.amebo_server import ACTION, PUBLISH_HEADERS, Amebo, serve
from benchmarks.bench import Bench
from benchmarks.endpoint import Endpoint, endpoint
from benchmarks.loadgen import Spec, generate
from benchmarks.processes import MemorySampler, backend_cpu_seconds, cpu_seconds
from benchmarks.profiling import sampled


@dataclasses.dataclass
class Rig:
    bench: Bench
    database_url: str
    endpoint: Endpoint
    amebo: Amebo
    memory: MemorySampler
    subscriptions: list[str]
    next_seq: int = 0
    published: int = 0  # events accepted so far, warm-up included
    published_at_reset: int = 0  # ... when the endpoint last forgot what it received

    def spec(self, **changes: Any) -> Spec:
        base = Spec(
            host="127.0.0.1",
            port=self.amebo.port,
            path="/v1/events",
            headers=PUBLISH_HEADERS,
            action=ACTION,
            warmup=self.bench.plan.warmup,
            seq_start=self.next_seq,
        )
        if changes.get("body") == "batch":
            base.path = "/v1/events/batch"
        return dataclasses.replace(base, **changes)

    def generate(self, spec: Spec) -> dict[str, Any]:
        """Runs the load generator; adds the CPU the serve process used meanwhile (in cores)."""
        cpu_before = cpu_seconds(self.amebo.pid)
        backends_before = backend_cpu_seconds(self.database)
        result = generate(spec, self.bench.logs)
        used = cpu_seconds(self.amebo.pid) - cpu_before
        backends = backend_cpu_seconds(self.database) - backends_before
        result["serve_cores"] = used / result["wall_s"] if result["wall_s"] else 0.0
        result["postgres_cores"] = backends / result["wall_s"] if result["wall_s"] else 0.0
        result["generator_cores"] = result["cpu_s"] / result["wall_s"] if result["wall_s"] else 0.0
        self.next_seq = int(result["seq_end"])
        accepted = sum(n for code, n in result["statuses"].items() if code in ("200", "201"))
        self.published += accepted * int(result["per_request"])
        return result

    def reset_endpoint(self) -> None:
        self.endpoint.reset()
        self.published_at_reset = self.published

    def catch_up(self, per_event: int = 1, timeout: float = 120.0) -> bool:
        """Until every event published since the endpoint's reset reached it, so the next
        measurement starts with no delivery backlog."""
        expected = (self.published - self.published_at_reset) * per_event
        return self.endpoint.wait_for(expected, timeout)

    @property
    def database(self) -> str:
        return self.database_url.rsplit("/", 1)[-1]

    def peak_rss_mb(self) -> float:
        return self.memory.peak_mb

    def memory_series(self) -> list[list[float]]:
        if not self.memory.samples:
            return []
        origin = self.memory.samples[0][0]
        return [[round(t - origin, 2), round(mb, 1)] for t, mb in self.memory.samples]


# For rigs whose endpoint holds deliveries while a backlog is published: the held requests
# must outlast that (amebo would otherwise time them out and retry), and a lease must outlast
# the send timeout (amebo sends nothing it could not finish within its lease).
HOLDING = {"AMEBO_DELIVERY_TIMEOUT": "600", "AMEBO_LEASE_SECONDS": "1200"}


@contextlib.contextmanager
def profiled(bench: Bench, label: str, pid: int) -> Iterator[None]:
    if not bench.profile:
        yield
        return
    found: dict[str, Any] = {}
    bench.profiles[label] = found
    with sampled(pid, bench.logs / f"py-spy-{label}.txt", found):
        yield


@contextlib.contextmanager
def amebo_rig(
    bench: Bench, label: str, subscribers: int = 1, env: dict[str, str] | None = None
) -> Iterator[Rig]:
    with (
        bench.database(label) as url,
        endpoint(bench.logs) as receiver,
        serve(url, bench.logs, env, name=f"amebo-serve-{label}") as amebo,
        profiled(bench, label, amebo.pid),
        MemorySampler(amebo.pid) as memory,
    ):
        handlers = [receiver.url(f"/hooks/{i}") for i in range(subscribers)]
        ids = amebo.register(handlers)
        yield Rig(bench, url, receiver, amebo, memory, ids)
