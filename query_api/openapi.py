"""The OpenAPI 3.1 document of the read API, served at ``/openapi.json``.

``count`` states ``minimum: 1`` and describes the cap in words, with no ``maximum``: values
above 100 are valid and mean 100, and a schema-driven client must not reject them
(docs/design.md §3). Every request the document allows gets a status it documents, which
schemathesis checks in ``make test`` (tests/test_field_reports_openapi.py).
"""

from __future__ import annotations

from functools import cache
from typing import Any

from schemas.problems import PROBLEM_SCHEMA
from schemas.status import Channel, Status

_ISO = "ISO 8601 date-time in UTC, whole seconds (YYYY-MM-DDTHH:MM:SSZ)"


def _problem_ref(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {
            "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
        },
    }


def _json(description: str, schema: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}},
    }


def _get(
    summary: str, parameters: list[dict[str, Any]], responses: dict[str, Any]
) -> dict[str, Any]:
    """A GET operation that needs the API key."""
    return {
        "get": {
            "summary": summary,
            "security": [{"ApiKey": []}],
            "parameters": parameters,
            "responses": responses,
        }
    }


_MESSAGE_ID: dict[str, Any] = {
    "name": "messageid",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "format": "uuid"},
}

_LIST_PARAMS: list[dict[str, Any]] = [
    {
        "name": "count",
        "in": "query",
        "required": False,
        "description": "Maximum number of messages (default 50). Values above 100 are "
        "silently capped to 100; values below 1, non-integers and numbers of more than 100 "
        "digits are rejected with 400.",
        "schema": {"type": "integer", "minimum": 1, "default": 50},
    },
    {
        "name": "sendDate",
        "in": "query",
        "required": False,
        "description": "Only messages sent strictly before this ISO 8601 timestamp (Z or an "
        "offset; no offset means UTC; fractions allowed). Default: the current time. "
        "Encode a '+' offset as %2B.",
        "schema": {"type": "string", "format": "date-time"},
    },
    {
        "name": "cursor",
        "in": "query",
        "required": False,
        "description": 'Position from the previous page\'s Link rel="next" header: the '
        "last message's send time (epoch ms) and id, <ms>_<uuid>, followed by .<scope tag> "
        "for keys of a tenant or restricted to services. A cursor is only valid for keys of "
        "the scope it was made for; under another it is a 400.",
        "schema": {
            "type": "string",
            "pattern": "^[0-9]{1,15}_[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-"
            "[0-9a-fA-F]{4}-[0-9a-fA-F]{12}(\\.[0-9a-f]{12})?$",
        },
    },
]

_COMMON_ERRORS = {
    "400": _problem_ref("A parameter is invalid; the problem document names it."),
    "403": _problem_ref("The API key is missing or invalid."),
    "503": _problem_ref("The status store is unreachable; retry after the Retry-After delay."),
}


@cache
def openapi_document() -> dict[str, Any]:
    """The document as a dict (built once)."""
    message_list = {
        "description": "Newest first by send time; ties by message id, descending. An empty "
        "list when nothing matches.",
        "headers": {
            "Link": {
                "description": 'RFC 8288 link with rel="next" when more messages follow.',
                "schema": {"type": "string"},
            }
        },
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/MessageList"}}},
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "msgstatus read API",
            "version": "1.0.0",
            "description": "Delivery status of SMS and RCS messages.\n\n"
            "Access scopes: every API key belongs to one tenant and may be restricted to a set "
            "of reference.service values. Reads see only messages inside the key's scope: a "
            "message of another tenant or outside the key's services is a 404 by id, exactly "
            "like an unknown one (never a 403), and absent from lists. Paging cursors are "
            "bound to the scope they were made for (a 400 under another key).\n\n"
            "Audit: every list read by phone number or reference, and every call of the "
            "support desk, is recorded with the key's id (never the key), the masked number "
            "or the reference, the time and the number of results.",
        },
        "components": {
            "securitySchemes": {
                "ApiKey": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "X-Api-Key",
                    "description": "An API key; its tenant and services decide what it reads.",
                }
            },
            "schemas": {
                "Message": {
                    "type": "object",
                    "required": [
                        "id",
                        "providerAcceptanceAt",
                        "statusChangedAt",
                        "reference",
                        "channel",
                        "status",
                        "provider",
                    ],
                    "properties": {
                        "id": {"type": "string", "format": "uuid"},
                        "providerAcceptanceAt": {"type": "string", "description": _ISO},
                        "statusChangedAt": {"type": "string", "description": _ISO},
                        "reference": {
                            "type": "object",
                            "description": "Empty object when no reference was given.",
                            "properties": {
                                "service": {"type": "string"},
                                "action": {"type": "string"},
                                "key": {"type": "string"},
                            },
                        },
                        "channel": {"type": "string", "enum": [c.value for c in Channel]},
                        "status": {"type": "string", "enum": [s.value for s in Status]},
                        "provider": {
                            "type": "object",
                            "required": ["name", "id", "status", "code"],
                            "properties": {
                                "name": {"type": "string"},
                                "id": {"type": "string"},
                                "status": {"type": "string"},
                                "code": {"type": "string"},
                                "message": {"type": "string"},
                            },
                        },
                        "sms": {
                            "type": "object",
                            "description": "Present for channel SMS only.",
                            "required": ["segments"],
                            "properties": {"segments": {"type": "integer", "minimum": 1}},
                        },
                    },
                },
                "MessageDocument": {
                    "type": "object",
                    "required": ["message"],
                    "properties": {"message": {"$ref": "#/components/schemas/Message"}},
                },
                "MessageList": {
                    "type": "object",
                    "required": ["messages"],
                    "properties": {
                        "messages": {
                            "type": "array",
                            "items": {"$ref": "#/components/schemas/MessageDocument"},
                        }
                    },
                },
                "History": {
                    "type": "object",
                    "required": ["messageId", "events"],
                    "properties": {
                        "messageId": {"type": "string", "format": "uuid"},
                        "events": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "required": ["status", "occurredAt", "provider"],
                                "properties": {
                                    "status": {"type": "string"},
                                    "occurredAt": {"type": "string"},
                                    "provider": {"type": "object"},
                                },
                            },
                        },
                    },
                },
                "Problem": PROBLEM_SCHEMA,
            },
        },
        "paths": {
            "/api/messagestatus/{messageid}": _get(
                "Get message status by message ID",
                [_MESSAGE_ID],
                {
                    "200": _json("The message's status.", "MessageDocument"),
                    **_COMMON_ERRORS,
                    "404": _problem_ref("No message with this id in the key's scope."),
                },
            ),
            "/api/messagestatus/{messageid}/history": _get(
                "The message's distinct events, oldest first",
                [_MESSAGE_ID],
                {
                    "200": _json("The history.", "History"),
                    **_COMMON_ERRORS,
                    "404": _problem_ref("No message with this id in the key's scope."),
                },
            ),
            "/api/messagestatus/phonenumber/{phonenumber}": _get(
                "Latest messages sent to a phone number",
                [
                    {
                        "name": "phonenumber",
                        "in": "path",
                        "required": True,
                        "description": "E.164 number, e.g. +1234567890 (%2B for +).",
                        "schema": {"type": "string", "pattern": "^\\+[1-9][0-9]{0,14}$"},
                    },
                    *_LIST_PARAMS,
                ],
                {"200": message_list, **_COMMON_ERRORS},
            ),
            "/api/messagestatus/reference/{referencekey}": _get(
                "Latest messages under an external reference key",
                [
                    {
                        "name": "referencekey",
                        "in": "path",
                        "required": True,
                        "description": "Any UTF-8 text of 1-255 characters without control "
                        "characters, percent-encoded (a '/' in the key as %2F).",
                        "schema": {
                            "type": "string",
                            "minLength": 1,
                            "maxLength": 255,
                            "pattern": "^[^\\u0000-\\u001f\\u007f]+$",
                        },
                    },
                    *_LIST_PARAMS,
                ],
                {"200": message_list, **_COMMON_ERRORS},
            ),
        },
    }
