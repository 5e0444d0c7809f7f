"""Domain errors. They say what is wrong and where; the API maps each kind to a status."""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class Detail:
    """One thing wrong with the input: a JSON pointer into it and a message."""

    pointer: str
    message: str


class AmeboError(Exception):
    title = "Request failed"

    def __init__(self, message: str, details: list[Detail] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or []


class InvalidInput(AmeboError):
    title = "Invalid request"


class UnsupportedMediaType(AmeboError):
    title = "Unsupported media type"


class SchemaViolation(AmeboError):
    title = "Payload does not match the action's schema"


class InvalidBody(SchemaViolation):
    """The request body itself (not an event's payload) has the wrong shape."""

    title = "Request body does not match the expected shape"


class NotFound(AmeboError):
    title = "Not found"


class Conflict(AmeboError):
    title = "Conflict"


class Unauthenticated(AmeboError):
    title = "Authentication required"


class Forbidden(AmeboError):
    title = "Forbidden"


class Unavailable(AmeboError):
    title = "Service unavailable"


def json_pointer(path: list[str | int] | tuple[str | int, ...]) -> str:
    """RFC 6901: '/' joins the parts, '~' and '/' inside a part are escaped."""
    if not path:
        return ""
    return "".join("/" + str(part).replace("~", "~0").replace("/", "~1") for part in path)
