"""Readers of provider callback fields: JSON and form bodies, ids, phone numbers, UUIDs.

Each raises :class:`InvalidBody` naming the field it could not read (HTTP 400, or a skipped
entry of a batch: docs/providers.md, "Batches and unusable input"). Pure: no aiohttp.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl

import orjson

from ingest.errors import InvalidBody
from schemas.events import UUID_TEXT
from schemas.phone import PhoneNumberError, normalize_e164
from schemas.problems import FieldError

log = logging.getLogger(__name__)

_CHANNEL_PREFIX = re.compile(r"^[a-z_]+:")

BOM = b"\xef\xbb\xbf"
"""The UTF-8 byte-order mark some gateways put before a JSON or form body."""


def strip_bom(body: bytes) -> bytes:
    """``body`` without one leading UTF-8 byte-order mark. Call it after any signature or hash
    check (they cover the bytes as sent) and before parsing."""
    return body[3:] if body.startswith(BOM) else body


def invalid(field_name: str, message: str) -> InvalidBody:
    """An :class:`InvalidBody` naming one field."""
    return InvalidBody([FieldError(field_name, message)])


def is_uuid(value: str) -> bool:
    """True for a UUID in its 36-character text form (any case)."""
    return UUID_TEXT.fullmatch(value) is not None


def uuid_or_none(value: object) -> str | None:
    """The lower-case UUID when ``value`` is a UUID string (a client reference), else None."""
    if isinstance(value, str) and is_uuid(value.strip()):
        return str(uuid.UUID(value.strip()))
    return None


def text_field(data: Mapping[str, Any], name: str, where: str = "") -> str | None:
    """A field as text: strings as given, integers as decimal; None when absent or empty.

    Raises :class:`InvalidBody` for other JSON types (objects, lists, booleans).
    """
    value = data.get(name)
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise invalid(f"{where}{name}", "must be a string")
    return str(value)


def require_id(value: str | None, name: str) -> str:
    """A provider id: present, at most 255 characters, printable (docs/pitfalls.md: starlette#2563).

    Raises :class:`InvalidBody` naming ``name`` otherwise.
    """
    text = (value or "").strip()
    if not text:
        raise invalid(name, "required")
    if len(text) > 255 or not text.isprintable():
        raise invalid(name, "not a provider message id (at most 255 printable characters)")
    return text


def phone_field(value: str | None, name: str) -> str | None:
    """A recipient number in E.164 (``+`` added, ``whatsapp:``/``rcs:`` prefixes dropped).

    None when absent; raises :class:`InvalidBody` naming ``name`` when it is not a number.
    """
    if value is None or value == "":
        return None
    try:
        return normalize_e164(_CHANNEL_PREFIX.sub("", value.strip()))
    except PhoneNumberError as exc:
        raise invalid(name, str(exc)) from None


def recipient_hint(value: str | None, name: str) -> str | None:
    """A receipt's recipient in E.164, or None when absent or unreadable.

    A receipt is identified by its provider message id; the recipient only helps route it
    when an SMSC reused that id (docs/providers.md, "Provider ids reused"). So an unreadable
    one is logged and left out, never a reason to refuse the receipt: a 4xx loses the status
    for good, since providers retry only 5xx and timeouts.
    """
    try:
        return phone_field(value, name)
    except InvalidBody:
        log.warning("ignoring the unreadable recipient in %s; the receipt is applied", name)
        return None


def json_value(body: bytes) -> Any:
    """The body (one leading BOM dropped) parsed as JSON; raises :class:`InvalidBody`."""
    try:
        return orjson.loads(strip_bom(body))
    except orjson.JSONDecodeError as exc:
        raise invalid("body", f"not valid JSON: {exc}") from None


def json_object(body: bytes) -> dict[str, Any]:
    """The body (one leading BOM dropped) as a JSON object; raises :class:`InvalidBody`
    otherwise."""
    data = json_value(body)
    if not isinstance(data, dict):
        raise invalid("body", "expected a JSON object")
    return data


def form_pairs(body: bytes) -> list[tuple[str, str]]:
    """An ``application/x-www-form-urlencoded`` body as (name, value) pairs, blanks kept.

    Blank values matter: Twilio signs ``ErrorCode=`` too (docs/providers.md section 1).
    Raises :class:`InvalidBody` when the body is not UTF-8.
    """
    try:
        text = strip_bom(body).decode("utf-8")
    except UnicodeDecodeError:
        raise invalid("body", "form data is not UTF-8") from None
    return parse_qsl(text, keep_blank_values=True)
