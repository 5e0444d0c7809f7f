"""Properties of the validation and wire-format code, checked on generated inputs.

For any JSON document: a schema either accepts it or names places that exist in it; JSON
pointers round-trip; the envelope is valid JSON carrying the payload unchanged; a Standard
Webhooks verifier accepts what amebo signs (and nothing altered); encryption round-trips.
"""

from __future__ import annotations

import base64
import datetime
import json
import os
import uuid
from typing import Any

import orjson
import pytest
import standardwebhooks
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from amebo.delivery import encryption
from amebo.delivery.envelope import Message, body, wrap
from amebo.errors import json_pointer
from amebo.schemas import MAX_DETAILS, compile_schema, violations

settings.register_profile(
    "amebo",
    max_examples=int(os.environ.get("AMEBO_HYPOTHESIS_EXAMPLES", "60")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile("amebo")

# JSON as PostgreSQL's jsonb stores it: no NUL in text, integers within what orjson writes.
text = st.text(st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00"), max_size=12)
scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | text
)
documents = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(text, inner, max_size=4),
    max_leaves=20,
)
objects = st.dictionaries(text, documents, max_size=5)


def parse_pointer(pointer: str) -> list[str]:
    """RFC 6901, section 4: split on '/', then '~1' to '/' and '~0' to '~' in that order."""
    if pointer == "":
        return []
    assert pointer.startswith("/"), pointer
    return [part.replace("~1", "/").replace("~0", "~") for part in pointer[1:].split("/")]


def resolve(document: Any, pointer: str) -> Any:
    value = document
    for token in parse_pointer(pointer):
        if isinstance(value, dict):
            value = value[token]
        elif isinstance(value, list):
            assert token.isdigit() and (token == "0" or not token.startswith("0")), token
            value = value[int(token)]
        else:
            raise KeyError(f"{pointer!r} passes through a scalar")
    return value


@given(st.lists(text | st.integers(min_value=0, max_value=10**6), max_size=6))
def test_json_pointer_round_trips(path: list[str | int]) -> None:
    assert parse_pointer(json_pointer(path)) == [str(part) for part in path]


SCHEMAS = [
    {"type": "object"},
    {"type": "object", "required": ["email"], "properties": {"email": {"type": "string"}}},
    {
        "type": "object",
        "additionalProperties": False,
        "properties": {"a/b": {"type": "integer"}, "~x": {"type": "array"}},
    },
    {"type": "array", "items": {"type": "object", "required": ["id"]}, "maxItems": 3},
    {
        "type": "object",
        "properties": {
            "nested": {
                "type": "object",
                "properties": {"deep": {"type": "array", "items": {"type": "string"}}},
                "required": ["deep"],
            }
        },
        "patternProperties": {"^n": {"type": ["object", "null"]}},
    },
    {"anyOf": [{"type": "string", "maxLength": 3}, {"type": "number", "minimum": 0}]},
    {"enum": [1, "two", None]},
    False,
]
VALIDATORS = [compile_schema(schema) for schema in SCHEMAS]


@pytest.mark.parametrize("index", range(len(SCHEMAS)))
@given(document=documents | objects)
def test_violations_point_inside_the_document(index: int, document: Any) -> None:
    validator = VALIDATORS[index]
    details = violations(validator, document, "/payload")
    assert (details == []) == validator.is_valid(document)
    assert len(details) <= MAX_DETAILS
    wrapped = {"payload": document}
    for detail in details:
        assert detail.message
        if detail.message == "is required":
            # Names the missing member: its parent exists and is an object without it.
            parent, _, name = detail.pointer.rpartition("/")
            container = resolve(wrapped, parent)
            assert isinstance(container, dict)
            assert parse_pointer("/" + name)[0] not in container
        else:
            resolve(wrapped, detail.pointer)


def _message(payload_json: str, **changes: Any) -> Message:
    fields: dict[str, Any] = {
        "delivery_id": uuid.uuid4(),
        "event_id": uuid.uuid4(),
        "subscription_id": uuid.uuid4(),
        "attempt": 0,
        "action": "orders.v1.placed",
        "application": "shop",
        "published_at": datetime.datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=datetime.UTC),
        "payload_json": payload_json,
        "handler": "http://127.0.0.1:9/hook",
        "secret": "whsec_" + base64.b64encode(bytes(range(32))).decode(),
        "previous_secret": None,
        "encryption_key": None,
        "max_retries": 7,
        "retry_schedule": None,
    }
    fields.update(changes)
    return Message(**fields)


@given(
    payload=documents,
    action=text.filter(bool),
    application=text.filter(bool),
    spaced=st.booleans(),
)
def test_envelope_is_json_whose_data_is_the_payload(
    payload: Any, action: str, application: str, spaced: bool
) -> None:
    # The payload arrives as jsonb's text output (spaced) or compact: both splice in unchanged.
    payload_json = json.dumps(payload) if spaced else orjson.dumps(payload).decode()
    message = _message(payload_json, action=action, application=application)
    envelope = orjson.loads(body(message))
    assert envelope["data"] == json.loads(payload_json)
    assert envelope["id"] == str(message.event_id)
    assert envelope["type"] == action
    assert envelope["application"] == application
    assert datetime.datetime.fromisoformat(envelope["timestamp"]) == message.published_at
    assert set(envelope) == {"id", "type", "application", "timestamp", "data"}


secrets = st.binary(min_size=16, max_size=64).map(
    lambda raw: "whsec_" + base64.b64encode(raw).decode()
)


@given(payload=documents, secret=secrets, previous=st.none() | secrets, tamper=st.integers(0, 99))
def test_standard_webhooks_verifies_what_amebo_signs(
    payload: Any, secret: str, previous: str | None, tamper: int
) -> None:
    message = _message(orjson.dumps(payload).decode(), secret=secret, previous_secret=previous)
    envelope = wrap(message)
    headers = dict(envelope.headers)
    # Every key in use verifies alone: the subscriber may hold either during a rotation.
    for key in filter(None, (secret, previous)):
        verified = standardwebhooks.Webhook(key).verify(envelope.body, headers)
        assert verified == orjson.loads(envelope.body)
    altered = bytearray(envelope.body)
    # An ASCII byte, flipped, stays ASCII: the verifier must refuse it, not fail to decode it.
    ascii_at = [i for i, byte in enumerate(altered) if byte < 0x80]
    altered[ascii_at[tamper % len(ascii_at)]] ^= 0x01
    with pytest.raises(standardwebhooks.webhooks.WebhookVerificationError):
        standardwebhooks.Webhook(secret).verify(bytes(altered), headers)
    wrong = "whsec_" + base64.b64encode(b"another key, same length, 32 b!").decode()
    if wrong not in (secret, previous):
        with pytest.raises(standardwebhooks.webhooks.WebhookVerificationError):
            standardwebhooks.Webhook(wrong).verify(envelope.body, headers)


keys = st.binary(min_size=32, max_size=32).map(
    lambda raw: base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
)


# jwcrypto takes an empty plaintext for a failed decryption; an envelope is never empty.
@given(plaintext=st.binary(min_size=1, max_size=2048), key=keys, other=keys)
def test_encryption_round_trips_and_needs_the_key(plaintext: bytes, key: str, other: str) -> None:
    sealed = encryption.encrypt(plaintext, key)
    assert sealed.count(b".") == 4  # JWE compact serialisation: five parts
    assert encryption.decrypt(sealed, key) == plaintext
    if other != key:
        with pytest.raises(Exception, match=r"(?i)decrypt|tag|invalid"):
            encryption.decrypt(sealed, other)


@given(payload=documents, key=keys)
def test_an_encrypted_envelope_opens_to_the_plain_one(payload: Any, key: str) -> None:
    message = _message(orjson.dumps(payload).decode(), encryption_key=key)
    envelope = wrap(message)
    assert envelope.headers["content-type"] == encryption.CONTENT_TYPE
    assert encryption.decrypt(envelope.body, key) == body(message)
    # The signature covers the bytes sent, so it verifies before anything is decrypted.
    webhook = standardwebhooks.Webhook(message.secret)
    webhook.verify(envelope.body, dict(envelope.headers), json_parse=False)
