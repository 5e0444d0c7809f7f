"""Who is calling: the operator (Bearer admin token) or an application (Basic name:secret).

A verified application secret is remembered (see ``amebo.auth.VerifiedLogins``), so only the
first request with a given secret pays for bcrypt, and that runs off the event loop.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import dataclasses

from aiohttp import web

from amebo import auth, registry
from amebo.api.state import STATE
from amebo.errors import Forbidden, Unauthenticated


@dataclasses.dataclass(frozen=True)
class Caller:
    application: str | None  # None for the operator

    @property
    def is_admin(self) -> bool:
        return self.application is None


ADMIN = Caller(application=None)


async def caller(request: web.Request) -> Caller:
    header = request.headers.get("Authorization", "")
    if not header.isascii():
        # Basic credentials are base64 and tokens are ASCII; other bytes arrive as
        # surrogates that cannot even be hashed.
        raise Unauthenticated("the Authorization header must be ASCII")
    scheme, _, credentials = header.partition(" ")
    scheme = scheme.lower()
    credentials = credentials.strip()
    limits = request.app[STATE].login_limits
    if scheme == "bearer" and credentials:
        if await _admin_token_valid(request, credentials):
            return ADMIN
        limits.check(None, request.remote)
        limits.failed(None, request.remote)
        raise Unauthenticated("the bearer token is not valid")
    if scheme == "basic" and credentials:
        name, secret = _basic(credentials)
        state = request.app[STATE]
        if state.logins.fresh(name, secret):
            return Caller(application=name)
        async with state.pool.connection() as conn:
            secret_hash = await registry.application_secret_hash(conn, name)
        if secret_hash is not None and state.logins.known(name, secret, secret_hash):
            state.logins.remember(name, secret, secret_hash)
            return Caller(application=name)
        # Only now would bcrypt run: a guesser past the limit is refused before it does.
        limits.check(name, request.remote)
        if secret_hash is None:
            # Spend the same time as a real check, so names cannot be probed by timing.
            await asyncio.to_thread(auth.check_secret, secret, _DUMMY_HASH)
        elif await asyncio.to_thread(auth.check_secret, secret, secret_hash):
            state.logins.remember(name, secret, secret_hash)
            return Caller(application=name)
        limits.failed(name, request.remote)
        raise Unauthenticated("unknown application or wrong secret")
    raise Unauthenticated(
        "send Authorization: Basic base64(application:secret), or Bearer <admin token>"
    )


async def admin(request: web.Request) -> Caller:
    who = await caller(request)
    if not who.is_admin:
        raise Forbidden("only the operator (admin token) may do this")
    return who


async def _admin_token_valid(request: web.Request, token: str) -> bool:
    state = request.app[STATE]
    if state.admin_token is not None and auth.same(token, state.admin_token):
        return True
    async with state.pool.connection() as conn:
        return await registry.admin_token_valid(conn, token)


def _basic(credentials: str) -> tuple[str, str]:
    try:
        decoded = base64.b64decode(credentials, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise Unauthenticated("the Basic credentials are not valid base64 of name:secret") from None
    name, sep, secret = decoded.partition(":")
    if not sep or not name:
        raise Unauthenticated("the Basic credentials must be application:secret")
    if "\x00" in decoded:
        raise Unauthenticated("the Basic credentials may not contain NUL")
    return name, secret


_DUMMY_HASH = auth.hash_secret("not-a-real-secret")
