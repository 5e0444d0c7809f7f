"""procrastinate draining a backlog of jobs that each POST their payload to the endpoint."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.endpoint import Endpoint
from benchmarks.processes import child, cpu_seconds
from benchmarks.stats import steady_rate, timeline

APP = "benchmarks.peers.procrastinate_app.app"


def drain(
    database_url: str,
    receiver: Endpoint,
    jobs: int,
    concurrency: int,
    log_dir: Path,
    progress: Any,
) -> dict[str, Any]:
    env = {"BENCH_PROCRASTINATE_URL": database_url}
    deferred = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks.peers.procrastinate_app",
            "defer",
            str(jobs),
            receiver.url("/hooks/procrastinate"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **env},
    )
    if deferred.returncode != 0:
        raise RuntimeError(f"deferring jobs failed: {deferred.stderr.strip()[-1000:]}")
    receiver.reset()
    argv = [
        str(Path(sys.executable).parent / "procrastinate"),
        "--app",
        APP,
        "--log-level",
        "warning",
        "worker",
        "--concurrency",
        str(concurrency),
    ]
    started = time.monotonic()
    with child("procrastinate-worker", argv, log_dir, env) as worker:
        complete = receiver.wait_for(jobs, timeout=600, on_progress=progress)
        cpu = cpu_seconds(worker.pid)
    times = receiver.received().times
    span = max(times) - min(times) if len(times) > 1 else 0.0
    return {
        "jobs": jobs,
        "concurrency": concurrency,
        "arrived": len(times),
        "complete": complete,
        "deliveries_s": steady_rate(times),
        "from_worker_start_s": (max(times) - started) if times else None,
        "worker_cores": cpu / span if span > 0 else 0.0,
        "timeline": timeline(times, min(times)) if times else [],
    }
