"""SMPP delivery receipts forwarded over HTTP by Jasmin or Kannel (``GET|POST /webhooks/smpp``).

Source: docs/providers.md section 6 (SMPP v3.4 Appendix B; Jasmin "Receiving DLR"; Kannel
dlr-mask). Three shapes are read, from the query string or a form body:

- Jasmin DLRs: ``id`` (Jasmin's message UUID), ``message_status`` (``ESME_*`` for the SMSC's
  answer, the receipt state such as ``DELIVRD`` otherwise), ``donedate``, ``err``, ...
- a receipt text (``id:… sub:… dlvrd:… submit date:… done date:… stat:… err:… text:…``) in
  ``receipt`` (Kannel: ``receipt=%A`` in the dlr-url) or as a ``text/plain`` body;
- a Kannel DLR type alone (``type=%d``) with our message id in ``messageId``; with Kannel's
  ``ACK/<code>/<text>`` or ``NACK/<code>/<text>`` in ``receipt`` (what ``%A`` holds for SMSC
  answers), the SMPP error code (``0x0000000b``) and its text are kept.

``messageId`` (our UUID, placed in the dlr-url by the sender) and ``to`` are read in all
shapes. The message text (``text:``) is never read. Jasmin must get exactly ``ACK/Jasmin``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, tzinfo
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from ingest.providers import ids
from ingest.providers.auth import SecretAdapter, check_token
from ingest.providers.common import (
    FORM,
    NO_EVENT,
    UNKNOWN,
    AdapterSpec,
    Callback,
    Credential,
    Mapped,
    Receipt,
    Skip,
    collect,
    lookup,
    secret_of,
    stamped,
)
from ingest.providers.fields import (
    form_pairs,
    invalid,
    recipient_hint,
    require_id,
    strip_bom,
    uuid_or_none,
)
from ingest.providers.times import read_time
from schemas.status import Status

if TYPE_CHECKING:
    from ingest.settings import IngestSettings

NAME = "smpp"
FAMILY = "smpp"
"""The ``provider.name`` of this adapter's events."""
ACK = b"ACK/Jasmin"

STATES: dict[str, Status | Skip] = {
    "ENROUTE": Status.SENT,
    "ACCEPTD": Status.SENT,
    "ACCEPTED": Status.SENT,
    "UNKNOWN": Status.SENT,
    "DELIVRD": Status.DELIVERED,
    "DELIVERED": Status.DELIVERED,
    "UNDELIV": Status.UNDELIVERED,
    "UNDELIVERABLE": Status.UNDELIVERED,
    "EXPIRED": Status.UNDELIVERED,
    "DELETED": Status.UNDELIVERED,
    "REJECTD": Status.REJECTED,
    "REJECTED": Status.REJECTED,
    "SKIPPED": Status.REJECTED,
    "SCHEDLD": NO_EVENT,
}
"""Receipt ``stat`` (message_state, SMPP v3.4 5.2.28 and v5) -> canonical status, with the
long spellings some SMSCs use; NO_EVENT = acknowledged without an event. Decisions:
docs/providers.md, SMPP table."""

KANNEL_TYPES: dict[str, Status | Skip] = {
    "1": Status.DELIVERED,
    "2": Status.UNDELIVERED,
    "4": NO_EVENT,
    "8": Status.SENT,
    "16": Status.REJECTED,
}
"""Kannel dlr-mask bit (``%d``) -> canonical status, used when there is no receipt state.
Any other ``type`` is acknowledged without an event (reason ``unknown``)."""

_KANNEL_ANSWER = re.compile(r"(?P<word>N?ACK)/(?P<code>[^/]*)(?:/(?P<text>.*))?", re.DOTALL)
"""Kannel's ``%A`` for an SMSC answer: ``NACK/0x0000000b/Invalid Destination Address``."""

_FIELD = re.compile(r"(?i)(?<![\w])(id|sub|dlvrd|submit[ _]date|done[ _]date|stat|err):(\S*)")
_TEXT = re.compile(r"(?i)(?<![\w])text:")


def parse_receipt(text: str) -> dict[str, str]:
    """The fields of an SMPP receipt text, keys in lower case (``submit date``, ``done date``).

    Everything from ``text:``/``Text:`` on is the message's own text and is dropped first, so
    an ``id:`` inside it is never read. Unknown or missing fields are simply absent.
    """
    head = _TEXT.split(text, maxsplit=1)[0]
    fields: dict[str, str] = {}
    for match in _FIELD.finditer(head):
        fields.setdefault(match.group(1).lower().replace("_", " "), match.group(2))
    return fields


def error_code(raw: str | None) -> str:
    """An ``err`` value as text: decimal digits without leading zeros (``012`` -> ``12``),
    others as given, ``0`` when absent."""
    value = (raw or "").strip()
    if not value:
        return "0"
    return str(int(value)) if value.isdigit() else value


@dataclass(frozen=True, slots=True)
class _Fields:
    """What one DLR says, whatever its shape."""

    shape: str
    state: str
    status: Status | Skip
    code: str
    raw_id: str | None
    done: str | None
    message: str | None = None


def _jasmin(params: Mapping[str, str]) -> _Fields:
    state = params["message_status"].strip().upper()
    if state.startswith("ESME_"):
        # The SMSC's answer to submit_sm: ESME_ROK = accepted (handed on), else refused.
        ok = state == "ESME_ROK"
        status: Status | Skip = Status.SENT if ok else Status.REJECTED
        code = "0" if ok else state
    else:
        status = lookup(STATES, state)
        code = error_code(params.get("err"))
    raw_id = params.get("id")
    return _Fields("jasmin", state, status, code, raw_id, params.get("donedate"))


def _receipt_text(text: str, params: Mapping[str, str]) -> _Fields:
    answer = _KANNEL_ANSWER.fullmatch(text.strip())
    if answer is not None:
        return _kannel_answer(params, answer)
    fields = parse_receipt(text)
    state = fields.get("stat", "").upper()
    if not state:
        return _kannel_type(params, fields.get("id"))
    code = error_code(fields.get("err"))
    return _Fields(
        "receipt", state, lookup(STATES, state), code, fields.get("id"), fields.get("done date")
    )


def _kannel_type(params: Mapping[str, str], raw_id: str | None) -> _Fields:
    kind = params.get("type", "").strip()
    if not kind:
        skip = Skip("no status in the DLR", "", "neither stat:, message_status nor type")
        return _Fields("kannel", "", skip, "0", raw_id, None)
    state = f"type {kind[:20]}"
    status = stamped(KANNEL_TYPES.get(kind, UNKNOWN), state)
    return _Fields("kannel", state, status, "0", raw_id, None)


def _kannel_answer(params: Mapping[str, str], answer: re.Match[str]) -> _Fields:
    """Kannel's ``(N)ACK/<code>/<text>``: the status from ``type`` (else NACK = REJECTED,
    ACK = SENT, as Kannel's types 16 and 8), the SMPP error code as the gateway wrote it."""
    fields = _kannel_type(params, params.get("smsc_id"))
    code = answer["code"].strip() or "0"
    status = fields.status
    if not params.get("type", "").strip():
        status = Status.REJECTED if answer["word"] == "NACK" else Status.SENT
    state = fields.state or answer["word"]
    text = (answer["text"] or "").strip() or None
    return _Fields("kannel", state, status, code, fields.raw_id, None, text)


def fields_of(params: Mapping[str, str], body_text: str | None) -> _Fields:
    """Read a DLR of any of the three shapes (module docstring). Raises InvalidBody."""
    if "message_status" in params:
        return _jasmin(params)
    text = params.get("receipt") or body_text
    if text:
        return _receipt_text(text, params)
    return _kannel_type(params, params.get("smsc_id"))


@dataclass(frozen=True, slots=True)
class SmppAdapter(SecretAdapter):
    """``GET|POST /webhooks/smpp``: DLRs from an SMPP gateway, behind the ``token`` query
    parameter when ``secret`` is set."""

    smpp_ids: ids.SmppIds = field(default_factory=ids.SmppIds)
    zone: tzinfo = UTC
    name: str = NAME

    @classmethod
    def create(cls, token: str | None, smpp_ids: ids.SmppIds, zone_name: str) -> SmppAdapter:
        """An adapter reading receipt dates in the IANA time zone ``zone_name``."""
        zone: tzinfo = UTC if zone_name == "UTC" else ZoneInfo(zone_name)
        return cls(token, smpp_ids, zone)

    def precheck(self, cb: Callback) -> None:
        """Check ``token`` (when configured): it is in the query string."""
        if self.secret is not None:
            check_token(dict(reversed(cb.query)).get("token"), self.secret)

    def normalize_id(self, raw: str, phone: str | None) -> str:
        """An acceptance's SMPP id in normal form (:meth:`ids.SmppIds.acceptance`)."""
        return self.smpp_ids.acceptance(raw, phone)

    def handle(self, cb: Callback) -> Mapped:
        """Check ``token`` (when configured), then map one DLR."""
        query = dict(reversed(cb.query))  # the first value of a repeated name wins
        self.precheck(cb)
        params, body_text = dict(query), None
        if cb.method == "POST" and cb.body:
            if cb.content_type == "text/plain":
                body_text = _utf8(cb.body)
            else:
                params.update((k, v) for k, v in reversed(form_pairs(cb.body)))
        params.pop("token", None)
        return collect(
            [self.receipt(params, body_text, cb.received_ms)], NAME, FAMILY, cb.received_ms
        )

    def receipt(self, params: Mapping[str, str], body_text: str | None, now: int) -> Receipt | Skip:
        """Map one DLR: the provider id is the receipt's (or Jasmin's) id in normal form
        (:class:`ids.SmppIds`); ``occurredAt`` is the done date in this adapter's time zone,
        else the receive time. Raises :class:`InvalidBody` for a malformed DLR."""
        dlr = fields_of(params, body_text)
        if isinstance(dlr.status, Skip):
            return dlr.status
        message_id = uuid_or_none(params.get("messageId"))
        pid = None
        if dlr.raw_id or message_id is None:
            try:
                pid = self.smpp_ids.receipt(require_id(dlr.raw_id, "id"))
            except ValueError as exc:
                raise invalid("id", str(exc)) from None
        fingerprint: dict[str, Any] = {"id": pid, "state": dlr.state, "code": dlr.code}
        fingerprint |= {"done": dlr.done, "shape": dlr.shape, "ref": message_id}
        return Receipt(
            status=dlr.status,
            occurred_ms=read_time(dlr.done, "done date", self.zone) or now,
            provider_status=dlr.state,
            code=dlr.code,
            message=dlr.message,
            provider_id=pid,
            message_id=message_id,
            phone=recipient_hint(params.get("to"), "to"),
            fingerprint=fingerprint,
        )


def _utf8(body: bytes) -> str:
    try:
        return strip_bom(body).decode("utf-8")
    except UnicodeDecodeError:
        raise invalid("body", "a receipt text is UTF-8") from None


def from_settings(settings: IngestSettings) -> SmppAdapter:
    """The adapter configured with the SMPP token, id bases and time zone."""
    return SmppAdapter.create(
        secret_of(settings.smpp_webhook_token),
        ids.SmppIds(settings.smpp_receipt_id_base, settings.smpp_submit_id_base),
        settings.smpp_timezone,
    )


SPEC = AdapterSpec(
    NAME,
    ("GET", "POST"),
    FAMILY,
    from_settings,
    summary="SMPP DLR (Jasmin, Kannel)",
    media_types=(FORM, "text/plain"),
    credential=Credential("SmppToken", {"type": "apiKey", "in": "query", "name": "token"}),
    answer=ACK,
)
"""This adapter's registry entry (``ingest.providers.registry``)."""
