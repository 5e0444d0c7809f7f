"""A lean HTTP/1.1 keep-alive client for the load generator.

aiohttp's client spends several times more CPU per request than the servers it would measure
here; on a 2-core machine that CPU is taken from amebo. This client writes pre-built request
bytes and parses only the status line and Content-Length of the answer.
"""

from __future__ import annotations

import asyncio
from typing import Any


class ProtocolError(RuntimeError):
    pass


class Connection(asyncio.Protocol):
    """One keep-alive connection carrying one request at a time."""

    def __init__(self) -> None:
        self._transport: Any = None
        self._buffer = bytearray()
        self._waiter: asyncio.Future[tuple[int, bytes]] | None = None
        self._closed = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # uvloop's transports are not asyncio.Transport subclasses

    def connection_lost(self, exc: Exception | None) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_exception(exc or ProtocolError("connection closed"))
        if not self._closed.done():
            self._closed.set_result(None)

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        self._parse()

    def _parse(self) -> None:
        end = self._buffer.find(b"\r\n\r\n")
        if end < 0 or self._waiter is None:
            return
        head = bytes(self._buffer[:end]).lower()
        marker = head.find(b"content-length:")
        if marker >= 0:
            stop = head.find(b"\r\n", marker)
            total = end + 4 + int(head[marker + 15 : stop if stop >= 0 else None])
            if len(self._buffer) < total:
                return
            body = bytes(self._buffer[end + 4 : total])
        elif b"transfer-encoding: chunked" in head:
            chunked = _dechunk(self._buffer, end + 4)
            if chunked is None:
                return
            body, total = chunked
        else:
            body, total = b"", end + 4
        status = int(self._buffer[9:12])
        del self._buffer[:total]
        waiter, self._waiter = self._waiter, None
        if not waiter.done():
            waiter.set_result((status, body))

    def _fail(self, error: Exception) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_exception(error)
        if self._transport is not None:
            self._transport.close()

    async def request(self, raw: bytes) -> tuple[int, bytes]:
        if self._transport is None or self._transport.is_closing():
            raise ProtocolError("connection closed")
        self._waiter = asyncio.get_running_loop().create_future()
        self._transport.write(raw)
        return await self._waiter

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()


def _dechunk(buffer: bytearray, start: int) -> tuple[bytes, int] | None:
    """(body, end offset) of a complete chunked body from ``start``, or None if incomplete."""
    parts = []
    at = start
    while True:
        line_end = buffer.find(b"\r\n", at)
        if line_end < 0:
            return None
        size = int(bytes(buffer[at:line_end]).split(b";")[0], 16)
        if size == 0:
            # "0\r\n", any trailer lines, then an empty line: one "\r\n\r\n" either way.
            trailer_end = buffer.find(b"\r\n\r\n", line_end)
            return None if trailer_end < 0 else (b"".join(parts), trailer_end + 4)
        chunk_end = line_end + 2 + size
        if len(buffer) < chunk_end + 2:
            return None
        parts.append(bytes(buffer[line_end + 2 : chunk_end]))
        at = chunk_end + 2


async def connect(host: str, port: int) -> Connection:
    loop = asyncio.get_running_loop()
    _, protocol = await loop.create_connection(Connection, host, port)
    return protocol


class RequestTemplate:
    """The request bytes with the body left out, so each request costs one concatenation."""

    def __init__(self, method: str, host: str, port: int, path: str, headers: dict[str, str]):
        lines = [f"{method} {path} HTTP/1.1", f"Host: {host}:{port}"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        self._head = ("\r\n".join(lines) + "\r\nContent-Length: ").encode()

    def render(self, body: bytes) -> bytes:
        return self._head + str(len(body)).encode() + b"\r\n\r\n" + body
