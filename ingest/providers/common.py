"""What every provider adapter shares: the callback as received, status tables, the mapping
result and the record of a receipt, and the spec an adapter module declares for the registry.
Field readers: :mod:`ingest.providers.fields`; times: :mod:`ingest.providers.times`.

Nothing here imports aiohttp: adapters are pure functions of a :class:`Callback`, so they are
unit-tested without a server. Field errors are collected as :class:`InvalidBody` (HTTP 400).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Protocol

from pydantic import SecretStr, ValidationError

from ingest.errors import InvalidBody
from ingest.providers.fields import invalid
from schemas.events import EventRecord, ProviderInfo, derive_event_id, new_record
from schemas.status import Status

if TYPE_CHECKING:
    from ingest.settings import IngestSettings


@dataclass(frozen=True, slots=True)
class Callback:
    """One provider callback as the HTTP handler received it.

    ``url``: the public URL the provider called (``MSGSTATUS_PUBLIC_BASE_URL`` + the request
    path and query exactly as received); ``query``: the decoded query pairs in order, blank
    values kept; ``headers``: lower-case names; ``body``: raw bytes; ``content_type``: the
    media type in lower case without parameters; ``received_ms``: epoch ms (UTC).
    """

    method: str
    url: str
    query: tuple[tuple[str, str], ...]
    headers: Mapping[str, str]
    body: bytes
    content_type: str
    received_ms: int

    def header(self, name: str) -> str | None:
        """A header's value by lower-case name, or None."""
        return self.headers.get(name)


@dataclass(frozen=True, slots=True)
class Skip:
    """A callback entry acknowledged without an event, and why (logged and counted).

    ``reason`` is a fixed phrase (the metric's label: never user input); ``detail`` names
    the entry and field for the log, e.g. ``results[3].status.name: required``.
    """

    reason: str
    provider_status: str
    detail: str = ""


NO_EVENT = Skip("no canonical event for this status", "")
"""A status table's value for a provider status that is acknowledged without an event."""

UNKNOWN = Skip("unknown", "")
"""What :func:`lookup` gives a provider status its table does not list."""


def stamped(outcome: Status | Skip, word: str) -> Status | Skip:
    """A status table's value for the provider status ``word``: a :class:`Skip` names it."""
    return replace(outcome, provider_status=word) if isinstance(outcome, Skip) else outcome


def lookup(table: Mapping[str, Status | Skip], word: str) -> Status | Skip:
    """``word``'s canonical status in a status table, else the table's :class:`Skip` or
    :data:`UNKNOWN`, naming ``word`` (tables: docs/providers.md, "Mapping tables")."""
    return stamped(table.get(word, UNKNOWN), word)


INVALID_ENTRY = "invalid entry"
"""The :class:`Skip` reason of one unusable entry of a batched body (docs/providers.md)."""


def invalid_entry(exc: InvalidBody, word: str = "") -> Skip:
    """The :class:`Skip` of a batch entry that failed validation, naming its fields."""
    detail = "; ".join(f"{e.field}: {e.message}" for e in exc.errors)
    return Skip(INVALID_ENTRY, word, detail[:500])


@dataclass(slots=True)
class Mapped:
    """The result of mapping one callback: canonical events, and the entries skipped."""

    records: list[EventRecord] = field(default_factory=list)
    skipped: list[Skip] = field(default_factory=list)


class Adapter(Protocol):
    """A provider adapter: checks a callback's credentials and maps it to canonical events.

    ``configured`` is False when no credential is set; the routes then refuse its callbacks
    unless its ``name`` is in ``allow_unsigned_providers``. :meth:`handle` raises
    ``Unauthenticated`` (401), ``UnsignedRetry`` (503) or ``InvalidBody`` (400).
    """

    @property
    def name(self) -> str:
        """The adapter's name: its path ``/webhooks/<name>`` and the events' ``source``."""
        ...

    @property
    def configured(self) -> bool:
        """True when the adapter has the credentials to check its callbacks."""
        ...

    def precheck(self, cb: Callback) -> None:
        """Check what the headers and query alone can prove, before the body is read (``cb``
        has an empty body); raises ``Unauthenticated`` or ``UnsignedRetry``. Adapters whose
        credential covers the body check at least that it is present and well-formed."""
        ...

    def handle(self, cb: Callback) -> Mapped:
        """Authenticate (when configured) and map the callback."""
        ...

    def normalize_id(self, raw: str, phone: str | None) -> str:
        """A ``provider.id`` of this adapter's family in the form its receipts carry (an
        acceptance's ``phone``, E.164, completes ids that include the recipient); raises
        ``ValueError`` when ``raw`` cannot be such an id (docs/providers.md, "Provider ids")."""
        ...


@dataclass(frozen=True, slots=True)
class Credential:
    """How a provider proves itself, as an OpenAPI security scheme: ``name`` (the scheme's
    key) and ``scheme`` (its object, e.g. ``{"type": "http", "scheme": "basic"}``).
    ``optional``: a callback without it is answered 503 for a signed retry, not 401."""

    name: str
    scheme: Mapping[str, str]
    optional: bool = False


@dataclass(frozen=True, slots=True)
class AdapterSpec:
    """What one adapter module declares (its ``SPEC``) for the registry
    (``ingest.providers.registry``), which drives the routes, the id normal forms, the
    allowed names and the OpenAPI document.

    ``name``: the path ``/webhooks/<name>``, the events' ``source`` and the name
    ``allow_unsigned_providers`` takes; ``methods``: the HTTP methods the provider calls
    with; ``family``: the events' ``provider.name`` (ids of that name, also on the canonical
    endpoint, go through the adapter's :meth:`Adapter.normalize_id`); ``from_settings``: the
    adapter configured from the ingest settings; ``summary``, ``media_types`` (of a POST
    body) and ``credential``: the route as the OpenAPI document describes it; ``answer``: the
    exact ``text/plain`` body a success answer must be (Jasmin resends otherwise), or None
    for the JSON summary.
    """

    name: str
    methods: tuple[str, ...]
    family: str
    from_settings: Callable[[IngestSettings], Adapter]
    summary: str
    media_types: tuple[str, ...]
    credential: Credential
    answer: bytes | None = None


FORM = "application/x-www-form-urlencoded"
JSON = "application/json"
"""Media types of callback bodies (``AdapterSpec.media_types``)."""

BASIC = Credential("Basic", {"type": "http", "scheme": "basic"})
"""HTTP Basic credentials (RFC 7617), as Infobip and Sinch send them."""


def secret_of(value: SecretStr | None) -> str | None:
    """A credential setting's text, or None when it is not set."""
    return value.get_secret_value() if value is not None else None


@dataclass(frozen=True, slots=True)
class Receipt:
    """One provider status report, read from a callback, before it becomes an EventRecord.

    ``fingerprint`` holds the provider fields that identify this report: the event id is
    derived from it (with the adapter's name), so a retried callback gives the same id and
    two different reports never share one.
    """

    status: Status
    occurred_ms: int
    provider_status: str
    code: str
    fingerprint: dict[str, Any]
    provider_id: str | None = None
    message: str | None = None
    message_id: str | None = None
    phone: str | None = None


def receipt_record(receipt: Receipt, source: str, family: str, received_ms: int) -> EventRecord:
    """The log record of a receipt (``source`` = adapter name, ``family`` = ``provider.name``),
    validated (:func:`schemas.events.new_record`); its event id is derived from the adapter's
    name and the receipt's fingerprint.

    Raises :class:`InvalidBody` if the event model refuses it (never a 500).
    """
    try:
        return new_record(
            event_id=derive_event_id({"source": source, **receipt.fingerprint}),
            message_id=receipt.message_id,
            status=receipt.status,
            occurred_ms=receipt.occurred_ms,
            received_ms=received_ms,
            phone_number=receipt.phone,
            provider=ProviderInfo(
                name=family,
                id=receipt.provider_id,
                status=receipt.provider_status[:255],
                code=receipt.code[:255],
                message=receipt.message[:1000] if receipt.message else None,
            ),
            source=source,
        )
    except ValidationError as exc:
        # Adapters check every field they read; this is the net for anything they missed.
        raise invalid(
            "body", f"not a valid event: {exc.errors(include_url=False)[0]['msg']}"
        ) from None


def collect(
    results: Iterable[Receipt | Skip],
    source: str,
    family: str,
    received_ms: int,
    *,
    batch: bool = False,
) -> Mapped:
    """The records of the receipts (:func:`receipt_record`) and the skips, in order.

    A receipt the event model refuses raises :class:`InvalidBody` (400), or with ``batch``
    becomes an ``invalid entry`` skip of its own (docs/providers.md, "Batches").
    """
    mapped = Mapped()
    for result in results:
        if isinstance(result, Skip):
            mapped.skipped.append(result)
            continue
        try:
            mapped.records.append(receipt_record(result, source, family, received_ms))
        except InvalidBody as exc:
            if not batch:
                raise
            mapped.skipped.append(invalid_entry(exc))
    return mapped
