"""The audit trail of reads of personal data (docs/operations.md, "Tenants, keys and audit").

Topic ``message-status.audit`` (:func:`audit_topic`: the event topic's name with ``.events``
replaced by ``.audit``, else ``<topic>.audit``), kept as long as the event log, keyed by the
key id. One record per list read by phone number or reference, and per read made through the
support desk. Value: the JSON of :class:`AuditRecord`; the same fields go to the structured
log (logger ``msgstatus.audit``). Never the key, never a full phone number.
"""

from __future__ import annotations

from typing import Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field

SCHEMA_VERSION: Literal[1] = 1

Action = Literal["phonenumber", "reference", "message", "history", "deliveries", "resend"]
"""What was read: a list by phone number or reference, or one message (by id, its history,
its deliveries, or a resend of them)."""


def audit_topic(event_topic: str) -> str:
    """The audit topic of an event topic: ``message-status.events`` -> ``...audit``."""
    if event_topic.endswith(".events"):
        return event_topic[: -len(".events")] + ".audit"
    return f"{event_topic}.audit"


def mask_phone(phone: str) -> str:
    """An E.164 number as the audit keeps it: first three and last two characters
    (``+39***67``), as the logs mask numbers."""
    return phone[:3] + "***" + phone[-2:]


class AuditRecord(BaseModel):
    """Who (``keyId``, ``tenant``), what (``action`` and ``subject``: the masked number, the
    reference key or the message id), when (``at``, epoch ms), how many results
    (``results``: messages listed, or 1/0 for one message found or not), through what
    (``via``: ``api`` or ``desk``) and the request id."""

    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)

    schema_version: Literal[1] = Field(default=SCHEMA_VERSION, alias="schemaVersion")
    at_ms: int = Field(alias="at", ge=0)
    key_id: str = Field(alias="keyId")
    tenant: str
    action: Action
    subject: str
    results: int = Field(ge=0)
    via: Literal["api", "desk"] = "api"
    request_id: str = Field(default="-", alias="requestId")

    def to_json(self) -> bytes:
        """The record value (camelCase JSON)."""
        return orjson.dumps(self.model_dump(by_alias=True, mode="json"))

    @classmethod
    def from_json(cls, raw: bytes) -> AuditRecord:
        """Parse a record value; raises ``pydantic.ValidationError`` when it is not one."""
        return cls.model_validate_json(raw)
