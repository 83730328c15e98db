"""Infobip SMS delivery reports (``POST /webhooks/infobip``) -> canonical events.

Source: docs/providers.md section 3 (Infobip "Receive outbound SMS message report", "Message
status codes"; infobip-api-python-client). Reports come batched as ``{"results": [...]}``,
with the v1/v2 field names (``from``, ``smsCount``) or the v3 ones (``sender``,
``messageCount``); only fields common to both are read. The mapping table and its
decisions are written out in the project's docs/providers.md.
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
    lookup,
    secret_of,
    stamped,
)
from ingest.providers.fields import (
    invalid,
    json_object,
    recipient_hint,
    require_id,
    text_field,
    uuid_or_none,
)
from ingest.providers.times import read_time
from schemas.status import Status

if TYPE_CHECKING:
    from ingest.settings import IngestSettings

NAME = "infobip"
FAMILY = "infobip"
"""The ``provider.name`` of this adapter's events."""

BY_NAME: dict[str, Status | Skip] = {
    "PENDING_ACCEPTED": NO_EVENT,
    "PENDING_ENROUTE": Status.SENT,
    "PENDING_WAITING_DELIVERY": Status.SENT,
    "DELIVERED_TO_OPERATOR": Status.SENT,
    "DELIVERED_TO_HANDSET": Status.DELIVERED,
    "UNDELIVERABLE_REJECTED_OPERATOR": Status.UNDELIVERED,
    "UNDELIVERABLE_NOT_DELIVERED": Status.UNDELIVERED,
    "UNDELIVERABLE_NOT_SENT": Status.REJECTED,
    "EXPIRED_EXPIRED": Status.UNDELIVERED,
    "EXPIRED_DLR_UNKNOWN": Status.SENT,
}
"""``status.name`` -> canonical status; NO_EVENT = acknowledged without an event. Names not
listed fall back to their group (:data:`BY_GROUP`). Decisions: docs/providers.md."""

BY_GROUP: dict[str, Status | Skip] = {
    "ACCEPTED": NO_EVENT,
    "PENDING": Status.SENT,
    "DELIVERED": Status.SENT,
    "UNDELIVERABLE": Status.UNDELIVERED,
    "EXPIRED": Status.UNDELIVERED,
    "REJECTED": Status.REJECTED,
}
"""``status.groupName`` -> canonical status for names not in :data:`BY_NAME`; the DELIVERED
group holds DELIVERED_TO_OPERATOR too, so an unknown name in it is only SENT."""


def _status(status: dict[str, Any], where: str) -> tuple[str, Status | Skip]:
    """(the provider status word, its canonical status or :class:`Skip`)."""
    name = (text_field(status, "name", where) or "").upper()
    group = (text_field(status, "groupName", where) or "").upper()
    if not name and not group:
        raise invalid(f"{where}name", "required")
    if name in BY_NAME:
        return name, lookup(BY_NAME, name)
    return name or group, stamped(BY_GROUP.get(group, UNKNOWN), name or group)


def _error(item: dict[str, Any], where: str) -> tuple[str, str | None]:
    """(code, message): ``error.id`` as text ("0" without error), its description if not 0."""
    error = item.get("error") or {}
    if not isinstance(error, dict):
        raise invalid(f"{where}error", "must be an object")
    code = text_field(error, "id", f"{where}error.") or "0"
    if code == "0":
        return code, None
    text = text_field(error, "description", f"{where}error.") or text_field(
        error, "name", f"{where}error."
    )
    return code, text


def receipt(item: object, where: str, received_ms: int) -> Receipt | Skip:
    """Map one report of ``results``. ``messageId`` and ``status.name`` (or ``groupName``)
    are required; ``callbackData`` holding a UUID names our message; ``occurredAt`` is
    ``doneAt``, else ``sentAt``, else the receive time. Raises :class:`InvalidBody`."""
    if not isinstance(item, dict):
        raise invalid(where.rstrip("."), "a report is a JSON object")
    pid = ids.infobip_id(require_id(text_field(item, "messageId", where), f"{where}messageId"))
    status_obj = item.get("status")
    if not isinstance(status_obj, dict):
        raise invalid(f"{where}status", "required (an object)")
    word, status = _status(status_obj, f"{where}status.")
    if isinstance(status, Skip):
        return status
    code, message = _error(item, where)
    done = text_field(item, "doneAt", where)
    at = read_time(done, f"{where}doneAt") or read_time(
        text_field(item, "sentAt", where), f"{where}sentAt"
    )
    ref = text_field(item, "callbackData", where) or ""
    return Receipt(
        status=status,
        occurred_ms=at or received_ms,
        provider_status=word,
        code=code,
        message=message,
        provider_id=pid,
        message_id=uuid_or_none(ref),
        phone=recipient_hint(text_field(item, "to", where), f"{where}to"),
        fingerprint={"id": pid, "status": word, "code": code, "at": done, "ref": ref},
    )


def reports(data: dict[str, Any], received_ms: int, max_results: int) -> Mapped:
    """Map a whole ``{"results": [...]}`` body, one event per report.

    Every usable report is mapped; an unusable one (no id, no status, not an object) is
    kept as a :class:`Skip` naming its index and field (``results[3].status.name: required``)
    and the others still apply (docs/providers.md, "Batches"). Raises :class:`InvalidBody`
    only when there is no ``results`` array or it is over ``max_results``.
    """
    results = data.get("results")
    if not isinstance(results, list):
        raise invalid("results", "required (an array)")
    if len(results) > max_results:
        raise invalid("results", f"at most {max_results} reports per request")
    entries: list[Receipt | Skip] = []
    for index, item in enumerate(results):
        try:
            entries.append(receipt(item, f"results[{index}].", received_ms))
        except InvalidBody as exc:
            entries.append(invalid_entry(exc))
    return collect(entries, NAME, FAMILY, received_ms, batch=True)


@dataclass(frozen=True, slots=True)
class InfobipAdapter(BasicAuthAdapter):
    """``POST /webhooks/infobip``: batched JSON reports behind HTTP Basic credentials."""

    max_results: int = 10_000
    name: str = NAME
    normalize_id = staticmethod(ids.infobip_id)

    def handle(self, cb: Callback) -> Mapped:
        """Check the credentials (when configured), then map."""
        self.precheck(cb)
        return reports(json_object(cb.body), cb.received_ms, self.max_results)


def from_settings(settings: IngestSettings) -> InfobipAdapter:
    """The adapter configured with the Infobip Basic credentials and ``max_batch_events``."""
    return InfobipAdapter(
        settings.infobip_webhook_username,
        secret_of(settings.infobip_webhook_password),
        settings.max_batch_events,
    )


SPEC = AdapterSpec(
    NAME,
    ("POST",),
    FAMILY,
    from_settings,
    summary="Infobip reports",
    media_types=(JSON,),
    credential=BASIC,
)
"""This adapter's registry entry (``ingest.providers.registry``)."""
