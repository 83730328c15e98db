"""Twilio adapter: status mapping, X-Twilio-Signature (form and bodySHA256), ids (no server)."""

from __future__ import annotations

import hashlib

import orjson
import pytest
from twilio.request_validator import RequestValidator

from ingest.errors import InvalidBody, Unauthenticated
from ingest.providers import twilio
from ingest.providers.common import Callback
from ingest.providers.twilio import TwilioAdapter
from schemas.status import Status
from tests.support.providers import (
    TWILIO_TOKEN,
    callback,
    new_sid,
    twilio_form,
    twilio_signature,
    twilio_signature_by_hand,
)

URL = "https://hooks.example.test/msgstatus/webhooks/twilio"
ADAPTER = TwilioAdapter(TWILIO_TOKEN)


def _params(sid: str, status: str, **extra: str) -> list[tuple[str, str]]:
    pairs = [
        ("AccountSid", "AC00000000000000000000000000000001"),
        ("From", "+15550100002"),
        ("To", "+15550100001"),
        ("MessageSid", sid),
        ("SmsSid", sid),
        ("MessageStatus", status),
        ("SmsStatus", status),
        ("ApiVersion", "2010-04-01"),
        ("ErrorCode", ""),
    ]
    return [(k, v) for k, v in pairs if k not in extra] + list(extra.items())


def _signed(pairs: list[tuple[str, str]], url: str = URL, sign_url: str | None = None) -> Callback:
    signature = twilio_signature(sign_url or url, pairs)
    return callback(
        twilio_form(pairs),
        url=url,
        content_type="application/x-www-form-urlencoded",
        headers={"X-Twilio-Signature": signature},
    )


@pytest.mark.parametrize(
    ("word", "status"),
    [
        ("sent", Status.SENT),
        ("delivered", Status.DELIVERED),
        ("undelivered", Status.UNDELIVERED),
        ("failed", Status.REJECTED),
        ("canceled", Status.REJECTED),
        ("read", Status.READ),
    ],
)
def test_each_status_with_an_event_maps_per_the_table(word: str, status: Status) -> None:
    """Every Twilio status of the table becomes its canonical status with the provider's words."""
    sid = new_sid()
    code = "30003" if word in ("undelivered", "failed") else ""
    mapped = ADAPTER.handle(_signed(_params(sid, word, ErrorCode=code)))
    [record] = mapped.records
    assert record.status is status
    assert (record.provider.name, record.provider.id, record.provider.status) == (
        "twilio",
        sid,
        word,
    )
    assert record.provider.code == (code or "0")
    assert record.source == "twilio"
    assert record.phone_number == "+15550100001"
    assert record.occurred_ms == 1_736_944_300_000  # no event time from Twilio: receive time
    assert record.message_id is None


@pytest.mark.parametrize(
    "word",
    ["queued", "accepted", "scheduled", "sending", "receiving", "received", "partially_delivered"],
)
def test_states_before_hand_off_and_inbound_states_give_no_event(word: str) -> None:
    """States without a canonical event are acknowledged (skipped), never published."""
    mapped = ADAPTER.handle(_signed(_params(new_sid(), word)))
    assert mapped.records == []
    assert [s.provider_status for s in mapped.skipped] == [word]


def test_unknown_status_is_skipped_as_unknown() -> None:
    """A status word Twilio adds later is acknowledged and reported as unknown."""
    mapped = ADAPTER.handle(_signed(_params(new_sid(), "teleported")))
    assert mapped.records == []
    assert mapped.skipped[0].reason == "unknown"


def test_event_type_read_is_a_read_receipt() -> None:
    """An RCS/WhatsApp callback with EventType=READ is READ whatever MessageStatus says."""
    mapped = ADAPTER.handle(_signed(_params(new_sid(), "delivered", EventType="READ")))
    assert mapped.records[0].status is Status.READ


def test_error_message_becomes_provider_message() -> None:
    """ErrorCode and ErrorMessage are the event's provider code and message."""
    pairs = _params(new_sid(), "undelivered", ErrorCode="30007", ErrorMessage="Carrier violation")
    record = ADAPTER.handle(_signed(pairs)).records[0]
    assert (record.provider.code, record.provider.message) == ("30007", "Carrier violation")


def test_signature_matches_the_sdk_with_blank_and_repeated_parameters() -> None:
    """Our signature equals twilio-python's for blank values and repeated names."""
    pairs = [*_params(new_sid(), "sent"), ("MediaUrl", "b"), ("MediaUrl", "a"), ("Empty", "")]
    assert twilio.signature(TWILIO_TOKEN, URL, pairs) == twilio_signature(URL, pairs)


def test_signature_matches_the_documented_algorithm_by_hand() -> None:
    """Our signature equals the "Webhooks security" steps computed by hand."""
    params = dict(_params(new_sid(), "delivered"))
    assert twilio.signature(TWILIO_TOKEN, URL, list(params.items())) == twilio_signature_by_hand(
        URL, params, TWILIO_TOKEN
    )


def test_sdk_validator_accepts_what_we_sign_and_we_accept_what_it_signs() -> None:
    """A signature our code makes passes twilio-python's RequestValidator.validate, and a
    callback the SDK signed passes our check: each side is checked by the other."""
    pairs = _params(new_sid(), "sent")
    ours = twilio.signature(TWILIO_TOKEN, URL, pairs)
    assert RequestValidator(TWILIO_TOKEN).validate(URL, dict(pairs), ours)
    assert len(ADAPTER.handle(_signed(pairs)).records) == 1


def test_blank_parameters_count_in_the_signature() -> None:
    """Dropping an empty parameter (ErrorCode=) after signing breaks the signature."""
    pairs = _params(new_sid(), "sent")
    signature = twilio_signature(URL, pairs)
    trimmed = [(k, v) for k, v in pairs if v != ""]
    cb = callback(
        twilio_form(trimmed),
        url=URL,
        content_type="application/x-www-form-urlencoded",
        headers={"X-Twilio-Signature": signature},
    )
    with pytest.raises(Unauthenticated):
        ADAPTER.handle(cb)


def test_tampered_status_is_refused() -> None:
    """A body changed after signing (undelivered -> delivered) fails the check."""
    sid = new_sid()
    signature = twilio_signature(URL, _params(sid, "undelivered"))
    cb = callback(
        twilio_form(_params(sid, "delivered")),
        url=URL,
        content_type="application/x-www-form-urlencoded",
        headers={"X-Twilio-Signature": signature},
    )
    with pytest.raises(Unauthenticated):
        ADAPTER.handle(cb)


def test_missing_signature_and_wrong_token_are_refused() -> None:
    """No header, or a signature made with another token, fails the check."""
    pairs = _params(new_sid(), "sent")
    bare = callback(twilio_form(pairs), url=URL, content_type="application/x-www-form-urlencoded")
    with pytest.raises(Unauthenticated):
        ADAPTER.handle(bare)
    other = twilio_signature(URL, pairs, token="another-token")
    forged = callback(
        twilio_form(pairs),
        url=URL,
        content_type="application/x-www-form-urlencoded",
        headers={"X-Twilio-Signature": other},
    )
    with pytest.raises(Unauthenticated):
        ADAPTER.handle(forged)


@pytest.mark.parametrize(
    ("url", "signed"),
    [
        (URL, URL.replace("example.test/", "example.test:443/")),
        (URL.replace("example.test/", "example.test:443/"), URL),
        (
            "https://hooks.example.test:8443/webhooks/twilio",
            "https://hooks.example.test/webhooks/twilio",
        ),
    ],
)
def test_port_variants_are_accepted(url: str, signed: str) -> None:
    """Twilio signing with or without the port (":443" added or removed) still verifies."""
    assert ADAPTER.handle(_signed(_params(new_sid(), "sent"), url=url, sign_url=signed)).records


def test_another_host_or_path_is_refused() -> None:
    """A signature made for another URL (what a proxy rewrite would break) fails."""
    pairs = _params(new_sid(), "sent")
    with pytest.raises(Unauthenticated):
        ADAPTER.handle(
            _signed(pairs, sign_url="https://other.example.test/msgstatus/webhooks/twilio")
        )


def _json_callback(body: bytes, url: str, signed_url: str | None = None) -> Callback:
    signature = RequestValidator(TWILIO_TOKEN).compute_signature(signed_url or url, {})
    return callback(body, url=url, headers={"X-Twilio-Signature": signature})


def test_json_body_with_body_sha256_is_checked() -> None:
    """A JSON callback verifies by bodySHA256 in the URL, and the SDK agrees; tampering fails."""
    sid = new_sid()
    body = orjson.dumps({"MessageSid": sid, "MessageStatus": "delivered", "To": "+15550100001"})
    url = f"{URL}?bodySHA256={hashlib.sha256(body).hexdigest()}"
    cb = _json_callback(body, url)
    assert ADAPTER.handle(cb).records[0].status is Status.DELIVERED
    assert RequestValidator(TWILIO_TOKEN).validate(
        url, body.decode(), cb.headers["x-twilio-signature"]
    )
    tampered = body.replace(b"delivered", b"undelivered")
    with pytest.raises(Unauthenticated):
        ADAPTER.handle(_json_callback(tampered, url))


def test_json_body_without_body_sha256_is_refused() -> None:
    """A JSON callback whose URL carries no bodySHA256 cannot be verified: refused."""
    body = orjson.dumps({"MessageSid": new_sid(), "MessageStatus": "delivered"})
    with pytest.raises(Unauthenticated):
        ADAPTER.handle(_json_callback(body, URL))


def test_a_retry_is_the_same_event_and_another_status_is_not() -> None:
    """Same callback received twice: one event id; a different status: a different id."""
    sid = new_sid()
    first = ADAPTER.handle(_signed(_params(sid, "sent"))).records[0]
    again = (
        TwilioAdapter(None)
        .handle(
            callback(
                twilio_form(_params(sid, "sent")),
                content_type="application/x-www-form-urlencoded",
                received_ms=1_736_944_999_000,
            )
        )
        .records[0]
    )
    other = ADAPTER.handle(_signed(_params(sid, "delivered"))).records[0]
    assert first.event_id == again.event_id
    assert first.event_id != other.event_id


def test_sid_case_is_normalised() -> None:
    """A SID written with an upper-case hex part is the same SID in Twilio's own case."""
    sid = new_sid()
    pairs = _params(sid[:2].lower() + sid[2:].upper(), "sent")
    assert ADAPTER.handle(_signed(pairs)).records[0].provider.id == sid


@pytest.mark.parametrize(
    ("pairs", "field"),
    [
        ([("MessageStatus", "sent")], "MessageSid"),
        ([("MessageSid", "SM" + "0" * 32)], "MessageStatus"),
        ([("MessageSid", "SM\x00bad"), ("MessageStatus", "sent")], "MessageSid"),
    ],
)
def test_malformed_callbacks_name_the_bad_field(pairs: list[tuple[str, str]], field: str) -> None:
    """Missing id or status, a control character in the id: 400 naming it."""
    cb = callback(twilio_form(pairs), content_type="application/x-www-form-urlencoded")
    with pytest.raises(InvalidBody) as err:
        TwilioAdapter(None).handle(cb)
    assert [e.field for e in err.value.errors] == [field]


def test_an_unreadable_recipient_is_left_out_and_the_receipt_kept() -> None:
    """A ``To`` that is no number only loses the routing hint: the receipt maps, phone None."""
    pairs = [("MessageSid", "SM" + "1" * 32), ("MessageStatus", "sent"), ("To", "not-a-number")]
    cb = callback(twilio_form(pairs), content_type="application/x-www-form-urlencoded")
    (event,) = TwilioAdapter(None).handle(cb).records
    assert (event.status, event.phone_number) == (Status.SENT, None)


def test_body_that_is_not_utf8_is_malformed() -> None:
    """A form body that is not UTF-8 is a 400, not a crash."""
    with pytest.raises(InvalidBody):
        TwilioAdapter(None).handle(
            callback(b"MessageSid=\xff\xfe", content_type="application/x-www-form-urlencoded")
        )
