"""The OpenAPI 3.1 document of the ingest service, served at ``/openapi.json``.

It describes ``POST /webhooks/events`` (the canonical event schema senders integrate
against, docs/design.md §4) and the provider routes (docs/providers.md). Every request the
document allows is answered with a status it documents, which schemathesis checks in
``make test`` (tests/test_field_reports_openapi.py). Credentials are described as security
schemes; the Standard Webhooks signature covers the body, so an unsigned or wrongly signed
request is a 401 whatever its body.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from ingest.providers.common import AdapterSpec
from ingest.providers.registry import ADAPTERS
from schemas.problems import PROBLEM_SCHEMA
from schemas.status import Channel, Status

_NO_CONTROL = "^[^\\u0000-\\u001f\\u007f]*$"
_ISO = (
    "^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}(:[0-9]{2}([.,][0-9]{1,9})?)?"
    "([Zz]|[+-][0-9]{2}(:?[0-9]{2})?)?$"
)


def _problem(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {
            "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
        },
    }


_ERRORS: dict[str, Any] = {
    "400": _problem("The body is not readable as this endpoint's format; fields are named."),
    "401": _problem("Missing or wrong credentials or signature."),
    "408": _problem("The body did not arrive within BODY_TIMEOUT_S."),
    "413": {"description": "The body is larger than MAX_BODY_BYTES."},
    "503": _problem(
        "Kafka did not acknowledge in time (Retry-After); or, for Vonage "
        "Messages, an unsigned callback, so that Vonage retries it signed."
    ),
}

_ACCEPTED = {
    "description": "Every event was acknowledged by Kafka.",
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Accepted"}}},
}


def _text(max_length: int = 255, min_length: int = 0) -> dict[str, Any]:
    return {
        "type": "string",
        "minLength": min_length,
        "maxLength": max_length,
        "pattern": _NO_CONTROL,
    }


def _event_schema() -> dict[str, Any]:
    """One canonical event (docs/design.md §4); the rules between fields are in words."""
    return {
        "type": "object",
        "additionalProperties": False,
        "required": ["status", "occurredAt", "provider"],
        "description": "A PROVIDER_ACCEPTANCE needs messageId, channel, phoneNumber, "
        "provider.name and provider.id, and for SMS sms.segments or text; other statuses "
        "name their message by messageId or by provider.name + provider.id; READ is for RCS "
        "only; provider.status and provider.code are required; occurredAt is at most "
        "MAX_CLOCK_SKEW_S ahead of the server's clock and within 1970-6429. A body that "
        "breaks these rules is a 400 naming the field.",
        "properties": {
            "eventId": {"type": "string", "format": "uuid"},
            "messageId": {"type": "string", "format": "uuid"},
            "status": {"type": "string", "enum": [s.value for s in Status]},
            "occurredAt": {
                "type": "string",
                "pattern": _ISO,
                "description": "ISO 8601; no offset means UTC.",
            },
            "channel": {"type": "string", "enum": [c.value for c in Channel]},
            "phoneNumber": {
                "type": "string",
                "minLength": 1,
                "maxLength": 32,
                "description": "E.164 (+ and 1-15 digits); spaces, dots, dashes and "
                "parentheses are dropped, a 00 prefix becomes +.",
            },
            "reference": {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "service": _text(),
                    "action": _text(),
                    "key": _text(min_length=1),
                },
            },
            "sms": {
                "type": "object",
                "additionalProperties": False,
                "required": ["segments"],
                "properties": {"segments": {"type": "integer", "minimum": 1, "maximum": 255}},
            },
            "text": {
                "type": "string",
                "maxLength": 10_000,
                "description": "The message text, used only to count SMS segments.",
            },
            "provider": {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "name": _text(min_length=1),
                    "id": _text(min_length=1),
                    "status": _text(),
                    "code": {"oneOf": [_text(), {"type": "integer"}]},
                    "message": {"type": "string", "maxLength": 1000},
                },
            },
        },
    }


def _provider_routes(spec: AdapterSpec) -> dict[str, Any]:
    """The operations of one adapter's path, from its registry entry: a GET carries no body,
    a POST one of ``spec.media_types``; an optional credential adds the empty alternative
    (answered 503 for a signed retry, not 401)."""
    credential = spec.credential
    security: list[dict[str, list[str]]] = [{credential.name: []}]
    if credential.optional:
        security.append({})
    responses = {
        "200": {
            "description": "Acknowledged (entries that map to no event, or cannot be "
            "used, are counted in msgstatus_provider_entries_skipped_total).",
        },
        **_ERRORS,
    }
    operations: dict[str, Any] = {}
    for method in spec.methods:
        route: dict[str, Any] = {"summary": spec.summary, "security": security}
        if method == "POST":
            route["requestBody"] = {
                "required": False,
                "content": {
                    ct: {"schema": {"type": "object" if "json" in ct else "string"}}
                    for ct in spec.media_types
                },
            }
        operations[method.lower()] = route | {"responses": responses}
    return operations


@cache
def openapi_document() -> dict[str, Any]:
    """The document as a dict (built once)."""
    json_ = "application/json"
    events_body = {
        "required": True,
        "content": {
            json_: {
                "schema": {
                    "oneOf": [
                        {"$ref": "#/components/schemas/Event"},
                        {
                            "type": "array",
                            "minItems": 1,
                            "maxItems": 10_000,
                            "items": {"$ref": "#/components/schemas/Event"},
                        },
                    ]
                }
            }
        },
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "msgstatus ingest",
            "version": "1.0.0",
            "description": "Delivery-status webhooks: canonical events and provider callbacks."
            "\n\nTenants: the events of a request belong to the tenant whose credential "
            "authenticated it (the webhook secret that signed it, or the provider "
            "credentials); a body never names a tenant.",
        },
        "components": {
            "securitySchemes": {
                "StandardWebhooks": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "webhook-signature",
                    "description": "Standard Webhooks: webhook-id, webhook-timestamp and "
                    "webhook-signature (v1, HMAC-SHA256 of id.timestamp.body).",
                },
                **{spec.credential.name: dict(spec.credential.scheme) for spec in ADAPTERS},
            },
            "schemas": {
                "Event": _event_schema(),
                "Accepted": {
                    "type": "object",
                    "required": ["accepted", "eventIds"],
                    "properties": {
                        "accepted": {"type": "integer", "minimum": 0},
                        "eventIds": {"type": "array", "items": {"type": "string"}},
                    },
                },
                "Problem": PROBLEM_SCHEMA,
            },
        },
        "paths": {
            "/webhooks/events": {
                "post": {
                    "summary": "One canonical event or an array of them (all or nothing).",
                    "security": [{"StandardWebhooks": []}],
                    "requestBody": events_body,
                    "responses": {"202": _ACCEPTED, **_ERRORS},
                }
            },
            **{f"/webhooks/{spec.name}": _provider_routes(spec) for spec in ADAPTERS},
        },
    }
