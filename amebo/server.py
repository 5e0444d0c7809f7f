"""Running amebo as a process: ``serve`` (API and delivery) or ``worker`` (delivery only).

Each process has its own pool; ``--workers N`` starts N processes that share the listening
port (SO_REUSEPORT), and any number of them, on any hosts, can share one database.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import signal
from collections.abc import Coroutine
from typing import Any

import psycopg
import structlog
from aiohttp import web

from amebo import logs, registry
from amebo.config import Settings
from amebo.publishing import ActionCatalog
from amebo.runtime import build_relay, build_worker, open_pool, running

log = structlog.get_logger(__name__)


async def _until_stopped() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()


async def serve_async(
    settings: Settings, url: str, reuse_port: bool = False, announce_token: bool = True
) -> None:
    async with running(settings, url) as runtime:
        if announce_token and settings.admin_token is None:
            async with runtime.pool.connection() as conn:
                token = await registry.ensure_admin_token(conn)
            if token is not None:
                print(f"amebo: admin token (shown once, store it now): {token}", flush=True)
        runner = web.AppRunner(runtime.app, access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, settings.host, settings.port, reuse_port=reuse_port or None)
        try:
            await site.start()
            log.info("amebo listening", address=f"http://{settings.host}:{settings.port}")
            print(f"amebo: listening on http://{settings.host}:{settings.port}", flush=True)
            await _until_stopped()
        finally:
            log.info("amebo stopping")
            await runner.cleanup()


async def worker_async(settings: Settings, url: str) -> None:
    async with open_pool(url, max_size=6) as pool:
        worker = build_worker(pool, settings, url)
        relay = build_relay(pool, settings, url, ActionCatalog(pool), worker)
        worker.start()
        relay.start()
        print("amebo: delivery worker running", flush=True)
        try:
            await _until_stopped()
        finally:
            await relay.stop()
            await worker.stop()
            await worker.close_sink()


def _child(settings: Settings, url: str) -> None:
    logs.configure(settings.log_level)
    with contextlib.suppress(KeyboardInterrupt):
        run(serve_async(settings, url, reuse_port=True, announce_token=False))


def serve(settings: Settings, url: str) -> None:
    children = []
    if settings.workers > 1:
        context = multiprocessing.get_context("spawn")
        for _ in range(settings.workers - 1):
            child = context.Process(target=_child, args=(settings, url), daemon=True)
            child.start()
            children.append(child)
    try:
        run(serve_async(settings, url, reuse_port=settings.workers > 1))
    finally:
        for child in children:
            child.terminate()
        for child in children:
            child.join(timeout=10)


def run(coroutine: Coroutine[Any, Any, None]) -> None:
    try:
        import uvloop
    except ImportError:
        asyncio.run(coroutine)
        return
    uvloop.run(coroutine)


def check_database(url: str) -> None:
    """Fail fast, in one line, when the database cannot be reached."""
    try:
        with psycopg.connect(url, connect_timeout=5) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as error:
        text = str(error).strip()
        reason = text.splitlines()[0] if text else type(error).__name__
        raise SystemExit(f"amebo: cannot connect to the database: {reason}") from None
