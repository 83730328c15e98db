"""RFC 9457 problem documents (``application/problem+json``) and the problem types the project
owns, shared by the HTTP services (docs/design.md §3.1).

A project-owned type is a relative URI, ``/problems/<name>``, which each HTTP service serves
as a short page (``runtime.web``): it resolves against the service that answered, so it always
leads somewhere the project controls. Refusals of the HTTP layer itself (unknown path, wrong
method, body too large) use ``about:blank``, whose title is the status phrase.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

import orjson

CONTENT_TYPE = "application/problem+json"
TYPE_PATH = "/problems/"


@dataclass(frozen=True, slots=True)
class ProblemType:
    """A problem type: its name, HTTP status, a title that is the same on every occurrence,
    and ``about``, the text of its page."""

    name: str
    status: int
    title: str
    about: str

    @property
    def uri(self) -> str:
        """The type URI of the documents: ``/problems/<name>``."""
        return TYPE_PATH + self.name


INVALID_FIELD = ProblemType(
    "invalid-field",
    400,
    "Invalid parameter",
    "A path or query parameter of the read API is invalid; `errors` names it and says why.",
)
INVALID_BODY = ProblemType(
    "invalid-body",
    400,
    "Invalid webhook body",
    "The body is not valid for its format; `errors` names each bad field. Nothing of the "
    "request was accepted; sending it again unchanged gets the same answer.",
)
UNAUTHENTICATED = ProblemType(
    "unauthenticated",
    401,
    "Not authenticated",
    "The webhook signature or credentials are missing or wrong, or none are configured for "
    "this endpoint. Nothing was accepted.",
)
FORBIDDEN = ProblemType(
    "forbidden",
    403,
    "API key missing or invalid",
    "The X-Api-Key header is missing or is not one of the keys this API accepts.",
)
NOT_FOUND = ProblemType(
    "not-found",
    404,
    "Unknown message",
    "No message with this id is known, or it has not been accepted by its provider yet.",
)
BODY_TIMEOUT = ProblemType(
    "body-timeout",
    408,
    "Body not received in time",
    "The request body did not arrive within the server's deadline. Nothing was accepted; "
    "send it again.",
)
LOG_UNAVAILABLE = ProblemType(
    "log-unavailable",
    503,
    "Event log unavailable",
    "The event log did not acknowledge the events in time. Send the same request again after "
    "Retry-After seconds: a repeat is the same event and is kept once.",
)
OVERLOADED = ProblemType(
    "overloaded",
    503,
    "Ingest overloaded",
    "Too many events are being published at once, so this webhook was turned away before its "
    "body was read; nothing of it was accepted. Send it again after Retry-After seconds.",
)
UNSIGNED_CALLBACK = ProblemType(
    "unsigned-callback",
    503,
    "Unsigned provider callback",
    "The provider's callback came without the signature it always carries. The provider "
    "retries a 5xx, signed.",
)
STORE_UNAVAILABLE = ProblemType(
    "store-unavailable",
    503,
    "Status store unavailable",
    "The status store is not reachable. Retry after Retry-After seconds.",
)
INTERNAL_ERROR = ProblemType(
    "internal-error",
    500,
    "Internal error",
    "An unexpected error; the answer's X-Request-Id names it in the server's logs.",
)

PROBLEM_TYPES: dict[str, ProblemType] = {
    t.name: t
    for t in (
        INVALID_FIELD,
        INVALID_BODY,
        UNAUTHENTICATED,
        FORBIDDEN,
        NOT_FOUND,
        BODY_TIMEOUT,
        LOG_UNAVAILABLE,
        OVERLOADED,
        UNSIGNED_CALLBACK,
        STORE_UNAVAILABLE,
        INTERNAL_ERROR,
    )
}
"""Every project-owned type by name: each is served as a page and listed in the docs."""


@dataclass(frozen=True, slots=True)
class FieldError:
    """One bad input: the field's name (a dotted path, a path or query parameter) and why."""

    field: str
    message: str


@dataclass(frozen=True, slots=True)
class Problem:
    """A problem document; ``type`` None means ``about:blank`` (an HTTP-layer refusal)."""

    status: int
    type: ProblemType | None
    detail: str
    errors: tuple[FieldError, ...] = field(default=())

    @classmethod
    def of(cls, type_: ProblemType, detail: str, errors: tuple[FieldError, ...] = ()) -> Problem:
        """A problem of a project-owned type, with that type's status."""
        return cls(type_.status, type_, detail, errors)

    def to_json(self, instance: str | None = None) -> bytes:
        """Render the document: type, title, status, detail, instance and ``errors``."""
        doc: dict[str, object] = (
            {"type": self.type.uri, "title": self.type.title}
            if self.type is not None
            else {"type": "about:blank", "title": HTTPStatus(self.status).phrase}
        )
        doc["status"] = self.status
        doc["detail"] = self.detail
        if instance is not None:
            doc["instance"] = instance
        if self.errors:
            doc["errors"] = [{"field": e.field, "message": e.message} for e in self.errors]
        return orjson.dumps(doc)


def invalid(field_name: str, message: str) -> Problem:
    """A 400 problem naming one bad parameter."""
    return Problem.of(INVALID_FIELD, f"{field_name}: {message}", (FieldError(field_name, message),))


PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "RFC 9457 problem document.",
    "properties": {
        "type": {
            "type": "string",
            "description": "/problems/<name>, a page on this server that "
            "explains the problem; about:blank for a plain HTTP refusal.",
        },
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"field": {"type": "string"}, "message": {"type": "string"}},
            },
        },
    },
}
"""JSON Schema of a problem document, as both services' OpenAPI documents give it."""
