"""The OpenAPI 3.1 document, built from the same request schemas the handlers validate with.

A test walks the route table and this document both ways, so neither can drift.
"""

from __future__ import annotations

from typing import Any

from amebo import __version__
from amebo.api import shapes

_TIMESTAMP = {"type": "string", "format": "date-time"}
_UUID = {"type": "string", "format": "uuid"}
_NULLABLE_TIME = {"type": ["string", "null"], "format": "date-time"}

SCHEMAS: dict[str, Any] = {
    "NewApplication": shapes.APPLICATION_NEW,
    "NewAction": shapes.ACTION_NEW,
    "NewSubscription": shapes.SUBSCRIPTION_NEW,
    "SubscriptionChange": shapes.SUBSCRIPTION_CHANGE,
    "SecretRotation": shapes.SECRET_ROTATION,
    "NewEvent": shapes.EVENT_NEW,
    "EventBatch": shapes.EVENT_BATCH,
    "Application": {
        "type": "object",
        "properties": {
            "name": shapes.NAME,
            "address": {"type": "string"},
            "description": {"type": "string"},
            "registered_at": _TIMESTAMP,
        },
        "required": ["name", "address", "description", "registered_at"],
    },
    "Action": {
        "type": "object",
        "properties": {
            "name": shapes.NAME,
            "application": shapes.NAME,
            "schemata": {"type": ["object", "boolean"]},
            "description": {"type": "string"},
            "registered_at": _TIMESTAMP,
        },
        "required": ["name", "application", "schemata", "description", "registered_at"],
    },
    "Subscription": {
        "type": "object",
        "properties": {
            "id": _UUID,
            "application": shapes.NAME,
            "action": shapes.NAME,
            "handler": {"type": "string"},
            "max_retries": {"type": "integer"},
            "retry_schedule": {"type": ["array", "null"], "items": {"type": "number"}},
            "encrypted": {"type": "boolean"},
            "active": {"type": "boolean"},
            "created_at": _TIMESTAMP,
            "updated_at": _TIMESTAMP,
        },
        "required": [
            "id",
            "application",
            "action",
            "handler",
            "max_retries",
            "retry_schedule",
            "encrypted",
            "active",
            "created_at",
            "updated_at",
        ],
    },
    "CreatedSubscription": {
        "allOf": [
            {"$ref": "#/components/schemas/Subscription"},
            {
                "type": "object",
                "properties": {"secret": {"type": "string", "pattern": "^whsec_"}},
                "required": ["secret"],
            },
        ],
    },
    "Published": {
        "type": "object",
        "properties": {"id": _UUID, "created": {"type": "boolean"}},
        "required": ["id", "created"],
    },
    "BatchResults": {
        "type": "object",
        "properties": {"results": {"type": "array", "items": {"type": "object"}}},
        "required": ["results"],
    },
    "Event": {
        "type": "object",
        "properties": {
            "id": _UUID,
            "action": shapes.NAME,
            "application": shapes.NAME,
            "deduper": {"type": ["string", "null"]},
            "published_at": _TIMESTAMP,
            "payload": {},
        },
        "required": ["id", "action", "application", "deduper", "published_at", "payload"],
    },
    "NewRetryJob": shapes.RETRY_JOB_NEW,
    "DeliveryDetail": {
        "type": "object",
        "properties": {
            "id": _UUID,
            "event_id": _UUID,
            "subscription_id": _UUID,
            "subscriber": {"type": "string"},
            "action": {"type": "string"},
            "handler": {"type": "string"},
            "status": {"enum": ["pending", "failed", "succeeded", "dead"]},
            "attempts": {"type": "integer"},
            "next_attempt_at": _NULLABLE_TIME,
            "last_attempt_at": _NULLABLE_TIME,
            "last_status_code": {"type": ["integer", "null"]},
            "last_error": {"type": ["string", "null"]},
            "created_at": _TIMESTAMP,
            "updated_at": _TIMESTAMP,
        },
        "required": [
            "id",
            "event_id",
            "subscription_id",
            "subscriber",
            "action",
            "status",
            "attempts",
        ],
    },
    "Attempt": {
        "type": "object",
        "properties": {
            "attempt": {"type": "integer"},
            "outcome": {"enum": ["failed", "succeeded", "dead"]},
            "status_code": {"type": ["integer", "null"]},
            "latency_ms": {"type": ["number", "null"]},
            "error": {"type": ["string", "null"]},
            "response": {"type": ["string", "null"]},
            "attempted_at": {"type": ["string", "null"]},
            "next_attempt_at": {"type": ["string", "null"]},
        },
        "required": ["attempt", "outcome"],
    },
    "DeliveryWithHistory": {
        "allOf": [
            {"$ref": "#/components/schemas/DeliveryDetail"},
            {
                "type": "object",
                "properties": {
                    "history": {"type": "array", "items": {"$ref": "#/components/schemas/Attempt"}}
                },
                "required": ["history"],
            },
        ],
    },
    "RetryJob": {
        "type": "object",
        "properties": {
            "id": _UUID,
            "requested_by": {"type": ["string", "null"]},
            "filter": {"type": "object"},
            "status": {"enum": ["running", "finished"]},
            "retried": {"type": "integer"},
            "requested_at": _TIMESTAMP,
            "finished_at": _NULLABLE_TIME,
        },
        "required": ["id", "filter", "status", "retried", "requested_at"],
    },
    "Delivery": {
        "type": "object",
        "properties": {
            "id": _UUID,
            "subscription_id": _UUID,
            "handler": {"type": "string"},
            "status": {"enum": ["pending", "failed", "succeeded", "dead"]},
            "attempts": {"type": "integer"},
            "next_attempt_at": _NULLABLE_TIME,
            "last_attempt_at": _NULLABLE_TIME,
            "last_status_code": {"type": ["integer", "null"]},
            "last_error": {"type": ["string", "null"]},
            "updated_at": _TIMESTAMP,
        },
        "required": ["id", "subscription_id", "handler", "status", "attempts"],
    },
    "EventWithDeliveries": {
        "allOf": [
            {"$ref": "#/components/schemas/Event"},
            {
                "type": "object",
                "properties": {
                    "status": {"const": "published"},
                    "deliveries": {
                        "type": "array",
                        "items": {"$ref": "#/components/schemas/Delivery"},
                    },
                },
                "required": ["status", "deliveries"],
            },
        ],
    },
    "RejectedEvent": {
        "description": "An outbox row the relay refused: never published, never delivered.",
        "type": "object",
        "properties": {
            "id": _UUID,
            "status": {"const": "rejected"},
            "action": {"type": "string"},
            "deduper": {"type": ["string", "null"]},
            "written_at": _TIMESTAMP,
            "rejected_at": _TIMESTAMP,
            "payload": {},
            "reasons": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {"pointer": {"type": "string"}, "message": {"type": "string"}},
                    "required": ["pointer", "message"],
                },
            },
            "deliveries": {"type": "array", "maxItems": 0},
        },
        "required": [
            "id",
            "status",
            "action",
            "deduper",
            "written_at",
            "rejected_at",
            "payload",
            "reasons",
            "deliveries",
        ],
    },
    "Problem": {
        "type": "object",
        "properties": {
            "type": {"type": "string"},
            "title": {"type": "string"},
            "status": {"type": "integer"},
            "detail": {"type": "string"},
            "errors": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {"pointer": {"type": "string"}, "message": {"type": "string"}},
                    "required": ["pointer", "message"],
                },
            },
        },
        "required": ["title", "status", "detail", "errors"],
    },
}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _list_of(key: str, item: str) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {key: {"type": "array", "items": _ref(item)}},
        "required": [key],
    }


_PROBLEM = {"content": {"application/problem+json": {"schema": _ref("Problem")}}}


def _problems(*statuses: int) -> dict[str, Any]:
    text = {
        400: "Malformed request",
        401: "Missing or wrong credentials",
        403: "Not allowed for this caller",
        404: "Not found",
        409: "Conflict",
        413: "Body too large",
        415: "Body is not JSON",
        422: "Body fails its schema",
        429: "Too many failed logins; retry after Retry-After",
        503: "Database unavailable; retry",
    }
    if 401 in statuses:  # wherever credentials are checked, failed logins are limited
        statuses = (*statuses, 429)
    return {str(s): {"description": text[s], **_PROBLEM} for s in statuses}


def _body(name: str) -> dict[str, Any]:
    return {"required": True, "content": {"application/json": {"schema": _ref(name)}}}


_WRITE = (400, 401, 403, 404, 409, 413, 415, 422, 503)
_READ = (401, 404, 503)


def _query(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "schema": schema,
        "description": description,
    }


def _path(name: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": schema}


def document() -> dict[str, Any]:
    limit = _query("limit", {"type": "integer", "minimum": 1}, "most rows to return")
    sub_id = _path("subscription_id", _UUID)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "amebo",
            "version": __version__,
            "description": "Schema registry and reliable event broadcast on PostgreSQL.",
        },
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {
                "application": {
                    "type": "http",
                    "scheme": "basic",
                    "description": "application name and secret",
                },
                "operator": {"type": "http", "scheme": "bearer", "description": "the admin token"},
            },
        },
        "security": [{"application": []}, {"operator": []}],
        "paths": {
            "/health": {
                "get": {
                    "summary": "Liveness and database reachability",
                    "security": [],
                    "responses": {"200": _json({"type": "object"}, "Healthy"), **_problems(503)},
                }
            },
            "/openapi.json": {
                "get": {
                    "summary": "This document",
                    "security": [],
                    "responses": {"200": _json({"type": "object"}, "OpenAPI")},
                }
            },
            "/v1/applications": {
                "post": {
                    "summary": "Register an application (operator only)",
                    "security": [{"operator": []}],
                    "requestBody": _body("NewApplication"),
                    "responses": {
                        "201": _json(_ref("Application"), "Registered"),
                        **_problems(*_WRITE),
                    },
                },
                "get": {
                    "summary": "List applications",
                    "responses": {
                        "200": _json(_list_of("applications", "Application"), "All"),
                        **_problems(*_READ),
                    },
                },
            },
            "/v1/applications/{application}": {
                "get": {
                    "summary": "One application",
                    "parameters": [_path("application", {"type": "string"})],
                    "responses": {"200": _json(_ref("Application"), "Found"), **_problems(*_READ)},
                },
            },
            "/v1/actions": {
                "post": {
                    "summary": "Register an action with its JSON Schema",
                    "requestBody": _body("NewAction"),
                    "responses": {"201": _json(_ref("Action"), "Registered"), **_problems(*_WRITE)},
                },
                "get": {
                    "summary": "Search actions",
                    "parameters": [
                        _query("application", {"type": "string"}, "owner"),
                        _query("q", {"type": "string"}, "text in name or description"),
                        limit,
                    ],
                    "responses": {
                        "200": _json(_list_of("actions", "Action"), "Matches"),
                        **_problems(400, *_READ),
                    },
                },
            },
            "/v1/actions/{action}": {
                "get": {
                    "summary": "One action with its schema",
                    "parameters": [_path("action", {"type": "string"})],
                    "responses": {"200": _json(_ref("Action"), "Found"), **_problems(*_READ)},
                },
            },
            "/v1/subscriptions": {
                "post": {
                    "summary": "Subscribe a handler URL to an action",
                    "requestBody": _body("NewSubscription"),
                    "responses": {
                        "201": _json(
                            _ref("CreatedSubscription"), "Created; the secret is shown only now"
                        ),
                        **_problems(*_WRITE),
                    },
                },
                "get": {
                    "summary": "List subscriptions",
                    "parameters": [
                        _query("application", {"type": "string"}, "subscriber"),
                        _query("action", {"type": "string"}, "action"),
                        _query("active", {"type": "boolean"}, "active or not"),
                        limit,
                    ],
                    "responses": {
                        "200": _json(_list_of("subscriptions", "Subscription"), "Matches"),
                        **_problems(400, *_READ),
                    },
                },
            },
            "/v1/subscriptions/{subscription_id}": {
                "get": {
                    "summary": "One subscription",
                    "parameters": [sub_id],
                    "responses": {"200": _json(_ref("Subscription"), "Found"), **_problems(*_READ)},
                },
                "patch": {
                    "summary": 'Deactivate a subscription ({"active": false})',
                    "parameters": [sub_id],
                    "requestBody": _body("SubscriptionChange"),
                    "responses": {
                        "200": _json(_ref("Subscription"), "Changed"),
                        **_problems(*_WRITE),
                    },
                },
                "delete": {
                    "summary": "Deactivate a subscription",
                    "parameters": [sub_id],
                    "responses": {
                        "200": _json(_ref("Subscription"), "Deactivated"),
                        **_problems(401, 403, 404, 503),
                    },
                },
            },
            "/v1/subscriptions/{subscription_id}/rotate-secret": {
                "post": {
                    "summary": "Rotate the signing secret; the old one signs too until grace ends",
                    "parameters": [sub_id],
                    "requestBody": {
                        "required": False,
                        "content": {"application/json": {"schema": _ref("SecretRotation")}},
                    },
                    "responses": {
                        "200": _json(
                            _ref("CreatedSubscription"), "Rotated; the secret is shown only now"
                        ),
                        **_problems(*_WRITE),
                    },
                },
            },
            "/v1/events": {
                "post": {
                    "summary": "Publish an event",
                    "requestBody": _body("NewEvent"),
                    "responses": {
                        "201": _json(_ref("Published"), "Accepted"),
                        "200": _json(_ref("Published"), "Seen before (same deduper): nothing new"),
                        **_problems(*_WRITE),
                    },
                },
                "get": {
                    "summary": "List events, newest first",
                    "parameters": [
                        _query("action", {"type": "string"}, "action"),
                        _query("application", {"type": "string"}, "publisher"),
                        _query("before", _UUID, "page: events older than this id"),
                        limit,
                    ],
                    "responses": {
                        "200": _json(_list_of("events", "Event"), "Events"),
                        **_problems(400, *_READ),
                    },
                },
            },
            "/v1/events/batch": {
                "post": {
                    "summary": "Publish up to 1,000 events; a result per item",
                    "requestBody": _body("EventBatch"),
                    "responses": {
                        "200": _json(_ref("BatchResults"), "All accepted"),
                        "207": _json(_ref("BatchResults"), "Some items refused"),
                        **_problems(*_WRITE),
                    },
                },
            },
            "/v1/events/{event_id}": {
                "get": {
                    "summary": "One event with its deliveries, or why an outbox row was rejected",
                    "parameters": [_path("event_id", _UUID)],
                    "responses": {
                        "200": _json(
                            {"oneOf": [_ref("EventWithDeliveries"), _ref("RejectedEvent")]},
                            "Found: status tells a published event from a rejected outbox row",
                        ),
                        **_problems(*_READ),
                    },
                },
            },
            "/v1/deliveries": {
                "get": {
                    "summary": "List deliveries, newest first",
                    "parameters": [
                        _query("subscription_id", _UUID, "one subscription"),
                        _query("application", {"type": "string"}, "the subscribing application"),
                        _query("action", {"type": "string"}, "the event's action"),
                        _query(
                            "status",
                            {"enum": ["pending", "failed", "succeeded", "dead"]},
                            "current status",
                        ),
                        _query(
                            "since",
                            {"type": "string", "format": "date-time"},
                            "created at or after",
                        ),
                        _query(
                            "until", {"type": "string", "format": "date-time"}, "created before"
                        ),
                        limit,
                    ],
                    "responses": {
                        "200": _json(_list_of("deliveries", "DeliveryDetail"), "Deliveries"),
                        **_problems(400, *_READ),
                    },
                },
            },
            "/v1/deliveries/{delivery_id}": {
                "get": {
                    "summary": "One delivery with the history of its attempts",
                    "parameters": [_path("delivery_id", _UUID)],
                    "responses": {
                        "200": _json(_ref("DeliveryWithHistory"), "Found"),
                        **_problems(*_READ),
                    },
                },
            },
            "/v1/deliveries/{delivery_id}/retry": {
                "post": {
                    "summary": "Deliver again now, with a fresh attempt series",
                    "parameters": [_path("delivery_id", _UUID)],
                    "responses": {
                        "202": _json(_ref("DeliveryDetail"), "Queued again"),
                        **_problems(401, 403, 404, 409, 503),
                    },
                },
            },
            "/v1/retry-jobs": {
                "post": {
                    "summary": "Retry every delivery matching a filter, in the background",
                    "requestBody": _body("NewRetryJob"),
                    "responses": {
                        "202": _json(_ref("RetryJob"), "Started"),
                        **_problems(*_WRITE),
                    },
                },
            },
            "/v1/retry-jobs/{job_id}": {
                "get": {
                    "summary": "A bulk retry's progress",
                    "parameters": [_path("job_id", _UUID)],
                    "responses": {
                        "200": _json(_ref("RetryJob"), "Found"),
                        **_problems(*_READ),
                    },
                },
            },
        },
    }
