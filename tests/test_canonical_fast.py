"""The canonical endpoint's fast path (ingest.canonical.parse_wire) against the pydantic path
(parse_body): the same records, byte for byte, or the same field errors, for any body."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from standardwebhooks.webhooks import Webhook

from ingest import canonical
from ingest.canonical import parse_body, parse_wire
from ingest.errors import InvalidBody, Unauthenticated
from ingest.publisher import WireRecord, wire
from ingest.signing import StandardWebhookVerifier

NOW_S = 1_770_188_100.0
MID = "011d9d6e-b5b9-4cb9-be13-2bc336a923ce"


def normalize(name: str, pid: str, _phone: str | None) -> str:
    """Like ProviderIds.normalize: one provider folds case, one refuses some ids."""
    if name == "twilio":
        return pid.lower()
    if name == "strict" and not pid.isdigit():
        raise ValueError("not a strict id")
    return pid


def acceptance() -> dict[str, Any]:
    return {
        "messageId": MID,
        "status": "PROVIDER_ACCEPTANCE",
        "occurredAt": "2026-02-04T06:54:35Z",
        "channel": "SMS",
        "phoneNumber": "+1234567890",
        "reference": {"service": "DIGITALSIGN", "action": "AUTH", "key": "EXT_KEY"},
        "sms": {"segments": 1},
        "provider": {"name": "PROVIDER1", "id": "p-1", "status": "accepted", "code": "0"},
    }


ODD_TEXT = st.sampled_from(["", "x", "a\nb", "a\tb", "ü", "x" * 255, "x" * 256, "\x7f", "0"])
ODD = st.one_of(
    st.none(),
    ODD_TEXT,
    st.integers(-2, 300),
    st.booleans(),
    st.just([]),
    st.just({}),
    st.sampled_from(
        [
            MID,
            MID.upper(),
            MID.replace("-", ""),
            "{" + MID + "}",
            "SMS",
            "RCS",
            "sms",
            "READ",
            "SENT",
            "DELIVERED",
            "PROVIDER_ACCEPTANCE",
            "2026-02-04T06:54:35.123+01:00",
            "2026-02-04 06:54:35",
            "2999-01-01T00:00:00Z",
            "1969-12-31T23:59:59Z",
            "+1 (234) 567-890",
            "001234567890",
            "+0123",
            "12345678901234567890",
            "TW-ABC",
            "abc",
            "123",
        ]
    ),
)
FIELDS = [*acceptance(), "eventId", "text", "webhook", "unknown"]
PARTS = ["service", "action", "key", "name", "id", "status", "code", "message", "segments", "x"]


@st.composite
def events(draw: st.DrawFn) -> object:
    """An acceptance or a receipt, with a few fields dropped, changed or added."""
    event: dict[str, Any] = acceptance()
    if draw(st.booleans()):
        event = {
            "messageId": MID,
            "status": draw(st.sampled_from(["DELIVERED", "READ", "SENT", "UNDELIVERED"])),
            "occurredAt": "2026-02-04T06:54:55.5Z",
            "provider": {"status": "delivered", "code": 0},
        }
    for _ in range(draw(st.integers(0, 2))):
        field = draw(st.sampled_from(FIELDS))
        action = draw(st.sampled_from(["drop", "set", "nested"]))
        if action == "drop":
            event.pop(field, None)
        elif action == "set":
            event[field] = draw(ODD)
        else:
            inner = event.get(field)
            inner = dict(inner) if isinstance(inner, dict) else {}
            part = draw(st.sampled_from(PARTS))
            if draw(st.booleans()):
                inner.pop(part, None)
            else:
                inner[part] = draw(ODD)
            event[field] = inner
    if draw(st.booleans()) and isinstance(event.get("provider"), dict):
        event["provider"] = {
            **event["provider"],
            "name": draw(st.sampled_from(["twilio", "strict", "PROVIDER1"])),
            "id": draw(st.sampled_from(["ABC", "123", "abc"])),
        }
    return draw(st.sampled_from([event, [event], [event, acceptance()], "text", 1, None]))


def outcome(parse: Any, body: bytes, monkeypatch: pytest.MonkeyPatch) -> object:
    monkeypatch.setattr("ingest.canonical.time.time", lambda: NOW_S)
    try:
        records = parse(body, 10, normalize, max_skew_s=300)
    except InvalidBody as exc:
        return exc.errors
    finally:
        monkeypatch.undo()
    return [r if isinstance(r, WireRecord) else wire(r) for r in records]


EDGES: list[tuple[str | None, str | None, object]] = [
    ("reference", "service", "a\nb"),
    ("reference", "key", ""),
    ("reference", "key", "k" * 256),
    ("reference", "action", "\x7f"),
    ("reference", "service", None),
    ("reference", "x", "y"),
    ("reference", None, {}),
    ("reference", None, {"service": None, "action": None, "key": None}),
    ("provider", "message", "line\nbreak\ttab"),
    ("provider", "message", "bell\x07"),
    ("provider", "message", "m" * 1001),
    ("provider", "code", 17),
    ("provider", "code", True),
    ("provider", "code", 1.5),
    ("provider", "status", ""),
    ("provider", "id", ""),
    ("provider", "name", "\x00"),
    ("sms", "segments", True),
    ("sms", "segments", 0),
    ("sms", "segments", 255),
    ("sms", "segments", 256),
    ("sms", "extra", 1),
    (None, "messageId", MID.upper()),
    (None, "messageId", MID.replace("-", "")),
    (None, "eventId", MID.upper()),
    (None, "eventId", None),
    (None, "phoneNumber", "+1 (234) 567-890"),
    (None, "phoneNumber", "0" * 33),
    (None, "channel", "RCS"),
    (None, "channel", None),
    (None, "occurredAt", "2026-02-04T06:54:35.999999+05:30"),
    (None, "occurredAt", "2026-02-04T06:59:35.001Z"),
    (None, "occurredAt", 1770188075000),
    (None, "occurredAt", "2026-02-04T06:54:60Z"),
    (None, "occurredAt", "2026-02-30T06:54:00Z"),
    (None, "occurredAt", "2026-02-04T24:00:00Z"),
    (None, "occurredAt", "2026-02-04T06:54:35.1Z"),
    (None, "occurredAt", "2026-02-04T06:54:35.12Z"),
    (None, "occurredAt", "2026-02-04T06:54:35z"),
    (None, "occurredAt", "2026-02-04T06:54:35.120+00:00"),
    (None, "occurredAt", "2026-02-04T06:54:35.120-00:00"),
    (None, "occurredAt", "2026-02-04T06:54:35.120"),
    (None, "occurredAt", "2026-02-04T06:54:35+00:00Z"),
    (None, "occurredAt", "2026-02-04T06:54:35+0000"),
    (None, "occurredAt", "2026-02-04T06:54Z"),
    (None, "occurredAt", "1969-12-31T23:59:59.999Z"),
    (None, "occurredAt", "1970-01-01T00:00:00.000Z"),
    (None, "occurredAt", "6429-10-17T02:45:55.327Z"),
    (None, "occurredAt", "6429-10-17T02:45:55.328Z"),
    (None, "occurredAt", "2026-02-04T06:54:35.123456789Z"),
    (None, "text", "hello"),
    (None, "sms", None),
]


@pytest.mark.parametrize(("outer", "inner", "value"), EDGES)
def test_fast_path_edges(outer: str | None, inner: str | None, value: object) -> None:
    """Hand-picked edges of every constraint the fast path checks by hand."""
    event = acceptance()
    if outer is None:
        assert inner is not None
        event[inner] = value
    elif inner is None:
        event[outer] = value
    else:
        event[outer] = {**event[outer], inner: value}
    body = orjson.dumps(event)
    with pytest.MonkeyPatch.context() as mp:
        fast = outcome(parse_wire, body, mp)
    with pytest.MonkeyPatch.context() as mp:
        slow = outcome(parse_body, body, mp)
    assert fast == slow


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(events())
def test_fast_path_gives_the_same_records_and_errors(data: object) -> None:
    """parse_wire == parse_body, records in wire form, for valid and invalid events."""
    body = orjson.dumps(data)
    with pytest.MonkeyPatch.context() as mp:
        fast = outcome(parse_wire, body, mp)
    with pytest.MonkeyPatch.context() as mp:
        slow = outcome(parse_body, body, mp)
    assert fast == slow


def test_common_events_take_the_fast_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """Acceptances and receipts of the usual shape never build a pydantic model."""

    def fail(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("pydantic path taken")

    monkeypatch.setattr(canonical, "_parse_item", fail)
    receipt = {"messageId": MID, "status": "DELIVERED", "occurredAt": "2026-02-04T06:54:55Z"}
    receipt["provider"] = {"status": "delivered", "code": "0"}  # type: ignore[assignment]
    by_provider = {
        **receipt,
        "provider": {"name": "twilio", "id": "SMab", "status": "x", "code": 1},
    }
    del by_provider["messageId"]
    body = orjson.dumps([acceptance(), receipt, by_provider])
    records = parse_wire(body, 10, normalize)
    assert [r.key for r in records] == [MID.encode(), MID.encode(), b"provider/twilio/smab"]


def _headers(secret: str, body: bytes, signature: str) -> dict[str, str]:
    """Signed headers; ``GOOD`` in ``signature`` stands for the valid ``v1,...`` entry."""
    now = datetime.now(tz=UTC).replace(microsecond=0)
    good = Webhook(secret).sign("msg_1", now, body.decode())
    return {
        "webhook-id": "msg_1",
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": signature.replace("GOOD", good),
    }


@pytest.mark.parametrize(
    "signature",
    [
        "GOOD",
        "v1,AAAA GOOD",
        "v2,xyz GOOD",
        "GOOD v1",
        "v1 GOOD",
        "GOOD  v1,AAAA",
        " GOOD",
        "v1,a,b GOOD",
        "v1,ü GOOD",
        "v1,AAA GOOD",
        "v1,AAAA",
        "v1,!!!!",
    ],
)
def test_signature_check_answers_like_the_package(signature: str) -> None:
    """The fast HMAC check accepts exactly what standardwebhooks accepts, and every rejection
    carries the package's reason."""
    secret = "whsec_" + base64.b64encode(b"k" * 24).decode()
    body = b'{"a":1}'
    headers = _headers(secret, body, signature)
    verifier = StandardWebhookVerifier(secret)
    try:
        Webhook(secret).verify(body, headers, json_parse=False)
        package: str | None = None
    except Exception as exc:  # any failure: compare with ours
        package = type(exc).__name__
    try:
        verifier.verify(body, headers)
        ours: str | None = None
    except Unauthenticated:
        ours = "rejected"
    assert (package is None) == (ours is None), (package, ours)
