"""Infobip adapter: batched reports, v1/v2 and v3 field names, Basic credentials (no server)."""

from __future__ import annotations

import dataclasses
import time
import uuid
from typing import Any

import orjson
import pytest

from ingest.errors import InvalidBody, Unauthenticated
from ingest.providers.common import Callback
from ingest.providers.infobip import InfobipAdapter
from ingest.settings import IngestSettings
from schemas.status import Status
from tests.support.providers import basic, callback

ADAPTER = InfobipAdapter("infobip-user", "infobip-password-0001")
AUTH = {"Authorization": basic("infobip-user", "infobip-password-0001")}

STATUS_TABLE = [
    (26, "PENDING_ACCEPTED", 1, "PENDING", None),
    (7, "PENDING_ENROUTE", 1, "PENDING", Status.SENT),
    (3, "PENDING_WAITING_DELIVERY", 1, "PENDING", Status.SENT),
    (2, "DELIVERED_TO_OPERATOR", 3, "DELIVERED", Status.SENT),
    (5, "DELIVERED_TO_HANDSET", 3, "DELIVERED", Status.DELIVERED),
    (4, "UNDELIVERABLE_REJECTED_OPERATOR", 2, "UNDELIVERABLE", Status.UNDELIVERED),
    (9, "UNDELIVERABLE_NOT_DELIVERED", 2, "UNDELIVERABLE", Status.UNDELIVERED),
    (31, "UNDELIVERABLE_NOT_SENT", 2, "UNDELIVERABLE", Status.REJECTED),
    (15, "EXPIRED_EXPIRED", 4, "EXPIRED", Status.UNDELIVERED),
    (29, "EXPIRED_DLR_UNKNOWN", 4, "EXPIRED", Status.SENT),
    (6, "REJECTED_NETWORK", 5, "REJECTED", Status.REJECTED),
    (8, "REJECTED_PREFIX_MISSING", 5, "REJECTED", Status.REJECTED),
    (10, "REJECTED_DND", 5, "REJECTED", Status.REJECTED),
    (99, "SOMETHING_NEW", 3, "DELIVERED", Status.SENT),
    (98, "SOMETHING_PENDING", 1, "PENDING", Status.SENT),
]
"""(id, name, groupId, groupName, expected): names Infobip documents, and two unknown names
that fall back to their group (an unknown name in DELIVERED is only SENT)."""


def report(
    status_id: int, name: str, group_id: int, group: str, *, v3: bool = False, **extra: Any
) -> dict[str, Any]:
    """One synthetic report in the v1/v2 shape (``v3`` renames from/smsCount)."""
    item: dict[str, Any] = {
        "bulkId": "BULK-" + uuid.uuid4().hex[:8],
        "messageId": "MSG-" + uuid.uuid4().hex,
        "to": "15550100001",
        "sentAt": "2025-01-15T12:30:00.000+0000",
        "doneAt": "2025-01-15T12:30:07.000+0000",
        "mccMnc": "310260",
        "price": {"pricePerMessage": 0.01, "currency": "EUR"},
        "status": {
            "groupId": group_id,
            "groupName": group,
            "id": status_id,
            "name": name,
            "description": "d",
        },
        "error": {
            "groupId": 0,
            "groupName": "OK",
            "id": 0,
            "name": "NO_ERROR",
            "description": "No Error",
            "permanent": False,
        },
    }
    if v3:
        item |= {
            "sender": "AcmeShop",
            "messageCount": 1,
            "platform": {"entityId": "e", "applicationId": "a"},
        }
    else:
        item |= {"from": "AcmeShop", "smsCount": 1}
    item.update(extra)
    return item


def _post(results: list[Any], headers: dict[str, str] | None = None) -> Callback:
    return callback(
        orjson.dumps({"results": results}), headers=AUTH if headers is None else headers
    )


@pytest.mark.parametrize("row", STATUS_TABLE, ids=[r[1] for r in STATUS_TABLE])
@pytest.mark.parametrize("v3", [False, True])
def test_each_status_maps_per_the_table(
    row: tuple[int, str, int, str, Status | None], v3: bool
) -> None:
    """Every documented status (and unknown names by group) maps per the table, v1/v2 and v3."""
    status_id, name, group_id, group, expected = row
    item = report(status_id, name, group_id, group, v3=v3)
    mapped = ADAPTER.handle(_post([item]))
    if expected is None:
        assert mapped.records == []
        assert [s.provider_status for s in mapped.skipped] == [name]
        return
    [record] = mapped.records
    assert record.status is expected
    assert (record.provider.name, record.provider.id, record.provider.status) == (
        "infobip",
        item["messageId"],
        name,
    )
    assert record.provider.code == "0"
    assert record.provider.message is None
    assert record.occurred_ms == 1_736_944_207_000  # doneAt, +0000
    assert record.phone_number == "+15550100001"
    assert record.source == "infobip"


def test_error_id_and_description_are_code_and_message() -> None:
    """A report with an error carries error.id as code and its description as message."""
    err = {
        "groupId": 1,
        "groupName": "HANDSET_ERRORS",
        "id": 27,
        "name": "EC_ABSENT_SUBSCRIBER",
        "description": "Absent Subscriber",
        "permanent": False,
    }
    record = ADAPTER.handle(
        _post([report(9, "UNDELIVERABLE_NOT_DELIVERED", 2, "UNDELIVERABLE", error=err)])
    ).records[0]
    assert (record.provider.code, record.provider.message) == ("27", "Absent Subscriber")


def test_callback_data_uuid_names_our_message() -> None:
    """callbackData holding a UUID sets messageId; other data does not."""
    mid = str(uuid.uuid4())
    items = [
        report(5, "DELIVERED_TO_HANDSET", 3, "DELIVERED", callbackData=mid),
        report(5, "DELIVERED_TO_HANDSET", 3, "DELIVERED", callbackData="campaign=7"),
    ]
    records = ADAPTER.handle(_post(items)).records
    assert [r.message_id for r in records] == [mid, None]


def test_a_batch_is_one_event_per_report_and_retries_repeat_the_ids() -> None:
    """A batch of N reports gives N events; the same batch again gives the same N ids."""
    items = [report(5, "DELIVERED_TO_HANDSET", 3, "DELIVERED") for _ in range(50)]
    first = [r.event_id for r in ADAPTER.handle(_post(items)).records]
    retry = dataclasses.replace(_post(items), received_ms=1_736_944_999_000)
    again = [r.event_id for r in ADAPTER.handle(retry).records]
    assert len(set(first)) == 50
    assert first == again


def test_five_thousand_reports_map_quickly() -> None:
    """5,000 reports (about 3 MB) map in under half the default produce deadline of CPU time."""
    items = [report(5, "DELIVERED_TO_HANDSET", 3, "DELIVERED") for _ in range(5000)]
    body = orjson.dumps({"results": items})
    assert 2_000_000 < len(body) < 8 * 1024 * 1024
    # CPU time of this process, not wall time: other processes on a busy machine do not
    # count, while the mapping (which blocks the event loop) does.
    started = time.process_time()
    records = ADAPTER.handle(callback(body, headers=AUTH)).records
    elapsed = time.process_time() - started
    assert len(records) == 5000
    deadline = IngestSettings.model_fields["produce_timeout_s"].default
    assert elapsed < deadline / 2, f"mapping 5,000 reports took {elapsed:.2f} s of CPU"


def test_too_many_reports_are_refused() -> None:
    """More reports than max_batch_events: a 400 naming results."""
    small = InfobipAdapter(None, None, max_results=2)
    with pytest.raises(InvalidBody) as err:
        small.handle(_post([report(5, "DELIVERED_TO_HANDSET", 3, "DELIVERED")] * 3, headers={}))
    assert err.value.errors[0].field == "results"


def test_one_bad_report_is_skipped_by_index_and_the_rest_applies() -> None:
    """An unusable report is skipped naming its index and field; an unreadable time falls
    back to the receive time; every usable report is mapped (docs/providers.md, Batches)."""
    good = report(5, "DELIVERED_TO_HANDSET", 3, "DELIVERED")
    no_id = report(5, "DELIVERED_TO_HANDSET", 3, "DELIVERED")
    del no_id["messageId"]
    bad_time = report(5, "DELIVERED_TO_HANDSET", 3, "DELIVERED", doneAt="15/01/2025")
    too_old = report(
        5, "DELIVERED_TO_HANDSET", 3, "DELIVERED", doneAt="1960-01-15T12:30:07.000+0000"
    )
    cb = _post([good, no_id, bad_time, "x", too_old])
    mapped = ADAPTER.handle(cb)
    assert len(mapped.records) == 3
    assert [s.detail.split(":")[0] for s in mapped.skipped] == [
        "results[1].messageId",
        "results[3]",
    ]
    assert {s.reason for s in mapped.skipped} == {"invalid entry"}


@pytest.mark.parametrize("body", [b"{}", b'{"results": {}}', b"[]", b"nope"])
def test_body_without_a_results_array_is_malformed(body: bytes) -> None:
    """A body that is not {"results": [...]} is a 400."""
    with pytest.raises(InvalidBody):
        ADAPTER.handle(callback(body, headers=AUTH))


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": basic("infobip-user", "wrong")},
        {"Authorization": basic("someone", "infobip-password-0001")},
        {"Authorization": "Basic !!!"},
        {"Authorization": "Bearer infobip-password-0001"},
    ],
)
def test_missing_or_wrong_credentials_are_refused(headers: dict[str, str]) -> None:
    """No, malformed or wrong Basic credentials: Unauthenticated (401) before parsing."""
    with pytest.raises(Unauthenticated):
        ADAPTER.handle(callback(b"not even json", headers=headers))


def test_without_done_at_the_sent_at_time_is_used() -> None:
    """occurredAt falls back to sentAt when doneAt is absent."""
    item = report(7, "PENDING_ENROUTE", 1, "PENDING")
    del item["doneAt"]
    assert ADAPTER.handle(_post([item])).records[0].occurred_ms == 1_736_944_200_000
