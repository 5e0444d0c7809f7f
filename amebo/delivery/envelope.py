"""The wire format every sink sends: a JSON envelope around the payload, and its headers."""

from __future__ import annotations

import dataclasses
import datetime
import uuid

import orjson

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
    max_retries: int


@dataclasses.dataclass(frozen=True)
class Envelope:
    body: bytes
    headers: dict[str, str]


def body(message: Message) -> bytes:
    """{"id", "type", "application", "timestamp", "data"}; the payload is spliced in as the
    JSON text stored in the log, never parsed and serialised again."""
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
    timestamp = int((now or datetime.datetime.now(datetime.UTC)).timestamp())
    message_id = str(message.delivery_id)
    return Envelope(
        body=content,
        headers={
            "content-type": "application/json",
            "webhook-id": message_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": signature_header(
                [secret_key(message.secret)], message_id, timestamp, content
            ),
            "amebo-event-id": str(message.event_id),
            "amebo-action": message.action,
            "amebo-attempt": str(message.attempt + 1),
        },
    )
