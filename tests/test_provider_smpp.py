"""SMPP adapter: receipt text variants, Jasmin and Kannel callbacks, ids, time zones (no server)."""

from __future__ import annotations

import dataclasses
import uuid
from urllib.parse import urlencode

import pytest

from ingest.errors import InvalidBody, Unauthenticated
from ingest.providers.common import Callback
from ingest.providers.ids import SmppIds
from ingest.providers.smpp import SmppAdapter, parse_receipt
from schemas.status import Status
from tests.support.providers import callback

TOKEN = "smpp-token-0123456789"
URL = "https://hooks.example.test/webhooks/smpp"
NOW_MS = 1_736_944_300_000
ADAPTER = SmppAdapter.create(TOKEN, SmppIds(), "UTC")


def receipt_text(
    stat: str, *, rid: str = "0000000001", err: str = "000", done: str = "2501151233"
) -> str:
    """An SMPP v3.4 Appendix B receipt text (invented id)."""
    return f"id:{rid} sub:001 dlvrd:000 submit date:2501151230 done date:{done} stat:{stat} err:{err} text:Your code is 1234"


def get(params: dict[str, str], token: str | None = TOKEN) -> Callback:
    """A GET callback (Kannel style) with the token in the query."""
    query = {**params, "token": token} if token is not None else params
    return callback(
        method="GET", url=f"{URL}?{urlencode(query)}", content_type="", received_ms=NOW_MS
    )


def post_form(params: dict[str, str]) -> Callback:
    """A form POST callback (Jasmin with dlr-method POST) with the token in the query."""
    return callback(
        urlencode(params).encode(),
        url=f"{URL}?token={TOKEN}",
        content_type="application/x-www-form-urlencoded",
        received_ms=NOW_MS,
    )


@pytest.mark.parametrize(
    ("stat", "status"),
    [
        ("ENROUTE", Status.SENT),
        ("ACCEPTD", Status.SENT),
        ("UNKNOWN", Status.SENT),
        ("DELIVRD", Status.DELIVERED),
        ("UNDELIV", Status.UNDELIVERED),
        ("EXPIRED", Status.UNDELIVERED),
        ("DELETED", Status.UNDELIVERED),
        ("REJECTD", Status.REJECTED),
        ("SKIPPED", Status.REJECTED),
        ("DELIVERED", Status.DELIVERED),
        ("UNDELIVERABLE", Status.UNDELIVERED),
    ],
)
def test_each_receipt_state_maps_per_the_table(stat: str, status: Status) -> None:
    """Every receipt stat (and the long spellings) maps per the table."""
    record = ADAPTER.handle(get({"receipt": receipt_text(stat, err="012")})).records[0]
    assert record.status is status
    assert (record.provider.name, record.provider.id, record.provider.status) == (
        "smpp",
        "0000000001",
        stat,
    )
    assert record.provider.code == "12"
    assert record.occurred_ms == 1_736_944_380_000  # done date 2501151233 in UTC
    assert record.source == "smpp"


def test_scheduled_and_unknown_states_give_no_event() -> None:
    """SCHEDLD is acknowledged without an event; an unknown state is skipped as unknown."""
    assert ADAPTER.handle(get({"receipt": receipt_text("SCHEDLD")})).records == []
    assert ADAPTER.handle(get({"receipt": receipt_text("WHATEVER")})).skipped[0].reason == "unknown"


@pytest.mark.parametrize(
    "text",
    [
        "id:0000000001 sub:001 dlvrd:001 submit date:250115123000 done date:250115123300 stat:DELIVRD err:000 text:hi",
        "id:0000000001 sub:001 dlvrd:001 submit date:2501151230 done date:2501151233 stat:DELIVRD err:000 Text:hi",
        "id:0000000001 sub:001 dlvrd:001 submit_date:2501151230 done_date:2501151233 stat:DELIVRD err:000",
        "ID:0000000001 SUB:001 DLVRD:001 SUBMIT DATE:2501151230 DONE DATE:2501151233 STAT:delivrd ERR:000",
    ],
)
def test_seen_receipt_variants_parse_alike(text: str) -> None:
    """Seconds in dates, capital Text:, underscores, upper-case keys: one reading."""
    record = ADAPTER.handle(get({"receipt": text})).records[0]
    assert (record.provider.id, record.status, record.occurred_ms) == (
        "0000000001",
        Status.DELIVERED,
        1_736_944_380_000,
    )


def test_text_after_text_colon_is_never_read() -> None:
    """An ``id:`` or ``stat:`` inside the message text does not change the reading."""
    fields = parse_receipt("id:42 stat:UNDELIV err:001 text:id:99 stat:DELIVRD")
    assert (fields["id"], fields["stat"]) == ("42", "UNDELIV")
    assert parse_receipt("id:42 sub:001 Text:stat:DELIVRD done date:2501151233") == {
        "id": "42",
        "sub": "001",
    }


def test_plain_text_body_is_a_receipt() -> None:
    """A text/plain POST body is read as the receipt text."""
    cb = callback(
        receipt_text("DELIVRD").encode(),
        url=f"{URL}?token={TOKEN}",
        content_type="text/plain",
        received_ms=NOW_MS,
    )
    assert ADAPTER.handle(cb).records[0].status is Status.DELIVERED


def test_done_date_is_read_in_the_configured_time_zone() -> None:
    """With SMPP_TIMEZONE=Europe/Berlin, 2501151233 (winter, UTC+1) is 11:33Z."""
    berlin = SmppAdapter.create(TOKEN, SmppIds(), "Europe/Berlin")
    record = berlin.handle(get({"receipt": receipt_text("DELIVRD")})).records[0]
    assert record.occurred_ms == 1_736_944_380_000 - 3_600_000


@pytest.mark.parametrize(
    ("receipt_base", "submit_base", "receipt_id", "expected"),
    [
        ("text", "text", "0000000001", "0000000001"),
        ("dec", "dec", "0000043794", "43794"),
        ("hex", "hex", "0000ab12", "AB12"),
        ("dec", "hex", "0000043794", "AB12"),
        ("hex", "dec", "00AB12", "43794"),
    ],
)
def test_receipt_ids_are_normalised_per_configuration(
    receipt_base: str, submit_base: str, receipt_id: str, expected: str
) -> None:
    """Leading zeros, hex case and decimal-vs-hex follow the configured bases."""
    adapter = SmppAdapter.create(TOKEN, SmppIds(receipt_base, submit_base), "UTC")  # type: ignore[arg-type]
    record = adapter.handle(get({"receipt": receipt_text("DELIVRD", rid=receipt_id)})).records[0]
    assert record.provider.id == expected
    padded = expected if submit_base == "text" else "00" + expected.lower()
    assert adapter.smpp_ids.submit(padded) == expected  # the acceptance's id agrees


def test_different_numeric_ids_stay_different() -> None:
    """Normalisation never makes two different ids equal (1 and 10, 0x1 and 0x10)."""
    dec = SmppIds("dec", "dec")
    assert dec.receipt("1") != dec.receipt("10")
    hexa = SmppIds("hex", "hex")
    assert hexa.receipt("01") != hexa.receipt("10")


def test_an_id_not_in_the_configured_base_is_malformed() -> None:
    """With decimal receipt ids configured, a hex id is a 400 naming ``id``."""
    adapter = SmppAdapter.create(TOKEN, SmppIds("dec", "dec"), "UTC")
    with pytest.raises(InvalidBody) as err:
        adapter.handle(get({"receipt": receipt_text("DELIVRD", rid="ABCDEF")}))
    assert err.value.errors[0].field == "id"


def test_jasmin_level_2_dlr_uses_jasmins_id_and_fields() -> None:
    """A Jasmin DLR maps by its UUID id (lower case), message_status, donedate and err."""
    jid = str(uuid.uuid4())
    params = {
        "id": jid.upper(),
        "id_smsc": "2567",
        "message_status": "UNDELIV",
        "level": "2",
        "subdate": "2501151230",
        "donedate": "2501151233",
        "sub": "1",
        "dlvrd": "0",
        "err": "012",
        "text": "Your code is 1234",
    }
    record = ADAPTER.handle(post_form(params)).records[0]
    assert (record.provider.id, record.status, record.provider.code) == (
        jid,
        Status.UNDELIVERED,
        "12",
    )
    assert record.occurred_ms == 1_736_944_380_000


@pytest.mark.parametrize(
    ("message_status", "status", "code"),
    [("ESME_ROK", Status.SENT, "0"), ("ESME_RINVNUMDESTS", Status.REJECTED, "ESME_RINVNUMDESTS")],
)
def test_jasmin_level_1_dlr_is_the_smscs_answer(
    message_status: str, status: Status, code: str
) -> None:
    """Level 1: ESME_ROK is SENT (accepted by the SMSC), another ESME status is REJECTED."""
    params = {"id": str(uuid.uuid4()), "message_status": message_status, "level": "1"}
    record = ADAPTER.handle(post_form(params)).records[0]
    assert (record.status, record.provider.code) == (status, code)
    assert record.occurred_ms == NOW_MS  # no done date at level 1


@pytest.mark.parametrize(
    ("kind", "status"),
    [
        ("1", Status.DELIVERED),
        ("2", Status.UNDELIVERED),
        ("8", Status.SENT),
        ("16", Status.REJECTED),
    ],
)
def test_kannel_type_alone_maps_with_our_message_id(kind: str, status: Status) -> None:
    """A Kannel DLR without receipt state maps by its type; messageId names our message."""
    mid = str(uuid.uuid4())
    record = ADAPTER.handle(get({"type": kind, "messageId": mid, "to": "+15550100001"})).records[0]
    assert (record.status, record.message_id, record.provider.id) == (status, mid, None)
    assert record.phone_number == "+15550100001"


def test_kannel_queued_type_gives_no_event() -> None:
    """Kannel type 4 (queued on the SMSC) is acknowledged without an event."""
    assert ADAPTER.handle(get({"type": "4", "messageId": str(uuid.uuid4())})).records == []


def test_a_retried_receipt_is_the_same_event() -> None:
    """The same receipt twice (a Jasmin retry) gives the same event id; another state not."""
    first = ADAPTER.handle(get({"receipt": receipt_text("DELIVRD")})).records[0]
    retry = get({"receipt": receipt_text("DELIVRD")})
    again = ADAPTER.handle(dataclasses.replace(retry, received_ms=NOW_MS + 30_000)).records[0]
    other = ADAPTER.handle(get({"receipt": receipt_text("UNDELIV")})).records[0]
    assert first.event_id == again.event_id != other.event_id


@pytest.mark.parametrize("token", [None, "", "wrong-token"])
def test_missing_or_wrong_token_is_refused(token: str | None) -> None:
    """No token, an empty one or a wrong one: Unauthenticated (401)."""
    with pytest.raises(Unauthenticated):
        ADAPTER.handle(get({"receipt": receipt_text("DELIVRD")}, token=token))


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"receipt": "stat:DELIVRD err:000"}, "id"),
    ],
)
def test_malformed_dlrs_name_the_bad_field(params: dict[str, str], field: str) -> None:
    """No id: 400 naming it (nothing to read, an unknown type, an impossible date or an
    unreadable recipient are not refused: tests/test_field_reports_providers.py)."""
    with pytest.raises(InvalidBody) as err:
        ADAPTER.handle(get(params))
    assert [e.field for e in err.value.errors] == [field]


def test_an_unreadable_recipient_is_left_out_and_the_receipt_kept() -> None:
    """A ``to`` that is no number only loses the routing hint: the receipt maps, phone None."""
    (event,) = ADAPTER.handle(get({"receipt": receipt_text("DELIVRD"), "to": "nobody"})).records
    assert event.phone_number is None
