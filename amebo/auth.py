"""Credentials: application secrets (bcrypt), operator tokens, and a cache of verified logins.

bcrypt is deliberately slow, so a verified (application, secret) pair is remembered by a
SHA-256 of the secret: a later request with the same secret costs a hash, not a bcrypt.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

import bcrypt


def _prehash(secret: str) -> bytes:
    # bcrypt reads at most 72 bytes; a SHA-256 first lets long secrets count in full.
    return base64.b64encode(hashlib.sha256(secret.encode()).digest())


def hash_secret(secret: str) -> str:
    return bcrypt.hashpw(_prehash(secret), bcrypt.gensalt(rounds=10)).decode()


def check_secret(secret: str, secret_hash: str) -> bool:
    try:
        return bcrypt.checkpw(_prehash(secret), secret_hash.encode())
    except ValueError:
        return False


def token_hash(token: str) -> str:
    """Operator tokens are long and random, so a plain SHA-256 is enough to store them."""
    return hashlib.sha256(token.encode()).hexdigest()


def new_admin_token() -> str:
    return "amebo_" + secrets.token_urlsafe(32)


def new_signing_secret() -> str:
    """A Standard Webhooks secret: 'whsec_' and 32 random bytes in base64."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


class VerifiedLogins:
    """Remembers which (application, secret digest) pairs passed bcrypt, per stored hash."""

    def __init__(self, capacity: int = 10_000) -> None:
        self._capacity = capacity
        self._verified: dict[tuple[str, bytes], str] = {}

    @staticmethod
    def _key(application: str, secret: str) -> tuple[str, bytes]:
        return application, hashlib.sha256(secret.encode()).digest()

    def known(self, application: str, secret: str, secret_hash: str) -> bool:
        remembered = self._verified.get(self._key(application, secret))
        return remembered is not None and hmac.compare_digest(remembered, secret_hash)

    def remember(self, application: str, secret: str, secret_hash: str) -> None:
        if len(self._verified) >= self._capacity:
            self._verified.pop(next(iter(self._verified)))
        self._verified[self._key(application, secret)] = secret_hash
