"""RFC 9457 problem documents (``application/problem+json``), shared by the HTTP services."""

from __future__ import annotations

from dataclasses import dataclass, field
from http import HTTPStatus

import orjson

CONTENT_TYPE = "application/problem+json"
TYPE_BASE = "https://msgstatus.dev/problems/"


@dataclass(frozen=True, slots=True)
class FieldError:
    """One bad input: the field's name (a dotted path, a path or query parameter) and why."""

    field: str
    message: str


@dataclass(frozen=True, slots=True)
class Problem:
    """A problem document; ``kind`` names the type URI's last segment (``invalid-field``)."""

    status: int
    kind: str
    detail: str
    errors: tuple[FieldError, ...] = field(default=())

    def to_json(self, instance: str | None = None) -> bytes:
        """Render the document: type, title, status, detail, instance and ``errors``."""
        doc: dict[str, object] = {
            "type": TYPE_BASE + self.kind,
            "title": HTTPStatus(self.status).phrase,
            "status": self.status,
            "detail": self.detail,
        }
        if instance is not None:
            doc["instance"] = instance
        if self.errors:
            doc["errors"] = [{"field": e.field, "message": e.message} for e in self.errors]
        return orjson.dumps(doc)


def invalid(field_name: str, message: str, status: int = 400) -> Problem:
    """A 400 problem naming one bad field."""
    return Problem(
        status, "invalid-field", f"{field_name}: {message}", (FieldError(field_name, message),)
    )
