"""The load generator, run as its own process: ``python -m benchmarks.loadgen SPEC.json OUT.json``.

Closed loop: ``concurrency`` connections, each sending its next request when the last one is
answered. Open loop: requests are due at a fixed ``rate`` whatever happens to earlier ones,
and latency counts from when a request was due, so a slow server cannot hide its queue
(no coordinated omission). Writes its results as JSON to the file named second.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import json
import math
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.httpclient import Connection, RequestTemplate, connect

BIN = 0.1  # seconds per bin of the throughput timeline
PAD = "x" * 64
# 207 is a batch with failed items: not a success here, where every item should pass.
OK = frozenset((200, 201, 204))


@dataclasses.dataclass
class Spec:
    host: str
    port: int
    path: str
    headers: dict[str, str]
    mode: str = "closed"  # closed | open
    body: str = "event"  # event | batch | empty
    action: str = "bench.v1.tick"
    batch_size: int = 1000
    concurrency: int = 1
    rate: float = 0.0
    duration: float = 3.0
    warmup: float = 0.5
    seq_start: int = 0
    record_returns: bool = False
    max_connections: int = 512
    max_requests: int = 0  # stop after this many requests (0: run for the duration)
    # Spliced into each event object, "{seq}" replaced: fields another API requires.
    extra_json: str = ""


def event_body(action: str, seq: int, extra: str = "") -> bytes:
    return (
        f'{{"action":"{action}","payload":{{"seq":{seq},"customer_id":{seq},'
        f'"email":"user{seq}@example.com","pad":"{PAD}"}}{extra.replace("{seq}", str(seq))}}}'
    ).encode()


def batch_body(action: str, first: int, size: int, extra: str = "") -> bytes:
    items = b",".join(event_body(action, first + i, extra) for i in range(size))
    return b'{"events":[' + items + b"]}"


class Run:
    def __init__(self, spec: Spec) -> None:
        self.spec = spec
        self.template = RequestTemplate("POST", spec.host, spec.port, spec.path, spec.headers)
        self.per_request = spec.batch_size if spec.body == "batch" else 1
        self.seq = spec.seq_start
        self.started = 0.0
        self.measure_from = 0.0
        self.deadline = 0.0
        self.latencies: list[float] = []
        self.statuses: collections.Counter[int] = collections.Counter()
        self.errors: collections.Counter[str] = collections.Counter()
        self.bins: collections.Counter[int] = collections.Counter()
        self.returned: list[tuple[int, float]] = []
        self.failures: list[str] = []  # the first few non-2xx answers, for the log
        self.measured_requests = 0
        self.issued = 0
        self.max_late = 0.0

    def more(self) -> bool:
        """Whether another request may be issued (and counts it)."""
        if self.spec.max_requests and self.issued >= self.spec.max_requests:
            return False
        self.issued += 1
        return True

    def next_body(self) -> tuple[int, bytes]:
        seq = self.seq
        self.seq += self.per_request
        if self.spec.body == "batch":
            return seq, batch_body(
                self.spec.action, seq, self.spec.batch_size, self.spec.extra_json
            )
        if self.spec.body == "empty":
            return seq, b"{}"
        return seq, event_body(self.spec.action, seq, self.spec.extra_json)

    async def send(self, conn: Connection, due: float) -> bool:
        seq, body = self.next_body()
        raw = self.template.render(body)
        try:
            status, answer = await conn.request(raw)
        except Exception as error:
            self.errors[type(error).__name__] += 1
            return False
        now = time.monotonic()
        self.statuses[status] += 1
        if status not in OK and len(self.failures) < 3:
            self.failures.append(f"{status}: {answer[:300].decode(errors='replace')}")
        if status in OK:
            self.bins[int((now - self.started) / BIN)] += self.per_request
        if due >= self.measure_from and status in OK:
            self.latencies.append((now - due) * 1000.0)
            self.measured_requests += 1
        if self.spec.record_returns:
            self.returned.append((seq, now))
        return True

    async def closed_worker(self) -> None:
        conn = await connect(self.spec.host, self.spec.port)
        try:
            while True:
                start = time.monotonic()
                if start >= self.deadline or not self.more():
                    return
                if not await self.send(conn, start):
                    conn.close()
                    conn = await connect(self.spec.host, self.spec.port)
        finally:
            conn.close()

    async def closed(self) -> None:
        await asyncio.gather(*(self.closed_worker() for _ in range(self.spec.concurrency)))

    async def open(self) -> None:
        idle: list[Connection] = []
        opened = 0
        tasks: set[asyncio.Task[None]] = set()

        async def one(due: float) -> None:
            nonlocal opened
            if idle:
                conn = idle.pop()
            else:
                opened += 1
                conn = await connect(self.spec.host, self.spec.port)
            if await self.send(conn, due):
                idle.append(conn)
            else:
                conn.close()
                opened -= 1

        interval = 1.0 / self.spec.rate
        sent = 0
        while True:
            now = time.monotonic()
            if now >= self.deadline or (
                self.spec.max_requests and self.issued >= self.spec.max_requests
            ):
                break
            due_count = int((now - self.started) * self.spec.rate) + 1
            while sent < due_count:
                due = self.started + sent * interval
                self.max_late = max(self.max_late, now - due)
                if opened - len(idle) >= self.spec.max_connections:
                    self.errors["generator connection limit"] += 1
                elif self.more():
                    task = asyncio.create_task(one(due))
                    tasks.add(task)
                    task.add_done_callback(tasks.discard)
                sent += 1
            next_due = self.started + sent * interval
            await asyncio.sleep(max(0.0, next_due - time.monotonic()))
        if tasks:
            await asyncio.wait(tasks, timeout=30)
        for conn in idle:
            conn.close()

    async def run(self) -> dict[str, Any]:
        cpu_before = time.process_time()
        self.started = time.monotonic()
        self.measure_from = self.started + self.spec.warmup
        self.deadline = self.measure_from + self.spec.duration
        if self.spec.mode == "open":
            await self.open()
        else:
            await self.closed()
        ended = time.monotonic()
        window = min(ended, self.deadline) - self.measure_from
        timeline_len = math.ceil((ended - self.started) / BIN)
        return {
            "mode": self.spec.mode,
            "concurrency": self.spec.concurrency,
            "offered_rate": self.spec.rate * self.per_request if self.spec.mode == "open" else None,
            "per_request": self.per_request,
            "requests": self.measured_requests,
            "events": self.measured_requests * self.per_request,
            "window_s": window,
            "request_rate": self.measured_requests / window if window > 0 else 0.0,
            "event_rate": self.measured_requests * self.per_request / window if window > 0 else 0.0,
            "latencies_ms": self.latencies,
            "statuses": {str(k): v for k, v in self.statuses.items()},
            "errors": dict(self.errors),
            "failures": self.failures,
            "timeline": [
                [round(i * BIN, 3), self.bins.get(i, 0) / BIN] for i in range(timeline_len)
            ],
            "returned": self.returned,
            "seq_end": self.seq,
            "measure_from": self.measure_from,
            "max_late_ms": self.max_late * 1000.0,
            "cpu_s": time.process_time() - cpu_before,
            "wall_s": ended - self.started,
        }


def generate(spec: Spec, workdir: Path) -> dict[str, Any]:
    """Runs the generator in its own process and returns what it measured."""
    with tempfile.NamedTemporaryFile(
        "w", suffix=".json", dir=workdir, prefix="loadgen-", delete=False
    ) as handle:
        json.dump(dataclasses.asdict(spec), handle)
        spec_path = Path(handle.name)
    # A file, not stdout: uvloop leaves the pipe non-blocking and large writes get cut short.
    out_path = spec_path.with_suffix(".out.json")
    try:
        done = subprocess.run(
            [sys.executable, "-m", "benchmarks.loadgen", str(spec_path), str(out_path)],
            capture_output=True,
            text=True,
            timeout=spec.warmup + spec.duration + 90,
        )
        if done.returncode != 0:
            raise RuntimeError(f"load generator failed: {done.stderr.strip()[-2000:]}")
        result: dict[str, Any] = json.loads(out_path.read_text())
    finally:
        spec_path.unlink(missing_ok=True)
        out_path.unlink(missing_ok=True)
    return result


def main() -> None:
    with open(sys.argv[1]) as handle:
        spec = Spec(**json.load(handle))
    try:
        import uvloop

        result = uvloop.run(Run(spec).run())
    except ImportError:
        result = asyncio.run(Run(spec).run())
    Path(sys.argv[2]).write_text(json.dumps(result))


if __name__ == "__main__":
    main()
