"""A lean HTTP/1.1 client for deliveries: keep-alive connections per origin, one request at a
time on each, responses parsed by httptools (llhttp, the parser of Node.js, uvloop and
uvicorn), TLS by the standard library with certificates verified.

Why not aiohttp's client: it cost 240-270 us of CPU per delivery on the benchmark machine,
against 69 us for this one (``python -m benchmarks.client_cost``; ADR 0007), and a drain
pays that cost at its full rate. Only what a webhook POST needs is here:
no redirects (amebo never follows them), cookies, proxies, compression or pipelining.

Addresses are checked against the outbound policy after resolution and the connection is
made to the address that was checked, so a name cannot resolve to one address for the check
and another for the connection.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import functools
import ipaddress
import socket
import ssl
import time
import typing
from collections.abc import Mapping

import httptools
import yarl

from amebo.sinks.policy import NetworkPolicy, PolicyViolation

# Idle connections older than this are closed rather than reused: servers close theirs
# after a while (nginx 75 s, Node.js 5 s), and a request sent into one that is closing fails.
KEEPALIVE_SECONDS = 4.0


class ResponseCutShort(ConnectionError):
    """The connection ended before the response did: the endpoint may not have done the work,
    whatever its status line said."""


class InvalidResponse(ConnectionError):
    """The endpoint answered something that is not HTTP/1.1."""


EXCERPT_BYTES = 1024
# How much of a body is read just to see it end; past this it is not checked, and the
# connection, left mid-body, is closed.
CHECKED_BYTES = 65_536


@dataclasses.dataclass(frozen=True)
class Response:
    status: int
    excerpt: bytes  # the body's first EXCERPT_BYTES
    retry_after: str | None


Origin = tuple[str, str, int]  # scheme, host, port


class _Connection(asyncio.Protocol):
    """One connection; ``exchange`` sends a request and resolves when its response ended."""

    def __init__(self) -> None:
        self._transport: asyncio.Transport | None = None
        self._parser = httptools.HttpResponseParser(self)
        self._waiter: asyncio.Future[Response] | None = None
        self.idle_since = 0.0
        self.reusable = True
        self._reset()

    def _reset(self) -> None:
        self._excerpt = bytearray()
        self._read = 0
        self._answered = False  # any byte of this response arrived
        self._headers_done = False
        self._length_known = False  # Content-Length or chunked: EOF before the end is a cut
        self._retry_after: str | None = None

    @property
    def open(self) -> bool:
        return self._transport is not None and not self._transport.is_closing()

    def exchange(self, request: bytes) -> asyncio.Future[Response]:
        if self._transport is None:
            raise ConnectionResetError("the connection closed before the request was sent")
        self._reset()
        self._waiter = asyncio.get_running_loop().create_future()
        self._transport.write(request)
        return self._waiter

    def close(self) -> None:
        self.reusable = False
        if self._transport is not None:
            self._transport.close()

    # asyncio.Protocol -----------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A TCP transport (uvloop's do not subclass asyncio.Transport, but are one).
        self._transport = typing.cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        if self._waiter is None or self._waiter.done():
            self.close()  # bytes nobody asked for: the connection cannot be trusted now
            return
        self._answered = True
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail(InvalidResponse("the endpoint switched protocols"))
        except httptools.HttpParserError as error:
            self._fail(InvalidResponse(f"invalid HTTP response: {error}"))

    def connection_lost(self, exc: Exception | None) -> None:
        self.reusable = False
        self._transport = None
        if self._waiter is None or self._waiter.done():
            return
        if self._headers_done and not self._length_known:
            self._finish()  # the body was delimited by the end of the connection
        elif self._answered:
            self._fail(ResponseCutShort("the response was cut short"))
        else:
            self._fail(ConnectionResetError("the endpoint closed the connection without answering"))

    # httptools callbacks --------------------------------------------------------------

    def on_header(self, name: bytes, value: bytes) -> None:
        lowered = name.lower()
        if lowered == b"retry-after":
            self._retry_after = value.decode("latin-1")
        elif lowered in (b"content-length", b"transfer-encoding"):
            self._length_known = True

    def on_headers_complete(self) -> None:
        self._headers_done = True

    def on_body(self, body: bytes) -> None:
        room = EXCERPT_BYTES - len(self._excerpt)
        if room > 0:
            self._excerpt += body[:room]
        self._read += len(body)
        if self._read > CHECKED_BYTES:
            self._finish()
            self.close()

    def on_message_complete(self) -> None:
        status = self._parser.get_status_code()
        if 100 <= status < 200:
            self._reset()  # an interim response; the real one follows
            self._answered = True
            return
        if not self._parser.should_keep_alive():
            self.reusable = False
        self._finish()

    def _finish(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(
                Response(self._parser.get_status_code(), bytes(self._excerpt), self._retry_after)
            )

    def _fail(self, error: Exception) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_exception(error)
        self.close()


class Http1Client:
    def __init__(
        self,
        timeout: float,
        per_origin: int,
        policy: NetworkPolicy | None = None,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self._timeout = timeout
        self._per_origin = per_origin
        self._policy = policy or NetworkPolicy()
        self._tls = tls
        self._idle: dict[Origin, collections.deque[_Connection]] = {}
        self._slots: dict[Origin, asyncio.Semaphore] = {}
        self._swept = time.monotonic()

    async def post(self, url: yarl.URL, body: bytes, headers: Mapping[str, str]) -> Response:
        """Raises ``TimeoutError``, ``PolicyViolation``, ``OSError`` (``ConnectionError``s
        included) or ``ValueError``."""
        origin = _origin(url)
        request = _request(url, body, headers)
        slots = self._slots.get(origin)
        if slots is None:
            slots = self._slots[origin] = asyncio.Semaphore(self._per_origin)
        async with slots:
            connection = None
            try:
                async with asyncio.timeout(self._timeout):
                    connection = self._reuse(origin) or await self._connect(origin)
                    response = await connection.exchange(request)
            except BaseException:
                if connection is not None:
                    connection.close()
                raise
            self._release(origin, connection)
            return response

    async def close(self) -> None:
        for idle in self._idle.values():
            for connection in idle:
                connection.close()
        self._idle.clear()

    def _reuse(self, origin: Origin) -> _Connection | None:
        idle = self._idle.get(origin)
        now = time.monotonic()
        while idle:
            connection = idle.pop()  # the most recent: the likeliest still open
            if connection.open and now - connection.idle_since < KEEPALIVE_SECONDS:
                return connection
            connection.close()
        return None

    def _release(self, origin: Origin, connection: _Connection) -> None:
        now = time.monotonic()
        if connection.reusable and connection.open:
            connection.idle_since = now
            self._idle.setdefault(origin, collections.deque()).append(connection)
        else:
            connection.close()
        if now - self._swept > KEEPALIVE_SECONDS:
            self._sweep(now)

    def _sweep(self, now: float) -> None:
        """Closes connections idle too long, for origins that no longer get requests too."""
        self._swept = now
        for origin, idle in list(self._idle.items()):
            while idle and now - idle[0].idle_since >= KEEPALIVE_SECONDS:
                idle.popleft().close()
            if not idle:
                del self._idle[origin]

    async def _connect(self, origin: Origin) -> _Connection:
        scheme, host, port = origin
        loop = asyncio.get_running_loop()
        tls = None
        if scheme == "https":
            tls = self._tls or _default_tls()
        last: OSError | None = None
        for address in await self._addresses(host, port):
            try:
                _, connection = await loop.create_connection(
                    _Connection,
                    address,
                    port,
                    ssl=tls,
                    server_hostname=host if tls else None,
                )
                return connection
            except OSError as error:
                last = error
        raise last or OSError(f"{host} has no address to connect to")

    async def _addresses(self, host: str, port: int) -> list[str]:
        try:
            literal = ipaddress.ip_address(host)
        except ValueError:
            literal = None
        if literal is not None:
            addresses = [str(literal)]
        else:
            found = await asyncio.get_running_loop().getaddrinfo(
                host, port, type=socket.SOCK_STREAM
            )
            addresses = list(dict.fromkeys(str(info[4][0]) for info in found))
        if self._policy.open:
            return addresses
        allowed = [a for a in addresses if self._policy.permits(ipaddress.ip_address(a))]
        if not allowed:
            if literal is not None:
                raise PolicyViolation(f"destination {literal} is denied by the outbound policy")
            raise PolicyViolation(f"{host} resolves only to addresses the outbound policy denies")
        return allowed


def _origin(url: yarl.URL) -> Origin:
    if url.scheme not in ("http", "https") or not url.host:
        raise ValueError(f"not an http(s) URL: {url}")
    return url.scheme, url.host, url.port or (443 if url.scheme == "https" else 80)


def _request(url: yarl.URL, body: bytes, headers: Mapping[str, str]) -> bytes:
    host = url.host or ""
    if ":" in host:
        host = f"[{host}]"
    if not url.is_default_port():
        host = f"{host}:{url.port}"
    lines = [
        f"POST {url.raw_path_qs or '/'} HTTP/1.1",
        f"host: {host}",
        "user-agent: amebo",
        f"content-length: {len(body)}",
    ]
    for name, value in headers.items():
        if "\r" in value or "\n" in value:
            raise ValueError(f"header {name} holds a line break")
        lines.append(f"{name}: {value}")
    return "\r\n".join(lines).encode("latin-1") + b"\r\n\r\n" + body


@functools.cache
def _default_tls() -> ssl.SSLContext:
    return ssl.create_default_context()  # certificates and host names verified
