"""Sinch adapter: per-recipient and batch delivery reports, Basic credentials (no server)."""

from __future__ import annotations

import dataclasses
import uuid
from typing import Any

import orjson
import pytest

from ingest.errors import InvalidBody, Unauthenticated
from ingest.providers.common import Callback
from ingest.providers.sinch import SinchAdapter
from schemas.status import Status
from tests.support.providers import basic, callback

ADAPTER = SinchAdapter("sinch-user", "sinch-password-0001")
AUTH = {"Authorization": basic("sinch-user", "sinch-password-0001")}
NOW_MS = 1_736_944_300_000


def new_batch() -> str:
    """An invented Sinch batch id (a 26-character ULID)."""
    return "01J" + uuid.uuid4().hex[:23].upper()  # hex digits are Crockford base32 too


def per_recipient(status: str, code: int = 0, **extra: Any) -> dict[str, Any]:
    """A synthetic ``recipient_delivery_report_sms``."""
    body: dict[str, Any] = {
        "type": "recipient_delivery_report_sms",
        "batch_id": new_batch(),
        "recipient": "15550100001",
        "code": code,
        "status": status,
        "at": "2025-01-15T12:30:08.120Z",
        "operator_status_at": "2025-01-15T12:30:00Z",
        "encoding": "GSM",
        "number_of_message_parts": 1,
    }
    body.update(extra)
    return body


def _post(body: dict[str, Any], headers: dict[str, str] | None = None) -> Callback:
    return callback(
        orjson.dumps(body), headers=AUTH if headers is None else headers, received_ms=NOW_MS
    )


@pytest.mark.parametrize(
    ("word", "code", "status"),
    [
        ("Dispatched", 401, Status.SENT),
        ("Delivered", 0, Status.DELIVERED),
        ("Failed", 11, Status.UNDELIVERED),
        ("Deleted", 0, Status.UNDELIVERED),
        ("Aborted", 403, Status.REJECTED),
        ("Cancelled", 407, Status.REJECTED),
        ("Rejected", 408, Status.REJECTED),
        ("Expired", 406, Status.REJECTED),
        ("Expired", 27, Status.UNDELIVERED),
        ("Unknown", 0, Status.SENT),
    ],
)
def test_each_status_maps_per_the_table(word: str, code: int, status: Status) -> None:
    """Every Sinch status (Expired by its code) maps per the table; id is batch/recipient."""
    body = per_recipient(word, code)
    record = ADAPTER.handle(_post(body)).records[0]
    assert record.status is status
    assert record.provider.name == "sinch"
    assert record.provider.id == f"{body['batch_id']}/+15550100001"
    assert (record.provider.status, record.provider.code) == (word, str(code))
    assert record.occurred_ms == 1_736_944_200_000  # operator_status_at
    assert record.phone_number == "+15550100001"
    assert record.source == "sinch"


def test_queued_gives_no_event_and_unknown_words_are_skipped() -> None:
    """Queued is acknowledged without an event; an unknown status word too."""
    assert ADAPTER.handle(_post(per_recipient("Queued", 400))).records == []
    assert ADAPTER.handle(_post(per_recipient("Teleported"))).skipped[0].reason == "unknown"


def test_sinch_codes_are_described() -> None:
    """A Sinch 4xx code carries its documented meaning as provider.message."""
    record = ADAPTER.handle(_post(per_recipient("Aborted", 402))).records[0]
    assert record.provider.message == "Message unroutable"


def test_client_reference_uuid_names_our_message() -> None:
    """client_reference holding a UUID sets messageId."""
    mid = str(uuid.uuid4())
    assert (
        ADAPTER.handle(_post(per_recipient("Delivered", client_reference=mid)))
        .records[0]
        .message_id
        == mid
    )


def test_without_operator_time_the_report_time_is_used() -> None:
    """occurredAt falls back to ``at`` (when Sinch made the report)."""
    body = per_recipient("Delivered")
    del body["operator_status_at"]
    assert ADAPTER.handle(_post(body)).records[0].occurred_ms == 1_736_944_208_120


def test_batch_report_gives_one_event_per_recipient() -> None:
    """A full batch report: each listed recipient's status is its own message's event."""
    batch = new_batch()
    body = {
        "type": "delivery_report_sms",
        "batch_id": batch,
        "total_message_count": 3,
        "statuses": [
            {
                "code": 0,
                "status": "Delivered",
                "count": 2,
                "recipients": ["15550100001", "15550100002"],
            },
            {"code": 11, "status": "Failed", "count": 1, "recipients": ["15550100003"]},
        ],
    }
    records = ADAPTER.handle(_post(body)).records
    assert [(r.provider.id, r.status) for r in records] == [
        (f"{batch}/+15550100001", Status.DELIVERED),
        (f"{batch}/+15550100002", Status.DELIVERED),
        (f"{batch}/+15550100003", Status.UNDELIVERED),
    ]
    assert all(r.occurred_ms == NOW_MS for r in records)  # batch reports carry no time
    assert len({r.event_id for r in records}) == 3


def test_summary_without_recipients_names_a_message_only_through_client_reference() -> None:
    """A summary of a one-message batch maps by client_reference; a larger one is skipped."""
    mid = str(uuid.uuid4())
    one = {
        "type": "delivery_report_sms",
        "batch_id": new_batch(),
        "client_reference": mid,
        "statuses": [{"code": 0, "status": "Delivered", "count": 1}],
    }
    [record] = ADAPTER.handle(_post(one)).records
    assert (record.message_id, record.provider.id, record.status) == (mid, None, Status.DELIVERED)
    many = {**one, "statuses": [{"code": 0, "status": "Delivered", "count": 5}]}
    mapped = ADAPTER.handle(_post(many))
    assert mapped.records == []
    assert mapped.skipped[0].reason == "batch summary without recipients"


def test_a_retried_report_is_the_same_event() -> None:
    """The same report posted twice gives one event id; another status another id."""
    body = per_recipient("Delivered")
    first = ADAPTER.handle(_post(body)).records[0]
    again = ADAPTER.handle(dataclasses.replace(_post(body), received_ms=NOW_MS + 30_000)).records[0]
    other = ADAPTER.handle(_post({**body, "status": "Failed", "code": 11})).records[0]
    assert first.event_id == again.event_id != other.event_id


def test_batch_id_case_is_normalised() -> None:
    """A lower-case batch id (ULIDs are case-insensitive) is the same id."""
    body = per_recipient("Delivered")
    upper = body["batch_id"]
    record = ADAPTER.handle(_post({**body, "batch_id": upper.lower()})).records[0]
    assert record.provider.id == f"{upper}/+15550100001"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"type": "mo_text", "batch_id": "x"}, "type"),
        (
            {
                "type": "recipient_delivery_report_sms",
                "status": "Delivered",
                "recipient": "15550100001",
            },
            "batch_id",
        ),
        (
            {"type": "recipient_delivery_report_sms", "batch_id": "b", "status": "Delivered"},
            "recipient",
        ),
        (
            {"type": "recipient_delivery_report_sms", "batch_id": "b", "recipient": "15550100001"},
            "status",
        ),
        (
            {
                "type": "recipient_delivery_report_sms",
                "batch_id": "b",
                "status": "Delivered",
                "recipient": "x",
            },
            "recipient",
        ),
        ({"type": "delivery_report_sms", "batch_id": "b", "statuses": "all"}, "statuses"),
    ],
)
def test_malformed_reports_name_the_bad_field(body: dict[str, Any], field: str) -> None:
    """Unknown type, missing batch id, recipient or status, bad recipients: 400 naming it."""
    with pytest.raises(InvalidBody) as err:
        ADAPTER.handle(_post(body))
    assert [e.field for e in err.value.errors] == [field]


def test_wrong_credentials_are_refused() -> None:
    """Wrong Basic credentials: Unauthenticated (401)."""
    with pytest.raises(Unauthenticated):
        ADAPTER.handle(
            _post(
                per_recipient("Delivered"), headers={"Authorization": basic("sinch-user", "nope")}
            )
        )
