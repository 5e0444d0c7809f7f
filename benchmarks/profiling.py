"""``--profile``: where a scenario's time goes, in amebo and in PostgreSQL.

py-spy samples the ``amebo serve`` process for as long as it runs (it needs ptrace rights;
as root or with ``kernel.yama.ptrace_scope=0``). ``pg_stat_statements`` ranks statements by
total execution time when the server preloads it (``shared_preload_libraries``); it cannot
be enabled per database, so on a server without it this part says so and is skipped.
"""

from __future__ import annotations

import collections
import contextlib
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg

TOP_STATEMENTS = """
SELECT calls, total_exec_time, mean_exec_time, rows, query
FROM pg_stat_statements
WHERE query NOT ILIKE '%%pg_stat_statements%%'
ORDER BY total_exec_time DESC
LIMIT %(limit)s
"""


def py_spy() -> str | None:
    beside = Path(sys.executable).parent / "py-spy"
    return str(beside) if beside.exists() else shutil.which("py-spy")


@contextlib.contextmanager
def sampled(pid: int, output: Path, found: dict[str, Any]) -> Iterator[None]:
    """Samples ``pid`` with py-spy until the block ends; puts the top frames in ``found``."""
    binary = py_spy()
    if binary is None:
        found["error"] = "py-spy is not installed (pip install py-spy)"
        yield
        return
    spy = subprocess.Popen(
        [
            binary,
            "record",
            "--pid",
            str(pid),
            "--rate",
            "100",
            "--format",
            "raw",
            "--output",
            str(output),
            "--subprocesses",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        yield
    finally:
        spy.send_signal(signal.SIGINT)  # py-spy writes what it has, then exits
        try:
            _, errors = spy.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            spy.kill()
            _, errors = spy.communicate()
        if output.exists():
            found.update(top_frames(output))
        else:
            found["error"] = f"py-spy wrote nothing: {errors.decode(errors='replace')[-300:]}"


def top_frames(collapsed: Path, limit: int = 15) -> dict[str, Any]:
    """Leaf frames (where the CPU was) and amebo's frames with what they called (inclusive)."""
    leaf: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    total = 0
    for line in collapsed.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        frames = stack.split(";")
        leaf[frames[-1]] += count
        for frame in set(frames):
            if "amebo/" in frame:
                inclusive[frame] += count
    if not total:
        return {"samples": 0}

    def share(counter: collections.Counter[str]) -> list[list[Any]]:
        return [[round(100.0 * n / total, 1), frame] for frame, n in counter.most_common(limit)]

    return {"samples": total, "leaf": share(leaf), "amebo_inclusive": share(inclusive)}


def reset_statements(admin_url: str) -> str | None:
    """Clears pg_stat_statements; returns why it cannot be used, if it cannot."""
    try:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            row = conn.execute("SHOW shared_preload_libraries").fetchone()
            if row is None or "pg_stat_statements" not in row[0]:
                return "pg_stat_statements is not in this server's shared_preload_libraries"
            conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
            conn.execute("SELECT pg_stat_statements_reset()")
    except psycopg.Error as error:
        return f"pg_stat_statements unavailable: {str(error).strip().splitlines()[0]}"
    return None


def top_statements(admin_url: str, limit: int = 12) -> list[dict[str, Any]]:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        rows = conn.execute(TOP_STATEMENTS, {"limit": limit}).fetchall()
    return [
        {
            "calls": calls,
            "total ms": round(total, 1),
            "mean ms": round(mean, 3),
            "rows": count,
            "query": " ".join(query.split())[:140],
        }
        for calls, total, mean, count, query in rows
    ]
