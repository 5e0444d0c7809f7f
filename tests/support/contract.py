"""Checks a real response against what GET /openapi.json documents for it.

Every suite that drives the API can pass its responses through here, so the document is
tested against far more than one scripted walk.
"""

from __future__ import annotations

import re
from typing import Any

import jsonschema_rs
import orjson

from amebo.api.openapi import document


class Contract:
    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec
        self._validators: dict[tuple[str, str, str, str], Any] = {}
        # Literal paths first, so /v1/events/batch is not taken for /v1/events/{event_id}.
        self._paths = sorted(spec["paths"], key=lambda path: (path.count("{"), path))
        self._patterns = [
            (path, re.compile("^" + re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(path)) + "$"))
            for path in self._paths
        ]

    def template(self, path: str) -> str | None:
        for template, pattern in self._patterns:
            if pattern.match(path):
                return template
        return None

    def _validator(self, template: str, method: str, status: str, media: str) -> Any:
        key = (template, method, status, media)
        if key not in self._validators:
            schema = self.spec["paths"][template][method]["responses"][status]["content"][media][
                "schema"
            ]
            # Inline the components beside the schema so '#/components/...' resolves locally.
            root = {**schema, "components": self.spec["components"]}
            self._validators[key] = jsonschema_rs.validator_for(
                root, validate_formats=True, offline=True
            )
        return self._validators[key]

    def check(
        self, method: str, path: str, status: int, content_type: str, body: bytes
    ) -> list[str]:
        """What is wrong with this exchange, as far as the document can tell (empty if none)."""
        template = self.template(path.split("?")[0])
        if template is None:
            return [f"{path} is not documented"]
        operation = self.spec["paths"][template].get(method.lower())
        if operation is None:
            if status == 405:
                return []
            return [f"{method} {template} is not documented"]
        responses = operation["responses"]
        documented = str(status)
        if documented not in responses:
            return [f"{method} {template} answered {status}, documented: {sorted(responses)}"]
        content = responses[documented].get("content", {})
        media = content_type.split(";")[0].strip()
        if media not in content:
            return [f"{method} {template} {status} sent {media!r}, documented: {sorted(content)}"]
        instance = orjson.loads(body)
        validator = self._validator(template, method.lower(), documented, media)
        return [
            f"{method} {template} {status}: {'/'.join(map(str, e.instance_path))}: {e.message}"
            for e in validator.iter_errors(instance)
        ]


CONTRACT = Contract(document())
