"""JSON Schemas of request bodies, shared by the handlers and the OpenAPI document."""

from __future__ import annotations

from typing import Any

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}$"
HTTP_URL_PATTERN = r"^https?://[^\s/$.?#][^\s]*$"

NAME: dict[str, Any] = {"type": "string", "pattern": NAME_PATTERN, "maxLength": 128}
HTTP_URL: dict[str, Any] = {"type": "string", "pattern": HTTP_URL_PATTERN, "maxLength": 2048}
DESCRIPTION: dict[str, Any] = {"type": "string", "maxLength": 4000}

APPLICATION_NEW: dict[str, Any] = {
    "type": "object",
    "properties": {
        "application": NAME,
        "secret": {"type": "string", "minLength": 8, "maxLength": 1024},
        "address": HTTP_URL,
        "description": DESCRIPTION,
    },
    "required": ["application", "secret", "address"],
    "additionalProperties": False,
}

ACTION_NEW: dict[str, Any] = {
    "type": "object",
    "properties": {
        "action": NAME,
        "application": NAME,
        "schemata": {"type": ["object", "boolean"]},
        "description": DESCRIPTION,
    },
    "required": ["action", "application", "schemata"],
    "additionalProperties": False,
}

SUBSCRIPTION_NEW: dict[str, Any] = {
    "type": "object",
    "properties": {
        "application": NAME,
        "action": NAME,
        "handler": HTTP_URL,
        "max_retries": {"type": "integer", "minimum": 0, "maximum": 100},
        "retry_schedule": {
            "type": "array",
            "items": {"type": "number", "minimum": 0, "maximum": 604800},
            "minItems": 1,
            "maxItems": 50,
        },
        "encryption_key": {
            "type": "string",
            "pattern": "^[A-Za-z0-9_-]{43}=?$",
            "description": "256-bit key, base64url: bodies are then sent as JWE (dir, A256GCM)",
        },
    },
    "required": ["application", "action", "handler"],
    "additionalProperties": False,
}

SUBSCRIPTION_CHANGE: dict[str, Any] = {
    "type": "object",
    "properties": {"active": {"const": False}},
    "required": ["active"],
    "additionalProperties": False,
}

EVENT_NEW: dict[str, Any] = {
    "type": "object",
    "properties": {
        "action": NAME,
        "payload": True,
        "deduper": {"type": "string", "minLength": 1, "maxLength": 512},
    },
    "required": ["action", "payload"],
    "additionalProperties": False,
}

EVENT_BATCH: dict[str, Any] = {
    "type": "object",
    "properties": {
        "events": {"type": "array", "minItems": 1, "maxItems": 1000, "items": EVENT_NEW},
    },
    "required": ["events"],
    "additionalProperties": False,
}

SECRET_ROTATION: dict[str, Any] = {
    "type": "object",
    "properties": {"grace_seconds": {"type": "number", "minimum": 0, "maximum": 604800}},
    "additionalProperties": False,
}

RETRY_JOB_NEW: dict[str, Any] = {
    "type": "object",
    "properties": {
        "statuses": {
            "type": "array",
            "items": {"enum": ["failed", "dead", "succeeded"]},
            "minItems": 1,
            "uniqueItems": True,
        },
        "subscription_id": {"type": "string", "format": "uuid"},
        "application": NAME,
        "action": NAME,
        "since": {"type": "string", "format": "date-time"},
        "until": {"type": "string", "format": "date-time"},
    },
    "additionalProperties": False,
}
