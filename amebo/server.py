"""Running amebo as a process: ``serve`` (API and delivery) or ``worker`` (delivery only).

Each process has its own pool; ``--workers N`` starts N processes that share the listening
port (SO_REUSEPORT), and any number of them, on any hosts, can share one database.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import signal
import socket
from collections.abc import Coroutine
from typing import Any

import psycopg
import structlog
from aiohttp import web

from amebo import logs, registry
from amebo.config import Settings
from amebo.delivery.worker import CHANNEL
from amebo.publishing import ActionCatalog
from amebo.runtime import build_listener, build_relay, build_worker, open_pool, running
from amebo.wakeup import Notifier

log = structlog.get_logger(__name__)


def _stop_requested() -> asyncio.Event:
    """Set on SIGINT or SIGTERM; installed first, so a signal during start-up is not lost."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    parent = multiprocessing.parent_process()
    if parent is not None:
        # A --workers child: its parent may be killed outright, never passing on a SIGTERM.
        loop.add_reader(parent.sentinel, stop.set)
    return stop


async def serve_async(
    settings: Settings, url: str, reuse_port: bool = False, announce_token: bool = True
) -> None:
    stop = _stop_requested()
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
            await stop.wait()
        finally:
            log.info("amebo stopping")
            await runner.cleanup()


async def worker_async(settings: Settings, url: str) -> None:
    stop = _stop_requested()
    async with open_pool(url, max_size=6, statement_timeout=settings.statement_timeout) as pool:
        worker = build_worker(pool, settings)
        notifier = Notifier(url, CHANNEL)
        relay = build_relay(pool, settings, ActionCatalog(pool), worker, notifier)
        listener = build_listener(url, worker, relay, notifier)
        notifier.start()
        worker.start()
        relay.start()
        listener.start()
        print("amebo: delivery worker running", flush=True)
        try:
            await stop.wait()
        finally:
            await listener.stop()
            await relay.stop()
            await notifier.stop()
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
            if child.is_alive():
                child.kill()
                child.join(timeout=5)


def run(coroutine: Coroutine[Any, Any, None]) -> None:
    try:
        import uvloop
    except ImportError:
        asyncio.run(coroutine)
        return
    uvloop.run(coroutine)


class DatabaseUnreachable(Exception):
    pass


def check_database(url: str) -> None:
    """Fail fast, in one line, when the database cannot be reached."""
    try:
        with psycopg.connect(url, connect_timeout=5) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as error:
        text = str(error).strip()
        reason = text.splitlines()[0] if text else type(error).__name__
        raise DatabaseUnreachable(f"cannot connect to the database: {reason}") from None


def check_address(host: str, port: int) -> None:
    """Raise OSError, with a one-line message, if nothing may listen on host:port now.

    The probe binds without SO_REUSEPORT, so it also finds another amebo started with
    ``--workers``, whose sockets would otherwise silently share the port with ours.
    """
    where = f"cannot listen on {host}:{port}"
    try:
        found = socket.getaddrinfo(
            host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
    except socket.gaierror as error:
        raise OSError(f"{where}: {error.strerror}") from None
    for family, kind, protocol, _, address in found:
        with socket.socket(family, kind, protocol) as probe:
            # As the server will: a port whose old connections linger in TIME_WAIT is free.
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                probe.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            try:
                probe.bind(address)
            except OSError as error:
                reason = (error.strerror or str(error)).lower()
                raise OSError(f"{where}: {reason}") from None
