"""Vonage SMS API adapter: DLR mapping, ``sig`` in every method, multipart parts (no server)."""

from __future__ import annotations

import dataclasses
import time
import uuid
from urllib.parse import urlencode

import orjson
import pytest
from vonage_http_client.auth import Auth

from ingest.errors import InvalidBody, Unauthenticated
from ingest.providers import vonage
from ingest.providers.common import Callback
from ingest.providers.vonage import VonageAdapter
from schemas.status import Status
from tests.support.providers import VONAGE_SECRET, callback, vonage_sig, vonage_signed

URL = "https://hooks.example.test/webhooks/vonage"
NOW_MS = int(time.time() * 1000)


def _dlr(status: str, **extra: str) -> dict[str, str]:
    dlr = {
        "msisdn": "15550100001",
        "to": "AcmeShop",
        "network-code": "310260",
        "messageId": "0A" + uuid.uuid4().hex[:14].upper(),
        "price": "0.00750000",
        "status": status,
        "scts": "2501151230",
        "err-code": "0",
        "api-key": "abcd1234",
        "message-timestamp": "2025-01-15 12:30:05",
    }
    dlr.update(extra)
    return dlr


def _get(params: dict[str, str]) -> Callback:
    return callback(
        method="GET", url=f"{URL}?{urlencode(params)}", content_type="", received_ms=NOW_MS
    )


def _post_json(params: dict[str, str]) -> Callback:
    return callback(orjson.dumps(params), url=URL, received_ms=NOW_MS)


SIGNED = VonageAdapter(VONAGE_SECRET, "md5hash")
UNSIGNED = VonageAdapter(None)


@pytest.mark.parametrize(
    ("word", "status", "code"),
    [
        ("delivered", Status.DELIVERED, "0"),
        ("accepted", Status.SENT, "0"),
        ("buffered", Status.SENT, "0"),
        ("unknown", Status.SENT, "1"),
        ("expired", Status.UNDELIVERED, "2"),
        ("failed", Status.UNDELIVERED, "12"),
        ("rejected", Status.REJECTED, "6"),
    ],
)
def test_each_dlr_status_maps_per_the_table(word: str, status: Status, code: str) -> None:
    """Every DLR status becomes its canonical status; err-code is the code, described."""
    dlr = _dlr(word, **{"err-code": code})
    record = UNSIGNED.handle(_get(dlr)).records[0]
    assert record.status is status
    assert (record.provider.name, record.provider.status, record.provider.code) == (
        "vonage",
        word,
        code,
    )
    assert record.provider.id == dlr["messageId"]
    assert record.provider.message == (vonage.ERRORS[code] if code != "0" else None)
    assert record.phone_number == "+15550100001"  # msisdn arrives without +
    assert record.occurred_ms == 1_736_944_200_000  # scts 2501151230, UTC
    assert record.source == "vonage"


def test_unknown_status_word_is_skipped() -> None:
    """A status word not in the table is acknowledged without an event."""
    assert UNSIGNED.handle(_get(_dlr("vanished"))).skipped[0].reason == "unknown"


def test_client_ref_uuid_names_our_message() -> None:
    """client-ref holding a UUID (any case) sets messageId; another value does not."""
    mid = str(uuid.uuid4())
    record = UNSIGNED.handle(_get(_dlr("delivered", **{"client-ref": mid.upper()}))).records[0]
    assert record.message_id == mid
    other = UNSIGNED.handle(_get(_dlr("delivered", **{"client-ref": "order-17"}))).records[0]
    assert other.message_id is None


def test_without_scts_the_message_timestamp_then_the_receive_time_is_used() -> None:
    """occurredAt falls back to message-timestamp, then to the receive time."""
    dlr = _dlr("delivered")
    del dlr["scts"]
    assert UNSIGNED.handle(_get(dlr)).records[0].occurred_ms == 1_736_944_205_000
    del dlr["message-timestamp"]
    assert UNSIGNED.handle(_get(dlr)).records[0].occurred_ms == NOW_MS


def test_parts_of_a_long_sms_are_distinct_events_of_one_message() -> None:
    """Two parts (own messageIds, same client-ref) are two events naming the same message."""
    mid = str(uuid.uuid4())
    part1 = UNSIGNED.handle(_get(_dlr("delivered", **{"client-ref": mid}))).records[0]
    part2 = UNSIGNED.handle(_get(_dlr("delivered", **{"client-ref": mid}))).records[0]
    assert part1.message_id == part2.message_id == mid
    assert part1.provider.id != part2.provider.id
    assert part1.event_id != part2.event_id


def test_a_retried_dlr_is_the_same_event_even_with_a_new_signature() -> None:
    """A retry (new timestamp, nonce and sig) gives the same event id."""
    dlr = _dlr("delivered")
    first = SIGNED.handle(_get(vonage_signed(dlr, now=NOW_MS // 1000 - 30))).records[0]
    retry = _get(vonage_signed(dlr, now=NOW_MS // 1000))
    again = SIGNED.handle(dataclasses.replace(retry, received_ms=NOW_MS + 30_000)).records[0]
    assert first.event_id == again.event_id


def test_signature_vector_from_the_vonage_sdk_tests() -> None:
    """The MD5-hash vector of Vonage's Python SDK tests: a=1, b=2, secret "secret"."""
    params = {"a": "1", "b": "2", "timestamp": "1461605396"}
    assert vonage.signature(params, "secret", "md5hash") == "6af838ef94998832dbfc29020b564830"


@pytest.mark.parametrize("method", ["md5", "sha1", "sha256", "sha512"])
def test_hmac_signatures_match_the_vonage_sdk(method: str) -> None:
    """HMAC signatures equal vonage-http-client's Auth.sign_params for each method."""
    params = {**_dlr("delivered"), "timestamp": "1736944205", "text": "a=b&c"}
    sdk = Auth(api_key="abcd1234", signature_secret=VONAGE_SECRET, signature_method=method)
    assert vonage.signature(params, VONAGE_SECRET, method) == sdk.sign_params(dict(params))  # type: ignore[arg-type]


@pytest.mark.parametrize("method", ["md5hash", "md5", "sha1", "sha256", "sha512"])
def test_signed_dlr_verifies_by_query_and_by_json(method: str) -> None:
    """A DLR signed per the guide verifies in the query string and in a JSON body."""
    adapter = VonageAdapter(VONAGE_SECRET, method)  # type: ignore[arg-type]
    signed = vonage_signed(_dlr("delivered"), method=method, now=NOW_MS // 1000)
    assert adapter.handle(_get(signed)).records
    assert adapter.handle(_post_json(signed)).records


def test_tampered_dlr_is_refused() -> None:
    """A status changed after signing fails the check."""
    signed = vonage_signed(_dlr("failed"), now=NOW_MS // 1000)
    signed["status"] = "delivered"
    with pytest.raises(Unauthenticated):
        SIGNED.handle(_get(signed))


def test_unsigned_or_stale_dlr_is_refused_when_a_secret_is_set() -> None:
    """Without sig, or with a timestamp older than the window, the DLR is refused."""
    with pytest.raises(Unauthenticated):
        SIGNED.handle(_get(_dlr("delivered")))
    stale = vonage_signed(_dlr("delivered"), now=NOW_MS // 1000 - 26 * 3600)
    with pytest.raises(Unauthenticated):
        SIGNED.handle(_get(stale))
    future = vonage_signed(_dlr("delivered"), now=NOW_MS // 1000 + 3600)
    with pytest.raises(Unauthenticated):
        SIGNED.handle(_get(future))


def test_another_method_or_secret_does_not_verify() -> None:
    """A sig made with SHA-256 does not pass an MD5-hash check, nor another secret's."""
    params = {**_dlr("delivered"), "timestamp": str(NOW_MS // 1000)}
    params["sig"] = vonage_sig(params, method="sha256")
    with pytest.raises(Unauthenticated):
        SIGNED.handle(_get(params))
    params["sig"] = vonage_sig(params, secret="another-secret")
    with pytest.raises(Unauthenticated):
        SIGNED.handle(_get(params))


def test_form_post_is_read_like_the_query_string() -> None:
    """A form-encoded POST DLR maps like the same DLR in a GET."""
    dlr = _dlr("delivered")
    cb = callback(
        urlencode(dlr).encode(), url=URL, content_type="application/x-www-form-urlencoded"
    )
    assert UNSIGNED.handle(cb).records[0].provider.id == dlr["messageId"]


@pytest.mark.parametrize(
    ("dlr", "field"),
    [
        ({"status": "delivered"}, "messageId"),
        ({"messageId": "0A00000000000001"}, "status"),
    ],
)
def test_malformed_dlrs_name_the_bad_field(dlr: dict[str, str], field: str) -> None:
    """A missing id or status: 400 naming the field (an impossible scts or an unreadable
    msisdn is not refused: tests/test_field_reports_providers.py)."""
    with pytest.raises(InvalidBody) as err:
        UNSIGNED.handle(_get(dlr))
    assert [e.field for e in err.value.errors] == [field]


def test_json_body_that_is_not_an_object_is_malformed() -> None:
    """A JSON array or broken JSON is a 400."""
    for body in (b"[1, 2]", b"{not json"):
        with pytest.raises(InvalidBody):
            UNSIGNED.handle(callback(body, url=URL))


def test_message_id_case_is_normalised() -> None:
    """A lower-case hex messageId is the same id as Vonage's upper-case one."""
    dlr = _dlr("delivered", messageId="0a00000000000abc")
    assert UNSIGNED.handle(_get(dlr)).records[0].provider.id == "0A00000000000ABC"


def test_an_unreadable_msisdn_is_left_out_and_the_receipt_kept() -> None:
    """An msisdn that is no number only loses the routing hint: the receipt maps, phone None."""
    dlr = {"messageId": "0A00000000000001", "status": "delivered", "msisdn": "abc"}
    (event,) = UNSIGNED.handle(_get(dlr)).records
    assert event.phone_number is None
