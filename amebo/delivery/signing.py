"""Standard Webhooks v1 signatures: HMAC-SHA256 over "id.timestamp.body"."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable

PREFIX = "whsec_"


def secret_key(secret: str) -> bytes:
    encoded = secret.removeprefix(PREFIX)
    return base64.b64decode(encoded)


def sign(key: bytes, message_id: str, timestamp: int, body: bytes) -> str:
    signed = b"%s.%d.%s" % (message_id.encode(), timestamp, body)
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def signature_header(keys: Iterable[bytes], message_id: str, timestamp: int, body: bytes) -> str:
    """Space-separated signatures, one per key (several while a secret is being rotated)."""
    return " ".join(sign(key, message_id, timestamp, body) for key in keys)
