"""A real HTTP endpoint for tests: records every request and answers as it is told."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable

from aiohttp import web


@dataclasses.dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


Responder = Callable[[web.Request, bytes], Awaitable[web.StreamResponse]]


async def _ok(request: web.Request, body: bytes) -> web.StreamResponse:
    return web.Response(status=204)


class Receiver:
    def __init__(self) -> None:
        self.received: list[Received] = []
        self.respond: Responder = _ok
        self._changed = asyncio.Condition()
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        response = await self.respond(request, body)
        async with self._changed:
            self.received.append(Received(request.path, dict(request.headers), body))
            self._changed.notify_all()
        return response

    async def wait_for(self, count: int, timeout: float = 10.0) -> list[Received]:
        """Wait (on a signal, not a sleep) until ``count`` requests have arrived."""
        async with self._changed:
            await asyncio.wait_for(
                self._changed.wait_for(lambda: len(self.received) >= count), timeout
            )
        return list(self.received)
