"""`amebo serve` with no database configured: an embedded PostgreSQL whose data survives
restarts and which is stopped, with all its processes, when amebo stops."""

from __future__ import annotations

from pathlib import Path

import aiohttp
import psutil

from tests.acceptance.conftest import Start
from tests.acceptance.process import ADMIN_TOKEN, Amebo, environment, free_port
from tests.conftest import wait_until

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def _postmaster(data: Path) -> psutil.Process:
    pid = int((data / "postmaster.pid").read_text().splitlines()[0])
    return psutil.Process(pid)


def _postgres_processes(data: Path) -> list[psutil.Process]:
    """The server for ``data`` and every backend it forked."""
    found = []
    for process in psutil.process_iter(["cmdline"]):
        cmdline = process.info["cmdline"] or []
        if any(str(data) in part for part in cmdline) and "postgres" in Path(cmdline[0]).name:
            found.append(process)
            found.extend(process.children(recursive=True))
    return found


async def _start(start_amebo: Start, folder: Path, *args: str) -> tuple[Amebo, str]:
    env = environment(
        AMEBO_DATA_DIR=str(folder),
        AMEBO_ADMIN_TOKEN=ADMIN_TOKEN,
        AMEBO_ADDRESS=f"127.0.0.1:{free_port()}",
    )
    amebo = await start_amebo(["serve", *args], env)
    # The first start runs initdb: slower than a plain start.
    address = await amebo.listening(timeout=110)
    assert _postgres_processes(folder / "postgres"), "the check below would prove nothing"
    return amebo, address


async def _stopped_cleanly(amebo: Amebo, data: Path) -> None:
    postmaster = _postmaster(data)
    family = [postmaster, *postmaster.children(recursive=True)]
    assert await amebo.stop() == 0
    assert not (data / "postmaster.pid").exists()
    assert not [p for p in family if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    assert _postgres_processes(data) == []


async def test_data_survives_a_restart_and_postgres_stops_with_amebo(
    start_amebo: Start, tmp_path: Path
) -> None:
    folder = tmp_path / "amebo-data"
    data = folder / "postgres"

    first, address = await _start(start_amebo, folder)
    assert f"amebo: embedded PostgreSQL, data in {data}" in first.out
    async with aiohttp.ClientSession(address) as http:
        body = {"application": "kept", "secret": "kept-secret-0001", "address": "http://kept.local"}
        async with http.post("/v1/applications", json=body, headers=ADMIN) as response:
            assert response.status == 201, await response.text()
    await _stopped_cleanly(first, data)

    # Again with --workers 2: the child connects to the parent's embedded server.
    second, address = await _start(start_amebo, folder, "--workers", "2")
    await wait_until(lambda: len(second.children()) >= 2, timeout=60)
    async with aiohttp.ClientSession(
        address, connector=aiohttp.TCPConnector(force_close=True)
    ) as http:
        for _ in range(20):
            async with http.get("/v1/applications/kept", headers=ADMIN) as response:
                assert response.status == 200, await response.text()
    await _stopped_cleanly(second, data)


async def test_server_left_by_a_killed_amebo_is_stopped_by_the_next(
    start_amebo: Start, tmp_path: Path
) -> None:
    folder = tmp_path / "amebo-data"
    data = folder / "postgres"
    killed, _ = await _start(start_amebo, folder)
    await killed.kill()
    assert _postmaster(data).is_running(), "nobody was left to stop it"

    survivor, _ = await _start(start_amebo, folder)
    await _stopped_cleanly(survivor, data)
