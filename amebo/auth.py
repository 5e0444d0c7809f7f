"""Credentials: application secrets (bcrypt), operator tokens, and a cache of verified logins.

bcrypt is deliberately slow, so a verified (application, secret) pair is remembered by a
SHA-256 of the secret: a later request with the same secret costs a hash, not a bcrypt.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time

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


def fingerprint(secret: str) -> str:
    """Names a secret in the log without revealing it (the secret is random and long)."""
    return "sha256:" + hashlib.sha256(secret.encode()).hexdigest()[:16]


def same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


class VerifiedLogins:
    """Remembers which (application, secret digest) pairs passed bcrypt, and when.

    A pair verified less than ``fresh_for`` seconds ago is accepted without reading the
    stored hash again: that read would cost a database round trip on every request. After
    that, the stored hash is read and compared, so a changed secret takes effect within
    ``fresh_for`` seconds.
    """

    def __init__(self, capacity: int = 10_000, fresh_for: float = 30.0) -> None:
        self._capacity = capacity
        self._fresh_for = fresh_for
        self._verified: dict[tuple[str, bytes], tuple[str, float]] = {}

    @staticmethod
    def _key(application: str, secret: str) -> tuple[str, bytes]:
        return application, hashlib.sha256(secret.encode()).digest()

    def fresh(self, application: str, secret: str) -> bool:
        remembered = self._verified.get(self._key(application, secret))
        return remembered is not None and time.monotonic() - remembered[1] < self._fresh_for

    def known(self, application: str, secret: str, secret_hash: str) -> bool:
        remembered = self._verified.get(self._key(application, secret))
        return remembered is not None and hmac.compare_digest(remembered[0], secret_hash)

    def remember(self, application: str, secret: str, secret_hash: str) -> None:
        key = self._key(application, secret)
        if key not in self._verified and len(self._verified) >= self._capacity:
            self._verified.pop(next(iter(self._verified)))
        self._verified[key] = (secret_hash, time.monotonic())
