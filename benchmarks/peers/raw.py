"""The raw limits of this machine: single-row INSERT commits (pgbench), and how many requests
a bare aiohttp endpoint and the harness's own endpoint answer (the latter shows the load
generator is not what limits amebo's figures)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import psycopg

from benchmarks.endpoint import endpoint
from benchmarks.loadgen import Spec, generate
from benchmarks.stats import summary

TABLE = """
CREATE TABLE raw_events (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    payload jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
)
"""
# The payload amebo's publish scenario sends, so both write the same bytes.
INSERT = (
    'INSERT INTO raw_events (payload) VALUES (\'{"seq": 1, "customer_id": 1, '
    '"email": "user1@example.com", "pad": "' + "x" * 64 + "\"}');\n"
)


def pgbench() -> str | None:
    found = shutil.which("pgbench")
    if found:
        return found
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin/pgbench"))
    return str(candidates[-1]) if candidates else None


def insert_commits(
    database_url: str, concurrency: int, seconds: float, workdir: Path
) -> dict[str, Any]:
    """pgbench: each client commits one single-row INSERT after another."""
    binary = pgbench()
    if binary is None:
        return {"error": "pgbench is not installed"}
    script = workdir / "raw-insert.sql"
    script.write_text(INSERT)
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS raw_events")
        conn.execute(TABLE)
    done = subprocess.run(
        [
            binary,
            "-n",
            "-M",
            "prepared",
            "-c",
            str(concurrency),
            "-j",
            str(min(concurrency, 2)),
            "-T",
            str(max(1, round(seconds))),
            "-f",
            str(script),
            database_url,
        ],
        capture_output=True,
        text=True,
        timeout=seconds + 60,
    )
    tps = re.search(r"tps = ([\d.]+)", done.stdout)
    latency = re.search(r"latency average = ([\d.]+) ms", done.stdout)
    if done.returncode != 0 or tps is None:
        return {"error": (done.stderr or done.stdout).strip().splitlines()[-1:]}
    return {
        "commits_s": float(tps.group(1)),
        "latency_avg_ms": float(latency.group(1)) if latency else None,
    }


def endpoint_rate(kind: str, concurrency: int, seconds: float, workdir: Path) -> dict[str, Any]:
    """The load generator against an endpoint that does nothing: requests/s it answers."""
    with endpoint(workdir, kind) as target:
        load = generate(
            Spec(
                host="127.0.0.1",
                port=target.port,
                path="/hooks/bare",
                headers={"Content-Type": "application/json"},
                concurrency=concurrency,
                duration=seconds,
                warmup=0.3,
            ),
            workdir,
        )
    return {
        "requests_s": load["request_rate"],
        "p50_ms": summary(load["latencies_ms"]).get("p50"),
        "generator_cores": load["cpu_s"] / load["wall_s"] if load["wall_s"] else 0.0,
    }
