"""Provider message ids in one normal form per provider, so a receipt finds its message.

The projection matches a receipt to its message by ``provider.name`` + ``provider.id`` exactly
(``schemas.keys``), so the adapters and the canonical endpoint (for acceptance events that
name an adapter's provider) write every id in the same form. Each rule changes only what
the provider's own format says is the same id (case of hex digits and UUIDs, leading zeros
of numeric SMPP ids, decimal vs hex SMPP ids per configuration): a different id never
becomes equal. Rules and sources: docs/providers.md, "Provider ids". Each adapter's
``normalize_id`` is its family's rule; ``registry.ProviderIds`` applies them on the canonical
endpoint.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from ingest.providers.fields import is_uuid
from schemas.phone import PhoneNumberError, normalize_e164

IdRule = Callable[[str, str | None], str]
"""An id rule: ``(provider id as given, the event's E.164 phone or None) -> normal form``;
``ValueError`` when the id cannot be one of that provider's."""

IdBase = Literal["text", "dec", "hex"]
"""How an SMSC writes SMPP message ids (``MSGSTATUS_SMPP_*_ID_BASE``)."""

_TWILIO_SID = re.compile(r"[A-Za-z]{2}[0-9a-fA-F]{32}")
_HEX = re.compile(r"[0-9a-fA-F]+")
_DEC = re.compile(r"[0-9]+")
_ULID = re.compile(r"[0-9A-HJKMNP-TV-Za-hjkmnp-tv-z]{26}")


def _lower_uuid(value: str) -> str | None:
    return str(uuid.UUID(value)) if is_uuid(value) else None


def twilio_sid(raw: str, phone: str | None = None) -> str:
    """``SM``/``MM`` + 32 hex digits: prefix upper case, digits lower case, as Twilio writes
    them (twilio-oai: pattern ``^(SM|MM)[0-9a-fA-F]{32}$``); other ids are kept as given."""
    value = raw.strip()
    if _TWILIO_SID.fullmatch(value):
        return value[:2].upper() + value[2:].lower()
    return value


def vonage_id(raw: str, phone: str | None = None) -> str:
    """Vonage SMS ``messageId`` (hex, written upper case: ``0A0000001234567B``) upper case;
    a UUID (Messages ``message_uuid``, newer SMS ids) lower case; others as given."""
    value = raw.strip()
    as_uuid = _lower_uuid(value)
    if as_uuid is not None:
        return as_uuid
    return value.upper() if _HEX.fullmatch(value) else value


def infobip_id(raw: str, phone: str | None = None) -> str:
    """Infobip ``messageId``: a UUID lower case; any other id as given (senders may choose
    their own ``messageId``, so its case is significant)."""
    value = raw.strip()
    return _lower_uuid(value) or value


def sinch_id(batch_id: str, recipient: str | None) -> str:
    """``<BATCH_ID>/<E.164 recipient>``: a Sinch batch has one id for all its recipients, so
    the recipient is part of the id. Batch ids are ULIDs (Crockford base32, case-insensitive),
    written upper case; a batch id alone (no recipient known) stays a batch id.

    Raises ``ValueError`` when the recipient is not a phone number.
    """
    batch = batch_id.strip()
    if _ULID.fullmatch(batch):
        batch = batch.upper()
    if recipient is None:
        return batch
    return f"{batch}/{normalize_e164(recipient)}"


def sinch_acceptance_id(raw: str, phone: str | None) -> str:
    """A Sinch id as an acceptance gives it: ``<batch id>/<recipient>``, or the batch id alone
    with the event's ``phone`` appended. Raises ``ValueError`` naming the form otherwise."""
    batch, _, recipient = raw.partition("/")
    try:
        return sinch_id(batch, recipient or phone)
    except PhoneNumberError as exc:
        raise ValueError(f"a Sinch id is <batch id>/<recipient>: {exc}") from None


@dataclass(frozen=True, slots=True)
class SmppIds:
    """SMPP message ids, configured by how the SMSC writes them (``text``, ``dec``, ``hex``).

    ``receipt_base`` is how receipts write ``id:``, ``submit_base`` how ``submit_sm_resp``
    wrote it (the id in the acceptance event). Numeric ids are written in the submit base
    without leading zeros (hex upper case), so ``id:0001784415`` (dec) and ``1B3A5F`` (hex)
    are one id; ``text`` ids are compared as given. Jasmin's own ids (UUIDs) are lower case.
    """

    receipt_base: IdBase = "text"
    submit_base: IdBase = "text"

    def receipt(self, raw: str) -> str:
        """A receipt's id in normal form; ``ValueError`` when it is not in ``receipt_base``."""
        return self._normal(raw, self.receipt_base)

    def submit(self, raw: str) -> str:
        """An acceptance's id in normal form; ``ValueError`` when not in ``submit_base``."""
        return self._normal(raw, self.submit_base)

    def acceptance(self, raw: str, phone: str | None) -> str:
        """:meth:`submit` as an id rule (:data:`IdRule`), for the canonical endpoint."""
        return self.submit(raw)

    def _normal(self, raw: str, base: IdBase) -> str:
        value = raw.strip()
        as_uuid = _lower_uuid(value)
        if as_uuid is not None or base == "text":
            return as_uuid or value
        pattern, radix = (_DEC, 10) if base == "dec" else (_HEX, 16)
        if not pattern.fullmatch(value):
            raise ValueError(f"an SMPP id in base {radix} was expected, got {value[:40]!r}")
        number = int(value, radix)
        return str(number) if self.submit_base == "dec" else format(number, "X")
