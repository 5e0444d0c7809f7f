"""Payload encryption for subscribers that asked for it: JWE compact, ``dir`` + ``A256GCM``.

The subscriber gives a 256-bit key (base64url, the JWK ``k`` value) when subscribing; every
body sent to it is then a JWE whose plaintext is the usual JSON envelope. jwcrypto does the
cryptography; amebo only chooses the algorithms.
"""

from __future__ import annotations

import base64
import binascii
import functools

from jwcrypto import jwe, jwk

CONTENT_TYPE = "application/jose"
_PROTECTED = '{"alg":"dir","enc":"A256GCM","cty":"application/json"}'


class InvalidKey(ValueError):
    pass


def key_bytes(encoded: str) -> bytes:
    """Decode a base64url (padding optional) 256-bit key, or raise InvalidKey."""
    try:
        raw = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
    except (binascii.Error, ValueError):
        raise InvalidKey("encryption_key must be base64url") from None
    if len(raw) != 32:
        raise InvalidKey(f"encryption_key must be 32 bytes (256 bits), not {len(raw)}")
    return raw


@functools.lru_cache(maxsize=4096)
def _jwk(encoded: str) -> jwk.JWK:
    raw = key_bytes(encoded)
    return jwk.JWK(kty="oct", k=base64.urlsafe_b64encode(raw).rstrip(b"=").decode())


def encrypt(plaintext: bytes, encoded_key: str) -> bytes:
    token = jwe.JWE(plaintext, protected=_PROTECTED)
    token.add_recipient(_jwk(encoded_key))
    compact: str = token.serialize(compact=True)
    return compact.encode()


def decrypt(compact: bytes | str, encoded_key: str) -> bytes:
    """What a subscriber does (and what tests check): the plaintext envelope back."""
    token = jwe.JWE()
    token.deserialize(
        compact.decode() if isinstance(compact, bytes) else compact, _jwk(encoded_key)
    )
    payload: bytes = token.payload
    return payload
