"""The wire format every sink sends: a JSON envelope around the payload, and its headers.

The body is ``{"id", "type", "application", "timestamp", "data"}``; for subscribers with an
encryption key it is that JSON encrypted as a JWE. The Standard Webhooks signature is over
the bytes actually sent, and while a secret is being rotated both secrets sign.
"""

from __future__ import annotations

import dataclasses
import datetime
import uuid
from collections.abc import Sequence

import orjson

from amebo.delivery import encryption
from amebo.delivery.signing import secret_key, signature_header


@dataclasses.dataclass(frozen=True)
class Message:
    """One delivery to make: what was claimed, ready to be wrapped and sent."""

    delivery_id: uuid.UUID
    event_id: uuid.UUID
    subscription_id: uuid.UUID
    attempt: int
    action: str
    application: str
    published_at: datetime.datetime
    payload_json: str
    handler: str
    secret: str
    previous_secret: str | None
    encryption_key: str | None
    max_retries: int
    retry_schedule: Sequence[float] | None


@dataclasses.dataclass(frozen=True)
class Envelope:
    body: bytes
    headers: dict[str, str]


def body(message: Message) -> bytes:
    """The payload is spliced in as the JSON text stored in the log: never parsed and
    serialised again on the way out."""
    head = orjson.dumps(
        {
            "id": str(message.event_id),
            "type": message.action,
            "application": message.application,
            "timestamp": message.published_at.isoformat(),
        }
    )
    return head[:-1] + b',"data":' + message.payload_json.encode() + b"}"


def wrap(message: Message, now: datetime.datetime | None = None) -> Envelope:
    content = body(message)
    content_type = "application/json"
    if message.encryption_key:
        content = encryption.encrypt(content, message.encryption_key)
        content_type = encryption.CONTENT_TYPE
    timestamp = int((now or datetime.datetime.now(datetime.UTC)).timestamp())
    message_id = str(message.delivery_id)
    keys = [secret_key(message.secret)]
    if message.previous_secret:
        keys.append(secret_key(message.previous_secret))
    return Envelope(
        body=content,
        headers={
            "content-type": content_type,
            "webhook-id": message_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": signature_header(keys, message_id, timestamp, content),
            "amebo-event-id": str(message.event_id),
            "amebo-action": message.action,
            "amebo-attempt": str(message.attempt + 1),
        },
    )
