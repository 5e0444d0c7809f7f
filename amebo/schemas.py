"""JSON Schema: checking that an action's schema is itself valid, and validating payloads.

Validators are compiled once per schema and cached. Remote ``$ref`` is never fetched, and
``pattern`` uses a linear-time regex engine, so no schema can make amebo call out or hang.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Protocol

import jsonschema_rs

from amebo.errors import Detail, SchemaViolation, json_pointer

MAX_DETAILS = 20

_DRAFTS: Mapping[str, Any] = {
    "https://json-schema.org/draft/2020-12/schema": jsonschema_rs.Draft202012,
    "https://json-schema.org/draft/2019-09/schema": jsonschema_rs.Draft201909,
    "http://json-schema.org/draft-07/schema": jsonschema_rs.Draft7,
    "http://json-schema.org/draft-06/schema": jsonschema_rs.Draft6,
    "http://json-schema.org/draft-04/schema": jsonschema_rs.Draft4,
}


class Validator(Protocol):
    def iter_errors(self, instance: Any) -> Iterable[Any]: ...

    def is_valid(self, instance: Any) -> bool: ...


def _details(errors: Iterable[Any], prefix: str) -> list[Detail]:
    details: list[Detail] = []
    for error in errors:
        path = list(error.instance_path)
        kind = error.kind
        # The validator places these at the enclosing object; the client wants to be told
        # which member is missing or unexpected.
        if isinstance(kind, jsonschema_rs.ValidationErrorKind.Required):
            details.append(Detail(prefix + json_pointer([*path, kind.property]), "is required"))
        elif isinstance(kind, jsonschema_rs.ValidationErrorKind.AdditionalProperties):
            details.extend(
                Detail(prefix + json_pointer([*path, name]), "is not an allowed property")
                for name in kind.unexpected
            )
        else:
            details.append(Detail(prefix + json_pointer(path), error.message))
        if len(details) >= MAX_DETAILS:
            break
    return details[:MAX_DETAILS]


def compile_schema(schema: Any, pointer: str = "") -> Validator:
    """A validator for ``schema``, or ``InvalidSchema`` naming what is wrong in it."""
    if not isinstance(schema, (dict, bool)):
        raise InvalidSchema([Detail(pointer, "a JSON Schema must be an object or a boolean")])
    if isinstance(schema, dict):
        declared = schema.get("$schema")
        if declared is not None and (
            not isinstance(declared, str) or declared.rstrip("#") not in _DRAFTS
        ):
            raise InvalidSchema(
                [
                    Detail(
                        pointer + "/$schema",
                        "unsupported $schema; use draft 2020-12, 2019-09, 7, 6 or 4",
                    )
                ]
            )
        problems = _meta_problems(schema, pointer)
        if problems:
            raise InvalidSchema(problems)
    try:
        validator: Validator = jsonschema_rs.validator_for(
            schema,
            validate_formats=True,
            offline=True,
            pattern_options=jsonschema_rs.RegexOptions(size_limit=1_000_000),
        )
    except jsonschema_rs.ValidationError as error:
        raise InvalidSchema([Detail(pointer, _first_line(str(error)))]) from None
    except (ValueError, jsonschema_rs.ReferencingError) as error:
        raise InvalidSchema([Detail(pointer, _first_line(str(error)))]) from None
    return validator


def _meta_problems(schema: Any, pointer: str) -> list[Detail]:
    try:
        jsonschema_rs.meta.validate(schema)
    except jsonschema_rs.ValidationError as error:
        return [Detail(pointer + json_pointer(list(error.instance_path)), error.message)]
    except (ValueError, jsonschema_rs.ReferencingError) as error:
        return [Detail(pointer, _first_line(str(error)))]
    return []


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else "invalid schema"


def violations(validator: Validator, instance: Any, pointer: str = "") -> list[Detail]:
    if validator.is_valid(instance):
        return []
    return _details(validator.iter_errors(instance), pointer)


class InvalidSchema(SchemaViolation):
    """The schema itself is not a valid JSON Schema."""

    title = "Invalid JSON Schema"

    def __init__(self, details: list[Detail]) -> None:
        super().__init__("the schema is not a valid JSON Schema", details)
