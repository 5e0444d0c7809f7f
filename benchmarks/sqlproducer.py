"""SQL producers, run as their own process: ``python -m benchmarks.sqlproducer SPEC OUT``.

Each producer is a connection that publishes the way a service sharing amebo's database
does: ``SELECT amebo.publish(action, payload)`` committed on its own (autocommit). Closed
loop: ``producers`` connections back to back. Open loop: one publish due every 1/``rate``
seconds on one connection. Records when each commit returned, on CLOCK_MONOTONIC.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psycopg

from benchmarks.loadgen import BIN, PAD

PUBLISH = "SELECT amebo.publish(%s, %s::jsonb)"


@dataclasses.dataclass
class ProducerSpec:
    database_url: str
    action: str
    mode: str = "closed"  # closed | open
    producers: int = 1
    rate: float = 0.0
    duration: float = 2.0
    seq_start: int = 0


def payload(seq: int) -> str:
    return (
        f'{{"seq": {seq}, "customer_id": {seq}, "email": "user{seq}@example.com", "pad": "{PAD}"}}'
    )


class Producers:
    def __init__(self, spec: ProducerSpec) -> None:
        self.spec = spec
        self.seq = spec.seq_start
        self.committed: list[tuple[int, float]] = []
        self.latencies: list[float] = []
        self.bins: collections.Counter[int] = collections.Counter()
        self.errors: collections.Counter[str] = collections.Counter()
        self.started = 0.0

    async def publish(self, conn: psycopg.AsyncConnection[Any], due: float) -> None:
        seq = self.seq
        self.seq += 1
        try:
            await conn.execute(PUBLISH, (self.spec.action, payload(seq)))
        except psycopg.Error as error:
            self.errors[type(error).__name__] += 1
            return
        now = time.monotonic()
        self.committed.append((seq, now))
        self.latencies.append((now - due) * 1000.0)
        self.bins[int((now - self.started) / BIN)] += 1

    async def closed_one(self, deadline: float) -> None:
        async with await psycopg.AsyncConnection.connect(
            self.spec.database_url, autocommit=True
        ) as conn:
            while (now := time.monotonic()) < deadline:
                await self.publish(conn, now)

    async def open_one(self, deadline: float) -> None:
        async with await psycopg.AsyncConnection.connect(
            self.spec.database_url, autocommit=True
        ) as conn:
            interval = 1.0 / self.spec.rate
            due = time.monotonic()
            while due < deadline:
                await asyncio.sleep(max(0.0, due - time.monotonic()))
                await self.publish(conn, due)
                due += interval

    async def run(self) -> dict[str, Any]:
        self.started = time.monotonic()
        deadline = self.started + self.spec.duration
        if self.spec.mode == "open":
            await self.open_one(deadline)
        else:
            await asyncio.gather(*(self.closed_one(deadline) for _ in range(self.spec.producers)))
        ended = time.monotonic()
        bins = int((ended - self.started) / BIN) + 1
        return {
            "committed": self.committed,
            "latencies_ms": self.latencies,
            "rate": len(self.committed) / (ended - self.started),
            "errors": dict(self.errors),
            "started": self.started,
            "seq_end": self.seq,
            "timeline": [[round(i * BIN, 3), self.bins.get(i, 0) / BIN] for i in range(bins)],
        }


def produce(spec: ProducerSpec, workdir: Path) -> dict[str, Any]:
    """Runs the producers in their own process and returns what they measured."""
    with tempfile.NamedTemporaryFile(
        "w", suffix=".json", dir=workdir, prefix="producers-", delete=False
    ) as handle:
        json.dump(dataclasses.asdict(spec), handle)
        spec_path = Path(handle.name)
    out_path = spec_path.with_suffix(".out.json")
    try:
        done = subprocess.run(
            [sys.executable, "-m", "benchmarks.sqlproducer", str(spec_path), str(out_path)],
            capture_output=True,
            text=True,
            timeout=spec.duration + 90,
        )
        if done.returncode != 0:
            raise RuntimeError(f"SQL producers failed: {done.stderr.strip()[-2000:]}")
        result: dict[str, Any] = json.loads(out_path.read_text())
    finally:
        spec_path.unlink(missing_ok=True)
        out_path.unlink(missing_ok=True)
    return result


def main() -> None:
    spec = ProducerSpec(**json.loads(Path(sys.argv[1]).read_text()))
    result = asyncio.run(Producers(spec).run())
    Path(sys.argv[2]).write_text(json.dumps(result))


if __name__ == "__main__":
    main()
