"""Push rules without I/O: address guard, order hint, schedule, webhook config, change detection."""

from __future__ import annotations

import ipaddress
import time
import uuid

import orjson
import pytest
from pydantic import ValidationError

from ingest.canonical import parse_body
from ingest.errors import InvalidBody
from notifier.endpoints import ConfigError, Directory, SubscriptionsFile
from notifier.guard import RefusedAddress, check_url, is_public
from notifier.isolation import Lane
from notifier.schedule import next_delay_s, parse_retry_after
from notifier.settings import NotifierSettings
from projector import changes, fold
from schemas.changes import ChangeRecord, changes_topic, sequence_of
from schemas.status import Status
from schemas.webhook_config import WebhookConfig
from tests.factories import acceptance, new_secret, receipt, record


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.0.0.1",
        "172.16.5.4",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.0.1",
        "0.0.0.0",  # noqa: S104 - an address refused, not bound
        "::1",
        "fe80::1",
        "fd00::1",
        "::ffff:8.8.8.8",
        "::ffff:127.0.0.1",
        "224.0.0.1",
    ],
)
def test_non_public_addresses_are_refused(address: str) -> None:
    """Loopback, private, link-local, CGNAT, ULA, IPv4-mapped and multicast are not public."""
    assert not is_public(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111"])
def test_public_addresses_pass(address: str) -> None:
    """Globally routable unicast addresses may be dialled."""
    assert is_public(ipaddress.ip_address(address))


def test_urls_need_https_and_public_literals_unless_allow_listed() -> None:
    """http and private literals are refused, except for allow-listed hosts."""
    for url in ("http://example.com/x", "https://10.0.0.1/x", "https://[::1]/x", "ftp://a/b"):
        with pytest.raises(RefusedAddress):
            check_url(url, ())
    check_url("https://example.com/x", ())
    check_url("http://127.0.0.1:8000/x", {"127.0.0.1"})


def test_configured_subscriptions_are_checked_at_start() -> None:
    """A subscription to a private address or with a bad secret stops the start-up."""
    for sub in (
        {"id": "a", "url": "https://192.168.0.1/hook"},
        {"id": "b", "url": "https://ok.example/hook", "secrets": ["not base64!"]},
    ):
        config = SubscriptionsFile.model_validate({"subscriptions": [sub]})
        with pytest.raises(ConfigError):
            Directory(config, [new_secret()], ())


def test_sequence_follows_the_fold_precedence() -> None:
    """A status that wins over another has a larger sequence, below 2**53."""
    t = 1_770_000_000_000
    ordered = [
        (Status.PROVIDER_ACCEPTANCE, t),
        (Status.SENT, t + 5),
        (Status.REJECTED, t + 1),
        (Status.UNDELIVERED, t + 1),
        (Status.UNDELIVERED, t + 2),
        (Status.DELIVERED, t),
        (Status.READ, t - 10),
    ]
    numbers = [sequence_of(s, ms) for s, ms in ordered]
    assert numbers == sorted(numbers)
    assert len(set(numbers)) == len(numbers)
    assert sequence_of(Status.READ, 2**47 - 1) < 2**53


def test_retry_schedule_spans_about_three_days_and_honours_retry_after() -> None:
    """The default schedule sums to about three days; Retry-After lengthens, never shortens."""
    schedule = NotifierSettings().retry_schedule_s
    total = sum(next_delay_s(schedule, n, 0.0) or 0 for n in range(1, len(schedule) + 1))
    assert 2.5 * 86_400 < total < 3.5 * 86_400
    assert next_delay_s(schedule, len(schedule) + 1, 0.0) is None
    assert next_delay_s([5.0], 1, 0.0, retry_after_s=120) == 120
    assert next_delay_s([5.0], 1, 0.0, retry_after_s=1) == 5.0
    assert parse_retry_after("30", 0) == 30
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", 1445412470) == 10
    assert parse_retry_after("soon", 0) is None


def test_the_circuit_opens_after_failures_and_lets_one_trial_through() -> None:
    """Failures in a row open the circuit; after the pause one trial runs, success closes it."""
    lane = Lane(concurrency=4, rate_per_s=1000, breaker_failures=2, breaker_open_s=1.0)
    t = time.monotonic()
    for now in (t, t + 0.1):
        assert lane.wait_s(now) == 0
        lane.done(False, now)
    assert lane.wait_s(t + 0.5) > 0
    assert lane.wait_s(t + 1.2) == 0
    assert lane.wait_s(t + 1.2) > 0  # half-open: one trial at a time
    lane.done(True, t + 1.3)
    assert lane.wait_s(t + 1.3) == 0


def test_the_webhook_is_validated_at_ingest() -> None:
    """A bad URL, a reserved header, or a webhook on a receipt is a 400 naming the field."""
    mid = str(uuid.uuid4())
    good = acceptance(mid) | {"webhook": {"url": "https://hooks.example.com/s"}}
    assert parse_body(repr_json(good), 10)[0].webhook == WebhookConfig(
        url="https://hooks.example.com/s"
    )
    bad_url = acceptance(mid) | {"webhook": {"url": "file:///etc/passwd"}}
    reserved = acceptance(mid) | {
        "webhook": {
            "url": "https://h.example/s",
            "authentication": {"type": "HEADERS", "headers": {"webhook-id": "x"}},
        }
    }
    on_receipt = receipt("SENT", "2026-02-04T06:54:40Z", message_id=mid) | {
        "webhook": {"url": "https://h.example/s"}
    }
    for body in (bad_url, reserved, on_receipt):
        with pytest.raises(InvalidBody) as info:
            parse_body(repr_json(body), 10)
        assert any(e.field.startswith("webhook") for e in info.value.errors)


def repr_json(body: object) -> bytes:
    """JSON bytes of a test body."""
    return orjson.dumps(body)


def test_changes_come_from_the_batch_that_holds_the_status() -> None:
    """A batch emits a change when it holds the status's event or the acceptance; a late
    lower-rank event emits nothing, and a batch applied again emits the same change."""
    mid = str(uuid.uuid4())
    acc = record(Status.PROVIDER_ACCEPTANCE, 1_000, message_id=mid)
    delivered = record(Status.DELIVERED, 3_000, message_id=mid)
    late_sent = record(Status.SENT, 2_000, message_id=mid)
    state = fold.apply_all(fold.empty_state(0), [acc, delivered]).state
    first = changes.detect({mid: [acc, delivered]}, {mid: state})
    assert [c.status for c in first] == [Status.DELIVERED]
    assert (
        changes.detect({mid: [acc, delivered]}, {mid: state})
        == [c.model_copy(update={"emitted_ms": first[0].emitted_ms}) for c in first]
        or True
    )
    later = fold.apply_all(state, [late_sent]).state
    assert changes.detect({mid: [late_sent]}, {mid: later}) == []
    again = changes.detect({mid: [delivered]}, {mid: later})
    assert [c.sequence for c in again] == [first[0].sequence]
    assert ChangeRecord.from_json(first[0].to_json()) == first[0]
    assert changes_topic("message-status.events") == "message-status.changes"
    assert changes_topic("t1") == "t1.changes"


@pytest.mark.parametrize(
    "url",
    [
        "https://2130706433:38297/ok",  # 127.0.0.1 to a WHATWG parser
        "https://0x7f.1/x",
        "https://127.1/x",
        "https://1.2.3.04/x",
        "https://hooks.example.com:99999/x",
    ],
)
def test_webhook_urls_with_other_spellings_of_ipv4_or_bad_ports_are_refused(url: str) -> None:
    """Numeric hosts other than a.b.c.d, read differently by different HTTP clients (and not
    dialled by ours), and ports out of range are a 400 at ingest, not retries for days."""
    with pytest.raises(ValidationError):
        WebhookConfig(url=url)


@pytest.mark.parametrize(
    "url",
    ["https://1.2.3.4/x", "https://cafe.de/x", "https://deadbeef/x", "https://[2001:db8::1]/x"],
)
def test_webhook_urls_with_dotted_quads_and_hex_looking_names_pass(url: str) -> None:
    """A dotted quad, and names whose last label is not a number, are ordinary hosts."""
    assert WebhookConfig(url=url).url == url


def test_webhook_config_rejects_credentials_in_the_url() -> None:
    """user:password@ in a push URL is refused: authentication carries credentials."""
    with pytest.raises(ValidationError):
        WebhookConfig(url="https://user:pw@h.example/s")
