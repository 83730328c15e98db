"""Shared adapter rules: provider id normal forms (also on the canonical endpoint), settings,
credential checks and provider time formats (no server)."""

from __future__ import annotations

import base64
import uuid
from typing import Any

import orjson
import pytest
from pydantic import ValidationError

from ingest.canonical import parse_body
from ingest.errors import InvalidBody, Unauthenticated
from ingest.providers import ids
from ingest.providers.auth import check_basic, check_token
from ingest.providers.ids import SmppIds
from ingest.providers.registry import ProviderIds
from ingest.providers.times import ProviderTimeError, parse_provider_time
from ingest.settings import IngestSettings
from tests.factories import acceptance
from tests.support.providers import basic

NORMALIZE = ProviderIds.from_settings(
    IngestSettings(smpp_receipt_id_base="dec", smpp_submit_id_base="hex")
).normalize


@pytest.mark.parametrize(
    ("name", "raw", "expected"),
    [
        ("twilio", "sm0123456789ABCDEF0123456789abcdef", "SM0123456789abcdef0123456789abcdef"),
        ("Twilio", " SM0123456789abcdef0123456789abcdef ", "SM0123456789abcdef0123456789abcdef"),
        ("twilio", "not-a-sid", "not-a-sid"),
        ("vonage", "0a0000001234567b", "0A0000001234567B"),
        ("vonage", "AAAAAAAA-BBBB-4CCC-8DDD-000000000001", "aaaaaaaa-bbbb-4ccc-8ddd-000000000001"),
        ("infobip", "MSG-AbC", "MSG-AbC"),
        ("infobip", "3F1C2A9E-0000-4000-8000-000000000001", "3f1c2a9e-0000-4000-8000-000000000001"),
        (
            "sinch",
            "01jaaaaaaaaaaaaaaaaaaaaaaa/15550100001",
            "01JAAAAAAAAAAAAAAAAAAAAAAA/+15550100001",
        ),
        ("smpp", "0000AB12", "AB12"),
        ("PROVIDER1", "MixedCase-007", "MixedCase-007"),
    ],
)
def test_provider_ids_take_their_normal_form(name: str, raw: str, expected: str) -> None:
    """Each provider's id normal form; names not of an adapter are left as given."""
    assert NORMALIZE(name, raw, None) == expected


def test_sinch_acceptance_gets_its_recipient_from_the_phone_number() -> None:
    """A Sinch acceptance naming only the batch id gets its phone number appended."""
    assert NORMALIZE("sinch", "01JAAAAAAAAAAAAAAAAAAAAAAA", "+15550100001") == (
        "01JAAAAAAAAAAAAAAAAAAAAAAA/+15550100001"
    )


def test_different_ids_never_become_equal() -> None:
    """Normalisation keeps distinct ids distinct (case-sensitive Infobip ids, numeric SMPP)."""
    assert ids.infobip_id("msg-a") != ids.infobip_id("MSG-A")
    assert ids.vonage_id("0A01") != ids.vonage_id("0A010")
    smpp = SmppIds("dec", "dec")
    assert smpp.receipt("0012") != smpp.receipt("120")


def test_canonical_acceptance_ids_are_normalised_like_the_adapters() -> None:
    """An acceptance posted to /webhooks/events with an SMPP hex id or a Twilio SID in other
    case is stored in the form the adapter's receipts use."""
    mid, sid = str(uuid.uuid4()), "SM" + uuid.uuid4().hex
    body = orjson.dumps(
        [
            acceptance(mid, provider="smpp", provider_id="0000ab12"),
            acceptance(str(uuid.uuid4()), provider="twilio", provider_id=sid.upper()),
        ]
    )
    smpp_record, twilio_record = parse_body(body, 10, NORMALIZE)
    assert smpp_record.provider.id == "AB12"
    assert twilio_record.provider.id == sid


def test_canonical_event_with_an_impossible_provider_id_is_invalid() -> None:
    """A hex SMPP id where decimal-to-hex is configured is a 400 naming provider.id."""
    strict = ProviderIds.from_settings(
        IngestSettings(smpp_receipt_id_base="dec", smpp_submit_id_base="dec")
    ).normalize
    body = orjson.dumps(acceptance(str(uuid.uuid4()), provider="smpp", provider_id="ABCDEF"))
    with pytest.raises(InvalidBody) as err:
        parse_body(body, 10, strict)
    assert [e.field for e in err.value.errors] == ["provider.id"]


def _settings(**values: Any) -> IngestSettings:
    return IngestSettings(**values)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"infobip_webhook_username": "u"}, "INFOBIP_WEBHOOK_USERNAME"),
        ({"sinch_webhook_password": "p"}, "SINCH_WEBHOOK_USERNAME"),
        ({"smpp_receipt_id_base": "dec"}, "SMPP_RECEIPT_ID_BASE"),
        ({"smpp_timezone": "Mars/Olympus"}, "SMPP_TIMEZONE"),
        ({"allow_unsigned_providers": "twilio,twillio"}, "twillio"),
        ({"public_base_url": "hooks.example.test"}, "PUBLIC_BASE_URL"),
        ({"vonage_signature_method": "sha3"}, "vonage_signature_method"),
    ],
)
def test_invalid_provider_settings_are_refused_naming_the_setting(
    values: dict[str, Any], message: str
) -> None:
    """Half a credential pair, mixed id bases, an unknown zone, a typo in the allow-list, a URL
    without scheme, an unknown signature method: refused at start-up, naming the setting."""
    with pytest.raises(ValidationError) as err:
        _settings(**values)
    assert message in str(err.value)


def test_settings_accept_the_documented_forms() -> None:
    """The allow-list from CSV, a base URL with a prefix (trailing slash dropped), a zone."""
    settings = _settings(
        allow_unsigned_providers="SMPP, vonage-messages",
        public_base_url="https://hooks.example.test/msgstatus/",
        smpp_timezone="Europe/Berlin",
    )
    assert settings.allow_unsigned_providers == ["smpp", "vonage-messages"]
    assert settings.public_base_url == "https://hooks.example.test/msgstatus"


def test_basic_credentials_check() -> None:
    """Right Basic credentials pass; a colon in the password is kept; wrong ones fail."""
    check_basic(basic("user", "pa:ss"), "user", "pa:ss")
    for header in (
        None,
        basic("user", "pa"),
        "Basic " + base64.b64encode(b"nocolon").decode(),
        "Digest x",
    ):
        with pytest.raises(Unauthenticated):
            check_basic(header, "user", "pa:ss")


def test_token_check() -> None:
    """The right token passes; missing, empty, wrong or non-ASCII ones fail (no crash)."""
    check_token("t0k3n", "t0k3n")
    for given in (None, "", "t0k3", "t0k3né"):
        with pytest.raises(Unauthenticated):
            check_token(given, "t0k3n")


@pytest.mark.parametrize(
    ("text", "ms"),
    [
        ("2501151230", 1_736_944_200_000),
        ("250115123059", 1_736_944_259_000),
        ("0002290000", 951_782_400_000),
    ],
)
def test_compact_provider_times_parse_to_utc(text: str, ms: int) -> None:
    """YYMMDDhhmm and YYMMDDhhmmss (years 2000-2099, leap days too) read as UTC by default."""
    assert parse_provider_time(text) == ms


@pytest.mark.parametrize("text", ["2502301230", "25011512", "25O1151230", "2501152460"])
def test_impossible_compact_times_are_malformed(text: str) -> None:
    """An impossible date, a wrong length, a letter, hour 24: unreadable (the adapters then
    use the receive time: tests/test_field_reports_times.py)."""
    with pytest.raises(ProviderTimeError):
        parse_provider_time(text)
