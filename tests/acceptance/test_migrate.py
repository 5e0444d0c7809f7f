"""`amebo migrate` on an empty database: everything once, then nothing; also when two
processes run it at the same moment."""

from __future__ import annotations

import subprocess
import time

import psycopg

from amebo.db.migrations import _LOCK_KEY, available_migrations
from tests.acceptance.process import COMMAND, environment, run


def _recorded(url: str) -> list[int]:
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT version FROM amebo.schema_migrations ORDER BY version")
        return [version for (version,) in rows.fetchall()]


def test_migrate_twice_applies_everything_once(empty_database_url: str) -> None:
    expected = [m.version for m in available_migrations()]
    env = environment(AMEBO_DATABASE_URL=empty_database_url)

    first = run(["migrate"], env)
    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith(f"amebo: applied {len(expected)} migration(s): 0001_")
    assert _recorded(empty_database_url) == expected

    second = run(["migrate"], env)
    assert second.returncode == 0, second.stderr
    assert second.stdout.strip() == "amebo: database is up to date"
    assert _recorded(empty_database_url) == expected


def test_two_concurrent_migrations_apply_each_once(empty_database_url: str) -> None:
    env = environment(AMEBO_DATABASE_URL=empty_database_url)
    with psycopg.connect(empty_database_url, autocommit=True) as holder:
        # Hold the migrations' lock until both processes wait on it, so they truly overlap.
        holder.execute("SELECT pg_advisory_lock(%s)", (_LOCK_KEY,))
        processes = [
            subprocess.Popen(
                [*COMMAND, "migrate"],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(2)
        ]
        waiting = "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
        deadline = time.monotonic() + 60
        while holder.execute(waiting).fetchone() != (2,):
            assert time.monotonic() < deadline, "the two migrations never both waited"
            assert all(p.poll() is None for p in processes), "a migration ended early"
            time.sleep(0.05)  # polling the database with a deadline, not waiting for work
        holder.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_KEY,))
    outputs = []
    for process in processes:
        out, err = process.communicate(timeout=120)
        assert process.returncode == 0, err
        outputs.append(out.strip())
    applied = [out for out in outputs if out.startswith("amebo: applied")]
    assert len(applied) == 1, outputs
    assert "amebo: database is up to date" in outputs
    assert _recorded(empty_database_url) == [m.version for m in available_migrations()]
