"""The database refuses work without going away: statements time out, or the disk is full.

Either surfaces as a 503 problem that says which (never a 500), and once the cause is gone
every event that got a 2xx is delivered.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict

from tests.faults.harness import (
    AmeboProcess,
    Endpoint,
    Publisher,
    processes,
    projections_match_log,
    register,
    scale,
    settled,
    tally,
    until,
)
from tests.faults.postgres import PrivatePostgres, private_postgres

SUBSCRIBERS = ("billing",)
EVENTS = scale(200, 2000)
RATE = scale(100, 100)


async def _publish_once(base_url: str, auth: dict[str, str]) -> tuple[int, str, dict[str, str]]:
    body = {"action": "orders.v1.placed", "payload": {"probe": True}}
    timeout = aiohttp.ClientTimeout(total=15)
    async with (
        aiohttp.ClientSession(timeout=timeout) as session,
        session.post(f"{base_url}/v1/events", json=body, headers=auth) as response,
    ):
        return response.status, await response.text(), dict(response.headers)


async def test_statement_timeout_is_a_clear_503(database_url: str, tmp_path: Path) -> None:
    name = conninfo_to_dict(database_url)["dbname"]
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as admin:
        # Every connection amebo opens from now on gives up on a statement after 300 ms.
        await admin.execute(f"ALTER DATABASE \"{name}\" SET statement_timeout = '300ms'")
    endpoint = Endpoint()
    await endpoint.start()
    try:
        async with processes() as started:
            # amebo's own limit off, so the database's setting is the one in force.
            serve = AmeboProcess("serve", database_url, tmp_path, AMEBO_STATEMENT_TIMEOUT="0")
            started.append(serve)
            await serve.start()
            auth = await register(serve.url, dict.fromkeys(SUBSCRIBERS, endpoint))

            async with await psycopg.AsyncConnection.connect(database_url) as blocker:
                # Nothing can append to the log while this transaction holds the lock.
                await blocker.execute("LOCK TABLE amebo.log IN ACCESS EXCLUSIVE MODE")
                status, text, headers = await _publish_once(serve.url, auth)
                assert status == 503, text
                assert headers["Content-Type"] == "application/problem+json"
                assert headers["Retry-After"]
                assert "took too long" in text

                publisher = Publisher(serve.url, auth)
                publishing = asyncio.create_task(publisher.run(range(EVENTS), RATE))
                await until(lambda: publisher.answers["503"] >= 5, 30, "503s while locked")
                await blocker.rollback()
            await publishing

            accepted = set(publisher.accepted.values())
            await endpoint.wait_for({(e, s) for e in accepted for s in SUBSCRIBERS}, 60)
            result = tally(
                "statement timeout (log locked)", EVENTS, accepted, SUBSCRIBERS, endpoint.delivered
            )
            print(f"  503 answers while the log was locked: {publisher.answers['503']}")
            assert publisher.unavailable.keys() == {
                "the database took too long; retry in 2 seconds"
            }, publisher.unavailable
            assert result.lost == 0
            assert len(accepted) == EVENTS
            assert not publisher.unexpected, publisher.unexpected[:5]
            await settled(database_url)
            assert "unhandled error" not in serve.logs()
        await projections_match_log(database_url)
    finally:
        await endpoint.stop()


# Disk full ---------------------------------------------------------------------------------


@contextlib.contextmanager
def tiny_disk(megabytes: int) -> Iterator[Path]:
    """A tmpfs of ``megabytes``: mounting one takes root (CAP_SYS_ADMIN); skip without it."""
    folder = Path(tempfile.mkdtemp(prefix="amebo-tiny-disk-"))
    if os.geteuid() != 0:
        pytest.skip("simulating a full disk mounts a small tmpfs, which needs root")
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={megabytes}m", "tmpfs", str(folder)],
        capture_output=True,
        check=False,
    )
    if mounted.returncode != 0:
        folder.rmdir()
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False, capture_output=True)
        folder.rmdir()


def fill(folder: Path) -> Path:
    """Writes zeros until the filesystem has no room left; the file frees it when removed."""
    filler = folder / "filler"
    descriptor = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for size in (1 << 20, 4096):  # whole megabytes, then what is left
            with contextlib.suppress(OSError):
                while os.write(descriptor, bytes(size)):
                    pass
    finally:
        os.close(descriptor)
    return filler


@pytest.fixture
def small_postgres() -> Iterator[tuple[PrivatePostgres, Path]]:
    """A private PostgreSQL whose ``amebo`` tables live on a 48 MB tmpfs (its WAL does not,
    so a full table space is an error for the statement, not a crash of the server)."""
    with tiny_disk(48) as disk, private_postgres() as server:
        space = disk / "pg"
        space.mkdir()
        server.own(space)
        server.execute(f"CREATE TABLESPACE tiny LOCATION '{space}'")
        server.execute("CREATE DATABASE amebo_tiny TABLESPACE tiny")
        yield server, disk


async def test_disk_full_is_a_clear_503(
    small_postgres: tuple[PrivatePostgres, Path], tmp_path: Path
) -> None:
    server, disk = small_postgres
    url = server.url("amebo_tiny")
    endpoint = Endpoint()
    await endpoint.start()
    try:
        async with processes() as started:
            serve = AmeboProcess("serve", url, tmp_path)
            started.append(serve)
            await serve.start()
            auth = await register(serve.url, dict.fromkeys(SUBSCRIBERS, endpoint))
            filler = fill(disk)

            publisher = Publisher(serve.url, auth)
            publishing = asyncio.create_task(publisher.run(range(EVENTS), RATE))
            await until(lambda: publisher.answers["503"] >= 5, 60, "503s while the disk is full")
            filler.unlink()
            await publishing
            assert publisher.unavailable.keys() == {
                "the database is short of disk, memory or connections; retry in 10 seconds"
            }, publisher.unavailable

            accepted = set(publisher.accepted.values())
            await endpoint.wait_for({(e, s) for e in accepted for s in SUBSCRIBERS}, 60)
            result = tally("disk full", EVENTS, accepted, SUBSCRIBERS, endpoint.delivered)
            print(f"  503 answers while the disk was full: {publisher.answers['503']}")
            assert result.lost == 0
            assert len(accepted) == EVENTS
            assert not publisher.unexpected, publisher.unexpected[:5]
            await settled(url)
            assert "unhandled error" not in serve.logs()
        await projections_match_log(url)
    finally:
        await endpoint.stop()
