"""The delivery HTTP client (amebo/sinks/http1.py) against real sockets on loopback.

Each endpoint here answers with exact bytes, so the wire shapes a subscriber may send are
the ones tested: keep-alive, a body delimited by the end of the connection, an interim 1xx,
a body larger than amebo reads, an idle connection the server closed. Every test runs on
asyncio's loop and on uvloop's, which ``amebo serve`` uses.
"""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import ssl
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest
import uvloop
import yarl
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from amebo.sinks.http1 import Http1Client, ResponseCutShort
from amebo.sinks.policy import NetworkPolicy, PolicyViolation

NO_CONTENT = b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n"
Answer = Callable[[int], bytes]  # request number -> the bytes to send back


@pytest.fixture(params=["asyncio", "uvloop"])
def run(request: pytest.FixtureRequest) -> Callable[[Coroutine[Any, Any, None]], None]:
    runner = asyncio.run if request.param == "asyncio" else uvloop.run
    return lambda coroutine: runner(coroutine)


class Endpoint:
    """Reads each request whole (by its Content-Length), then writes ``answer(n)``; an answer
    ending in ``CLOSE`` has the connection closed after it."""

    CLOSE = b"<close>"

    def __init__(self, answer: Answer) -> None:
        self.answer = answer
        self.requests: list[bytes] = []
        self.connections = 0
        self.writers: list[asyncio.StreamWriter] = []
        self.server: asyncio.Server | None = None

    async def start(self, tls: ssl.SSLContext | None = None) -> int:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=tls)
        return int(self.server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        for writer in self.writers:
            writer.close()
        if self.server is not None:
            self.server.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.writers.append(writer)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(
                    int(line.split(b":", 1)[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                )
                self.requests.append(head + await reader.readexactly(length))
                answer = self.answer(len(self.requests))
                closing = answer.endswith(self.CLOSE)
                writer.write(answer.removesuffix(self.CLOSE))
                await writer.drain()
                if closing:
                    writer.close()
                    return
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()


async def _with(answer: Answer, test: Callable[[Endpoint, yarl.URL], Awaitable[None]]) -> None:
    endpoint = Endpoint(answer)
    port = await endpoint.start()
    try:
        await test(endpoint, yarl.URL(f"http://127.0.0.1:{port}/hooks/a?x=1"))
    finally:
        await endpoint.stop()


def _post(client: Http1Client, url: yarl.URL) -> Awaitable[Any]:
    return client.post(url, b'{"n":1}', {"content-type": "application/json"})


def test_requests_share_one_kept_alive_connection(run: Any) -> None:
    async def test(endpoint: Endpoint, url: yarl.URL) -> None:
        client = Http1Client(timeout=5, per_origin=4)
        for _ in range(5):
            assert (await _post(client, url)).status == 204
        await client.close()
        assert endpoint.connections == 1
        first = endpoint.requests[0]
        assert first.startswith(b"POST /hooks/a?x=1 HTTP/1.1\r\n")
        assert f"host: {url.host}:{url.port}\r\n".encode() in first
        assert first.endswith(b'\r\n\r\n{"n":1}')

    run(_with(lambda n: NO_CONTENT, test))


def test_a_body_ended_by_closing_the_connection_is_a_whole_response(run: Any) -> None:
    async def test(endpoint: Endpoint, url: yarl.URL) -> None:
        client = Http1Client(timeout=5, per_origin=4)
        response = await _post(client, url)
        assert (response.status, response.excerpt) == (200, b"done")
        assert (await _post(client, url)).status == 200  # on a new connection
        assert endpoint.connections == 2

    run(_with(lambda n: b"HTTP/1.1 200 OK\r\n\r\ndone" + Endpoint.CLOSE, test))


def test_a_body_cut_short_fails(run: Any) -> None:
    async def test(endpoint: Endpoint, url: yarl.URL) -> None:
        with pytest.raises(ResponseCutShort):
            await _post(Http1Client(timeout=5, per_origin=4), url)

    run(_with(lambda n: b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n{" + Endpoint.CLOSE, test))


def test_a_closed_connection_without_an_answer_fails(run: Any) -> None:
    async def test(endpoint: Endpoint, url: yarl.URL) -> None:
        with pytest.raises(ConnectionResetError):
            await _post(Http1Client(timeout=5, per_origin=4), url)

    run(_with(lambda n: Endpoint.CLOSE, test))


def test_an_interim_response_is_skipped(run: Any) -> None:
    async def test(endpoint: Endpoint, url: yarl.URL) -> None:
        client = Http1Client(timeout=5, per_origin=4)
        assert (await _post(client, url)).status == 204
        assert (await _post(client, url)).status == 204

    run(_with(lambda n: b"HTTP/1.1 100 Continue\r\n\r\n" + NO_CONTENT, test))


def test_a_large_body_is_read_only_so_far_and_its_connection_dropped(run: Any) -> None:
    body = b"x" * 200_000

    async def test(endpoint: Endpoint, url: yarl.URL) -> None:
        client = Http1Client(timeout=5, per_origin=4)
        response = await _post(client, url)
        assert response.status == 200
        assert response.excerpt == b"x" * 1024
        assert (await _post(client, url)).status == 200
        assert endpoint.connections == 2

    answer = b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n" % len(body) + body
    run(_with(lambda n: answer, test))


def test_retry_after_is_read(run: Any) -> None:
    async def test(endpoint: Endpoint, url: yarl.URL) -> None:
        response = await _post(Http1Client(timeout=5, per_origin=4), url)
        assert (response.status, response.retry_after) == (503, "7")

    run(_with(lambda n: b"HTTP/1.1 503 Busy\r\nRetry-After: 7\r\ncontent-length: 0\r\n\r\n", test))


def test_a_connection_the_server_closed_while_idle_is_not_reused(run: Any) -> None:
    async def test(endpoint: Endpoint, url: yarl.URL) -> None:
        client = Http1Client(timeout=5, per_origin=4)
        assert (await _post(client, url)).status == 204
        for writer in endpoint.writers:
            writer.close()  # the server ends its idle keep-alive connection
        deadline = asyncio.get_running_loop().time() + 5
        while any(c.open for q in client._idle.values() for c in q):  # seen by the loop soon
            assert asyncio.get_running_loop().time() < deadline
            await asyncio.sleep(0.01)
        assert (await _post(client, url)).status == 204
        assert endpoint.connections == 2

    run(_with(lambda n: NO_CONTENT, test))


def test_a_slow_answer_times_out(run: Any) -> None:
    async def test(endpoint: Endpoint, url: yarl.URL) -> None:
        with pytest.raises(TimeoutError):
            await _post(Http1Client(timeout=0.2, per_origin=4), url)

    run(_with(lambda n: b"", test))  # reads the request, never answers


def test_an_invalid_response_fails(run: Any) -> None:
    async def test(endpoint: Endpoint, url: yarl.URL) -> None:
        with pytest.raises(ConnectionError):
            await _post(Http1Client(timeout=5, per_origin=4), url)

    run(_with(lambda n: b"SMTP ready\r\n\r\n", test))


def test_a_header_with_a_line_break_is_never_sent(run: Any) -> None:
    async def test(endpoint: Endpoint, url: yarl.URL) -> None:
        client = Http1Client(timeout=5, per_origin=4)
        with pytest.raises(ValueError, match="line break"):
            await client.post(url, b"{}", {"x-injected": "a\r\nhost: elsewhere"})
        assert endpoint.connections == 0

    run(_with(lambda n: NO_CONTENT, test))


def test_the_policy_refuses_a_denied_address_before_connecting(run: Any) -> None:
    async def test(endpoint: Endpoint, url: yarl.URL) -> None:
        policy = NetworkPolicy.build([], ["127.0.0.0/8"], hardened=False)
        client = Http1Client(timeout=5, per_origin=4, policy=policy)
        with pytest.raises(PolicyViolation):
            await _post(client, url)
        with pytest.raises(PolicyViolation):
            await _post(client, url.with_host("localhost"))  # a name, checked once resolved
        assert endpoint.connections == 0

    run(_with(lambda n: NO_CONTENT, test))


def _certificate(folder: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "amebo test")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def test_tls_certificates_are_verified(run: Any, tmp_path: Path) -> None:
    cert, key = _certificate(tmp_path)
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(cert, key)

    async def test() -> None:
        endpoint = Endpoint(lambda n: NO_CONTENT)
        port = await endpoint.start(server_tls)
        url = yarl.URL(f"https://127.0.0.1:{port}/hooks")
        try:
            untrusting = Http1Client(timeout=5, per_origin=4)
            with pytest.raises(ssl.SSLCertVerificationError):
                await _post(untrusting, url)
            trusting = Http1Client(
                timeout=5, per_origin=4, tls=ssl.create_default_context(cafile=str(cert))
            )
            assert (await _post(trusting, url)).status == 204
            await trusting.close()
        finally:
            await endpoint.stop()

    run(test())
