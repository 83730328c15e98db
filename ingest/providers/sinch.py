"""Sinch SMS delivery reports (``POST /webhooks/sinch``) -> canonical events.

Source: docs/providers.md section 4a (Sinch SMS REST API "Delivery reports"; Sinch SDK
references). Per-recipient reports (``recipient_delivery_report_sms|mms``) and batch reports
(``delivery_report_sms|mms``, ``full`` type, listing recipients) are read. The mapping
table and its decisions are written out in the project's docs/providers.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ingest.errors import InvalidBody
from ingest.providers import ids
from ingest.providers.auth import BasicAuthAdapter
from ingest.providers.common import (
    BASIC,
    JSON,
    NO_EVENT,
    UNKNOWN,
    AdapterSpec,
    Callback,
    Mapped,
    Receipt,
    Skip,
    collect,
    invalid_entry,
    secret_of,
    stamped,
)
from ingest.providers.fields import (
    invalid,
    json_object,
    phone_field,
    require_id,
    text_field,
    uuid_or_none,
)
from ingest.providers.times import read_time
from schemas.status import Status

if TYPE_CHECKING:
    from ingest.settings import IngestSettings

NAME = "sinch"
FAMILY = "sinch"
"""The ``provider.name`` of this adapter's events."""
RECIPIENT_TYPES = frozenset({"recipient_delivery_report_sms", "recipient_delivery_report_mms"})
BATCH_TYPES = frozenset({"delivery_report_sms", "delivery_report_mms"})

STATUSES: dict[str, Status | Skip] = {
    "queued": NO_EVENT,
    "dispatched": Status.SENT,
    "delivered": Status.DELIVERED,
    "failed": Status.UNDELIVERED,
    "deleted": Status.UNDELIVERED,
    "aborted": Status.REJECTED,
    "cancelled": Status.REJECTED,
    "rejected": Status.REJECTED,
    "unknown": Status.SENT,
}
"""``status`` (compared in lower case) -> canonical status; NO_EVENT = acknowledged without an
event. ``Expired`` depends on its code (:func:`classify`). Decisions: docs/providers.md."""

CODES: dict[str, str] = {
    "400": "Queued",
    "401": "Dispatched",
    "402": "Message unroutable",
    "403": "Internal error",
    "404": "Temporary delivery failure",
    "405": "Unmatched parameter",
    "406": "Internal expiry",
    "407": "Cancelled",
    "408": "Internal reject",
    "410": "Unmatched default originator",
    "411": "Exceeded parts limit",
    "412": "Unprovisioned region",
}
"""Sinch's own codes (4xx); other non-zero codes are the operator's network codes."""


def classify(word: str, code: str) -> Status | Skip:
    """The canonical status of a Sinch status and code. ``Expired`` with a Sinch code (4xx:
    expired inside Sinch, before the SMSC) is REJECTED; with a network code it expired at
    the operator after hand-off: UNDELIVERED."""
    key = word.lower()
    if key == "expired":
        return Status.REJECTED if code.startswith("4") and len(code) == 3 else Status.UNDELIVERED
    return stamped(STATUSES.get(key, UNKNOWN), word)


def _one(
    data: dict[str, Any],
    word: str,
    code: str,
    *,
    recipient: str | None,
    at: int | None,
    now: int,
    where: str = "recipient",
) -> Receipt | Skip:
    status = classify(word, code)
    if isinstance(status, Skip):
        return status
    batch = require_id(text_field(data, "batch_id"), "batch_id")
    phone = phone_field(recipient, where)
    ref = text_field(data, "client_reference") or ""
    pid = ids.sinch_id(batch, phone) if phone else None
    if pid is None and uuid_or_none(ref) is None:
        return Skip("no recipient and no message id in client_reference", word)
    return Receipt(
        status=status,
        occurred_ms=at or now,
        provider_status=word,
        code=code,
        message=CODES.get(code),
        provider_id=pid,
        message_id=uuid_or_none(ref),
        phone=phone,
        fingerprint={"id": pid or batch, "status": word, "code": code, "at": at, "ref": ref},
    )


def recipient_report(data: dict[str, Any], received_ms: int) -> Receipt | Skip:
    """Map a per-recipient report; ``occurredAt`` is ``operator_status_at`` (the SMSC's time),
    else ``at`` (when Sinch made the report). Raises :class:`InvalidBody`."""
    word = require_id(text_field(data, "status"), "status")
    code = text_field(data, "code") or "0"
    recipient = text_field(data, "recipient")
    if recipient is None:
        raise invalid("recipient", "required")
    at = read_time(text_field(data, "operator_status_at"), "operator_status_at") or read_time(
        text_field(data, "at"), "at"
    )
    return _one(data, word, code, recipient=recipient, at=at, now=received_ms)


def batch_report(data: dict[str, Any], received_ms: int) -> list[Receipt | Skip]:
    """Map a batch report: one receipt per listed recipient of each status (no time in it:
    the receive time). A summary without recipients yields an event only when
    ``client_reference`` names our message and the batch had one message.

    An unusable status entry or recipient is kept as a :class:`Skip` naming its index
    (``statuses[1].recipients[0]: ...``) and the rest still apply. Raises
    :class:`InvalidBody` only without a ``statuses`` array or a ``batch_id``.
    """
    statuses = data.get("statuses")
    if not isinstance(statuses, list):
        raise invalid("statuses", "required (an array)")
    require_id(text_field(data, "batch_id"), "batch_id")
    out: list[Receipt | Skip] = []
    counts = [s.get("count") for s in statuses if isinstance(s, dict)]
    total = sum(c for c in counts if isinstance(c, int) and not isinstance(c, bool))
    for index, entry in enumerate(statuses):
        try:
            out.extend(_status_entry(data, entry, f"statuses[{index}].", total, received_ms))
        except InvalidBody as exc:
            out.append(invalid_entry(exc))
    return out


def _status_entry(
    data: dict[str, Any], entry: object, where: str, total: int, now: int
) -> list[Receipt | Skip]:
    """The receipts of one ``statuses`` entry; a bad recipient is a :class:`Skip` of its own."""
    if not isinstance(entry, dict):
        raise invalid(where.rstrip("."), "must be an object")
    word = require_id(text_field(entry, "status", where), f"{where}status")
    code = text_field(entry, "code", where) or "0"
    recipients = entry.get("recipients") or []
    if not isinstance(recipients, list):
        raise invalid(f"{where}recipients", "must be an array of numbers")
    if not recipients:
        if total == 1:
            return [_one(data, word, code, recipient=None, at=None, now=now)]
        return [Skip("batch summary without recipients", word)]
    out: list[Receipt | Skip] = []
    for i, recipient in enumerate(recipients):
        spot = f"{where}recipients[{i}]"
        try:
            if not isinstance(recipient, str):
                raise invalid(spot, "must be a phone number (a string)")
            out.append(_one(data, word, code, recipient=recipient, at=None, now=now, where=spot))
        except InvalidBody as exc:
            out.append(invalid_entry(exc, word))
    return out


@dataclass(frozen=True, slots=True)
class SinchAdapter(BasicAuthAdapter):
    """``POST /webhooks/sinch``: JSON delivery reports behind HTTP Basic credentials."""

    name: str = NAME
    normalize_id = staticmethod(ids.sinch_acceptance_id)

    def handle(self, cb: Callback) -> Mapped:
        """Check the credentials (when configured), then map."""
        self.precheck(cb)
        data = json_object(cb.body)
        kind = text_field(data, "type") or ""
        if kind in RECIPIENT_TYPES:
            results = [recipient_report(data, cb.received_ms)]
        elif kind in BATCH_TYPES:
            results = batch_report(data, cb.received_ms)
        else:
            raise invalid("type", "not a Sinch delivery report type")
        return collect(results, NAME, FAMILY, cb.received_ms)


def from_settings(settings: IngestSettings) -> SinchAdapter:
    """The adapter configured with the Sinch Basic credentials."""
    return SinchAdapter(settings.sinch_webhook_username, secret_of(settings.sinch_webhook_password))


SPEC = AdapterSpec(
    NAME,
    ("POST",),
    FAMILY,
    from_settings,
    summary="Sinch delivery report",
    media_types=(JSON,),
    credential=BASIC,
)
"""This adapter's registry entry (``ingest.providers.registry``)."""
