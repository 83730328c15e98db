"""Small pure rules: segments, timestamps, E.164, key escaping, read-API parameters."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ingest.canonical import parse_body
from ingest.errors import InvalidBody
from ingest.segments import segment_count
from query_api import params
from schemas import keys
from schemas.phone import PhoneNumberError, mask_phone, normalize_e164
from schemas.timefmt import TimestampError, format_seconds, parse_iso_ms


@pytest.mark.parametrize(
    ("text", "segments"),
    [
        ("", 1),
        ("a" * 160, 1),
        ("a" * 161, 2),
        ("a" * 306, 2),
        ("a" * 307, 3),
        ("€" * 80, 1),  # extension characters cost two septets: 160 septets
        ("€" * 81, 2),
        ("a" * 152 + "€" + "a" * 152, 3),  # 306 septets, but the escape pair is not split
        ("é" * 160, 1),  # é is in the GSM-7 basic table
        ("ł" * 70, 1),  # ł is not: UCS-2
        ("ł" * 71, 2),
        ("ł" * 134, 2),
        ("ł" * 135, 3),
        ("😀" * 35, 1),  # outside the BMP: two UTF-16 units each
        ("😀" * 36, 2),
        ("a" * 66 + "😀" + "a" * 66, 3),  # 134 units, but the surrogate pair is not split
    ],
)
def test_segment_count_follows_gsm_and_ucs2_rules(text: str, segments: int) -> None:
    """Segments: GSM-7 160/153, UCS-2 70/67, extension and non-BMP characters count two."""
    assert segment_count(text) == segments


@pytest.mark.parametrize(
    ("text", "ms"),
    [
        ("2026-02-04T06:54:35Z", 1770188075000),
        ("2026-02-04T06:54:35", 1770188075000),  # no offset means UTC
        ("2026-02-04T07:54:35+01:00", 1770188075000),
        ("2026-02-04T07:54:35+0100", 1770188075000),
        ("2026-02-04T06:54:35.123456Z", 1770188075123),
        ("2026-02-04T06:54:35,5Z", 1770188075500),
    ],
)
def test_iso_timestamps_parse_to_utc_milliseconds(text: str, ms: int) -> None:
    """ISO 8601 with Z, offsets or none (UTC), and fractions, all to epoch ms."""
    assert parse_iso_ms(text) == ms


@pytest.mark.parametrize(
    "text", ["", "yesterday", "2026-02-04", "2026-02-04T07:54:35 01:00", "2026-13-01T00:00:00Z"]
)
def test_unparseable_timestamps_are_refused(text: str) -> None:
    """A '+' offset that arrived as a space is an error, never silently another time."""
    with pytest.raises(TimestampError):
        parse_iso_ms(text)


def test_documents_write_whole_seconds_in_utc() -> None:
    """Timestamps are written YYYY-MM-DDTHH:MM:SSZ."""
    assert format_seconds(1770188075999) == "2026-02-04T06:54:35Z"


@pytest.mark.parametrize(
    ("raw", "e164"),
    [
        ("+15550100001", "+15550100001"),
        ("0015550100001", "+15550100001"),
        ("15550100001", "+15550100001"),
        ("+1 (555) 010-0001", "+15550100001"),
    ],
)
def test_phone_numbers_normalise_to_e164(raw: str, e164: str) -> None:
    """A leading 00 or a missing + never splits one number over several index keys."""
    assert normalize_e164(raw) == e164


@pytest.mark.parametrize("raw", ["+0123", "abc", "+1234567890123456", ""])
def test_non_e164_numbers_are_refused(raw: str) -> None:
    """Numbers that cannot be E.164 are refused."""
    with pytest.raises(PhoneNumberError):
        normalize_e164(raw)


def test_masked_numbers_keep_only_a_few_digits() -> None:
    """Logs never hold a full phone number."""
    assert mask_phone("+1234567890") == "+12******90"


@given(st.text(min_size=1), st.text(min_size=1))
def test_key_escaping_never_lets_two_inputs_share_a_key(a: str, b: str) -> None:
    """Caller input with ':', '{', '}', '*' can never address another entity's key."""
    assert (keys.reference_index_key("0", a) == keys.reference_index_key("0", b)) == (a == b)
    key = keys.reference_index_key("0", a)
    assert key.count("{") == 1
    assert key.count("}") == 1


@pytest.mark.parametrize(
    ("raw", "value"), [(None, 50), ("1", 1), ("100", 100), ("101", 100), ("99999999999", 100)]
)
def test_count_defaults_and_caps(raw: str | None, value: int) -> None:
    """count: default 50, above 100 silently 100."""
    assert params.count(raw) == value


@pytest.mark.parametrize("raw", ["0", "-1", "1.5", "ten", "", " 5", "٣"])
def test_count_below_one_or_not_an_integer_is_refused(raw: str) -> None:
    """count below 1 or not an integer: 400."""
    with pytest.raises(params.BadParameter):
        params.count(raw)


def test_canonical_body_errors_name_each_bad_field() -> None:
    """A bad batch gets every bad field named, with its index in the array."""
    body = b'[{"status": "SENT", "occurredAt": "2026-01-01T00:00:00Z", "provider": {"status": "s", "code": "0"}}, {"status": "NOPE"}]'
    with pytest.raises(InvalidBody) as info:
        parse_body(body, 100)
    fields = {e.field for e in info.value.errors}
    assert "[0].messageId" in fields
    assert "[1].status" in fields
    assert "[1].occurredAt" in fields


def test_same_callback_gets_the_same_event_id_and_different_ones_differ() -> None:
    """Derived event ids: a retried webhook is the same event; another callback is not."""
    one = b'{"messageId": "011d9d6e-b5b9-4cb9-be13-2bc336a923ce", "status": "SENT", "occurredAt": "2026-01-01T00:00:00Z", "provider": {"status": "sent", "code": "0"}}'
    first, again = parse_body(one, 1)[0], parse_body(one, 1)[0]
    other = parse_body(one.replace(b"00:00:00Z", b"00:00:01Z"), 1)[0]
    assert first.event_id == again.event_id
    assert first.event_id != other.event_id


def test_text_gives_segments_and_is_never_kept() -> None:
    """An acceptance with text gets its segments computed; the text is not in the record."""
    body = (
        b'{"messageId": "011d9d6e-b5b9-4cb9-be13-2bc336a923ce", "status": "PROVIDER_ACCEPTANCE",'
        b' "occurredAt": "2026-01-01T00:00:00Z", "channel": "SMS", "phoneNumber": "0049301234567",'
        b' "text": "'
        + b"x" * 200
        + b'", "provider": {"name": "P", "id": "1", "status": "ok", "code": "0"}}'
    )
    rec = parse_body(body, 1)[0]
    assert rec.sms is not None
    assert rec.sms.segments == 2
    assert rec.phone_number == "+49301234567"
    assert b"xxxx" not in rec.to_json()


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("occurredAt", "1969-12-31T23:59:59Z"),
        ("occurredAt", "9999-12-31T23:59:59-14:00"),
        ("occurredAt", "0001-01-01T00:00:00+14:00"),
        ("sms", {"segments": True}),
        ("sms", {"segments": "1"}),
        ("provider", {"name": "P", "id": "a\u0000b", "status": "ok", "code": "0"}),
        ("reference", {"key": "k\ney"}),
    ],
)
def test_out_of_range_times_loose_types_and_control_characters_are_400(
    field: str, value: object
) -> None:
    """Values the log cannot hold are named in a 400, never a 500 (or stored as something else)."""
    event = {
        "messageId": "011d9d6e-b5b9-4cb9-be13-2bc336a923ce",
        "status": "PROVIDER_ACCEPTANCE",
        "occurredAt": "2026-01-01T00:00:00Z",
        "channel": "SMS",
        "phoneNumber": "+15550100001",
        "sms": {"segments": 1},
        "provider": {"name": "P", "id": "1", "status": "ok", "code": "0"},
        field: value,
    }
    with pytest.raises(InvalidBody) as info:
        parse_body(orjson.dumps(event), 1)
    assert any(e.field.startswith(field) for e in info.value.errors), info.value.errors


def test_access_log_masks_phone_numbers_but_not_message_ids() -> None:
    """Logged paths never hold a full phone number; other segments stay readable."""
    from runtime.logs import mask_digits  # noqa: PLC0415

    assert mask_digits("/api/messagestatus/phonenumber/%2B1234567890?count=1") == (
        "/api/messagestatus/phonenumber/%2B123***90?count=1"
    )
    uuid_path = "/api/messagestatus/011d9d6e-b5b9-4cb9-be13-2bc336a923ce"
    assert mask_digits(uuid_path) == uuid_path


def test_a_malformed_http_request_is_logged_as_one_line_without_its_content() -> None:
    """aiohttp's traceback with the raw request line becomes a masked WARNING line."""
    import logging  # noqa: PLC0415

    from aiohttp.http_exceptions import BadStatusLine  # noqa: PLC0415

    from runtime.logs import _MalformedRequestFilter  # noqa: PLC0415

    try:
        raise BadStatusLine("GET /api/messagestatus/phonenumber/+1234567890\x01 HTTP/1.1")
    except BadStatusLine:
        import sys  # noqa: PLC0415

        record = logging.LogRecord(
            "aiohttp.server", logging.ERROR, "", 0, "Error handling request", (), sys.exc_info()
        )
    assert _MalformedRequestFilter().filter(record)
    assert record.levelno == logging.WARNING
    assert "1234567890" not in record.getMessage()
    assert record.exc_info is None
