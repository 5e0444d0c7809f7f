"""The receiving endpoint, run as its own process: ``python -m benchmarks.endpoint PORT``.

Every POST outside ``/_bench/`` is a delivery: it is answered 204 and its arrival recorded as
(monotonic time, seq), the ``seq`` read from the body whatever envelope carries it (amebo's
``data``, the original's ``payload``, procrastinate's bare payload). CLOCK_MONOTONIC is one
clock for every process on the host, so these times compare with the load generator's.

It speaks just enough HTTP/1.1 over an asyncio protocol to stay far faster than what it
receives from: an aiohttp endpoint tops out near the drain rates measured here, and would
measure itself. ``--aiohttp`` serves a bare aiohttp endpoint instead, for the peers scenario's
reference figure. ``/_bench/hold`` keeps deliveries unanswered until ``/_bench/release``: a
backlog builds up in the sender while the endpoint is "down", without failures or retries.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import re
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson

from benchmarks.processes import child, free_port, wait_http

SEQ = re.compile(rb'"seq": ?(\d+)')
NO_CONTENT = b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n"
BAD_REQUEST = b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"


class Recorder:
    def __init__(self) -> None:
        self.times: list[float] = []
        self.seqs: list[int] = []
        self.paths: dict[str, int] = {}
        self.held: list[Callable[[], None]] | None = None
        self.released_at: float | None = None

    def deliver(self, path: str, body: bytes) -> None:
        self.times.append(time.monotonic())
        match = SEQ.search(body)
        self.seqs.append(int(match.group(1)) if match else -1)
        self.paths[path] = self.paths.get(path, 0) + 1

    def control(self, method: str, path: str) -> bytes | None:
        """The JSON answer of a /_bench/ call, or None for 204."""
        if path == "/_bench/count":
            return orjson.dumps({"count": len(self.times)})
        if path == "/_bench/received":
            return orjson.dumps(
                {
                    "times": self.times,
                    "seqs": self.seqs,
                    "paths": self.paths,
                    "released_at": self.released_at,
                }
            )
        if path == "/_bench/reset":
            self.times, self.seqs, self.paths = [], [], {}
            self.released_at = None
        elif path == "/_bench/hold":
            self.held = []
        elif path == "/_bench/release":
            self.released_at = time.monotonic()
            waiting, self.held = self.held or [], None
            for answer in waiting:
                answer()  # a sender that gave up meanwhile closed its side: nothing to answer
            return orjson.dumps({"released_at": self.released_at})
        return None


class HttpServer(asyncio.Protocol):
    def __init__(self, recorder: Recorder) -> None:
        self._recorder = recorder
        self._buffer = bytearray()
        self._transport: Any = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        while self._transport is not None and not self._transport.is_closing():
            end = self._buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(self._buffer[:end]).lower()
            marker = head.find(b"content-length:")
            length = 0
            if marker >= 0:
                stop = head.find(b"\r\n", marker)
                length = int(head[marker + 15 : stop if stop >= 0 else None])
            elif b"transfer-encoding:" in head:
                self._transport.write(BAD_REQUEST)
                self._transport.close()
                return
            total = end + 4 + length
            if len(self._buffer) < total:
                return
            line = bytes(self._buffer[: head.find(b"\r\n")]).split(b" ")
            body = bytes(self._buffer[end + 4 : total])
            del self._buffer[:total]
            self._handle(line[0].decode(), line[1].decode(), body, b"connection: close" in head)

    def _handle(self, method: str, path: str, body: bytes, close: bool) -> None:
        transport = self._transport
        if path.startswith("/_bench/"):
            answer = self._recorder.control(method, path)
            if answer is None:
                transport.write(NO_CONTENT)
            else:
                transport.write(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
                    + str(len(answer)).encode()
                    + b"\r\n\r\n"
                    + answer
                )
        else:
            self._recorder.deliver(path, body)
            if self._recorder.held is not None:
                self._recorder.held.append(lambda: _answer(transport))
                return
            transport.write(NO_CONTENT)
        if close:
            transport.close()


def _answer(transport: Any) -> None:
    if not transport.is_closing():
        transport.write(NO_CONTENT)


async def serve_lean(port: int) -> None:
    recorder = Recorder()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: HttpServer(recorder), "127.0.0.1", port, backlog=2048)
    async with server:
        await server.serve_forever()


async def serve_aiohttp(port: int) -> None:
    from aiohttp import web

    async def bare(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(status=204)

    async def count(request: web.Request) -> web.Response:
        return web.json_response({"count": 0})

    app = web.Application()
    app.add_routes([web.get("/_bench/count", count), web.post("/{tail:.*}", bare)])
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port, backlog=2048).start()
    await asyncio.Event().wait()


@dataclasses.dataclass(frozen=True)
class Received:
    times: list[float]
    seqs: list[int]
    paths: dict[str, int]
    released_at: float | None


class Endpoint:
    """The harness's handle on a running endpoint process."""

    def __init__(self, port: int, pid: int) -> None:
        self.port = port
        self.pid = pid
        self.base = f"http://127.0.0.1:{port}"

    def _call(self, method: str, path: str) -> Any:
        request = urllib.request.Request(self.base + path, method=method)
        with urllib.request.urlopen(request, timeout=30) as response:
            raw = response.read()
        return json.loads(raw) if raw else None

    def url(self, path: str = "/hooks/bench") -> str:
        return self.base + path

    def count(self) -> int:
        return int(self._call("GET", "/_bench/count")["count"])

    def received(self) -> Received:
        return Received(**self._call("GET", "/_bench/received"))

    def reset(self) -> None:
        self._call("POST", "/_bench/reset")

    def hold(self) -> None:
        self._call("POST", "/_bench/hold")

    def release(self) -> float:
        return float(self._call("POST", "/_bench/release")["released_at"])

    def wait_for(
        self, count: int, timeout: float, on_progress: Callable[[int], object] | None = None
    ) -> bool:
        """Until ``count`` deliveries arrived (True) or ``timeout`` passed (False)."""
        deadline = time.monotonic() + timeout
        seen = 0
        while time.monotonic() < deadline:
            now_count = self.count()
            if on_progress is not None and now_count != seen:
                on_progress(now_count - seen)
            seen = now_count
            if seen >= count:
                return True
            time.sleep(0.05)
        return False


@contextmanager
def endpoint(log_dir: Path, kind: str = "lean") -> Iterator[Endpoint]:
    port = free_port()
    argv = [sys.executable, "-m", "benchmarks.endpoint", str(port)]
    if kind == "aiohttp":
        argv.append("--aiohttp")
    with child(f"endpoint-{kind}", argv, log_dir) as proc:
        wait_http(f"http://127.0.0.1:{port}/_bench/count", proc, timeout=30)
        yield Endpoint(port, proc.pid)


def main() -> None:
    port = int(sys.argv[1])
    serve = serve_aiohttp if "--aiohttp" in sys.argv[2:] else serve_lean
    try:
        import uvloop
    except ImportError:
        asyncio.run(serve(port))
        return
    uvloop.run(serve(port))


if __name__ == "__main__":
    main()
