"""Status rules end to end through Kafka and Redis: order, duplicates, early receipts, DLQ."""

from __future__ import annotations

import uuid

from schemas.status import Status
from tests.factories import acceptance, receipt
from tests.support.kafka_util import read_all
from tests.support.stack import Stack


async def test_late_sent_after_delivered_does_not_undo_delivered(stack: Stack) -> None:
    """DELIVERED posted before SENT: the status stays DELIVERED and SENT is in the history."""
    mid = str(uuid.uuid4())
    await stack.post(acceptance(mid, at="2026-02-04T06:54:35Z"))
    await stack.post(receipt("DELIVERED", "2026-02-04T06:54:55Z", message_id=mid))
    await stack.wait_for_status(mid, "DELIVERED")
    await stack.post(receipt("SENT", "2026-02-04T06:54:40Z", message_id=mid))
    history = await stack.wait_for_history(mid, 3)
    assert [e["status"] for e in history.body["events"]] == [
        "PROVIDER_ACCEPTANCE",
        "SENT",
        "DELIVERED",
    ]
    doc = (await stack.get(f"/api/messagestatus/{mid}")).body["message"]
    assert doc["status"] == "DELIVERED"
    assert doc["statusChangedAt"] == "2026-02-04T06:54:55Z"


async def test_undelivered_after_delivered_never_moves_the_status_back(stack: Stack) -> None:
    """A failure report after a handset receipt is kept in history, status stays DELIVERED."""
    mid = str(uuid.uuid4())
    await stack.post(
        [
            acceptance(mid),
            receipt("DELIVERED", "2026-02-04T06:54:50Z", message_id=mid),
            receipt("UNDELIVERED", "2026-02-04T06:59:00Z", message_id=mid, code="30003"),
        ]
    )
    history = await stack.wait_for_history(mid, 3)
    assert history.body["events"][-1]["status"] == "UNDELIVERED"
    assert (await stack.get(f"/api/messagestatus/{mid}")).body["message"]["status"] == "DELIVERED"


async def test_retried_callback_is_one_history_entry(stack: Stack) -> None:
    """The same webhook posted three times gives one history entry, not three."""
    mid = str(uuid.uuid4())
    await stack.post(acceptance(mid))
    sent = receipt("SENT", "2026-02-04T06:54:40Z", message_id=mid)
    for _ in range(3):
        assert (await stack.post(sent)).status == 202
    marker = receipt("DELIVERED", "2026-02-04T06:54:55Z", message_id=mid)
    await stack.post(marker)
    history = await stack.wait_for_history(mid, 3)
    assert [e["status"] for e in history.body["events"]] == [
        "PROVIDER_ACCEPTANCE",
        "SENT",
        "DELIVERED",
    ]


async def test_receipt_before_acceptance_is_kept_and_message_is_404_until_accepted(
    stack: Stack,
) -> None:
    """A DELIVERED that beats the acceptance: 404 until the acceptance, then DELIVERED."""
    mid = str(uuid.uuid4())
    await stack.post(receipt("DELIVERED", "2026-02-04T06:54:55Z", message_id=mid))
    await stack.wait_caught_up()  # the receipt is in the projection, its message unknown
    assert (await stack.get(f"/api/messagestatus/{mid}")).status == 404
    await stack.post(acceptance(mid))
    reply = await stack.wait_for_status(mid, "DELIVERED")
    assert reply.body["message"]["providerAcceptanceAt"] == "2026-02-04T06:54:35Z"


async def test_receipt_naming_only_the_provider_id_is_parked_until_acceptance(stack: Stack) -> None:
    """A receipt by provider name + id that arrives first is applied once the acceptance comes."""
    mid, pid = str(uuid.uuid4()), f"SM{uuid.uuid4().hex}"
    early = receipt("DELIVERED", "2026-02-04T06:54:55Z", provider="twilio", provider_id=pid)
    assert (await stack.post(early)).status == 202
    await stack.wait_caught_up()  # the receipt is in the projection, parked
    assert (await stack.get(f"/api/messagestatus/{mid}")).status == 404
    await stack.post(acceptance(mid, provider="twilio", provider_id=pid))
    await stack.wait_for_status(mid, "DELIVERED")
    late = receipt("UNDELIVERED", "2026-02-04T06:58:00Z", provider="twilio", provider_id=pid)
    await stack.post(late)
    history = await stack.wait_for_history(mid, 3)
    assert history.body["events"][-1]["status"] == "UNDELIVERED"


async def test_read_on_an_sms_message_goes_to_the_dead_letter_topic(stack: Stack) -> None:
    """READ is RCS only: on an SMS message it is dead-lettered with the reason, never shown."""
    mid = str(uuid.uuid4())
    await stack.post(receipt("READ", "2026-02-04T06:55:10Z", message_id=mid))
    await stack.post(
        [acceptance(mid), receipt("DELIVERED", "2026-02-04T06:54:55Z", message_id=mid)]
    )
    await stack.wait_for_status(mid, "DELIVERED")

    async def dead_lettered() -> bool:
        letters = await read_all(stack.kafka, stack.topic + ".dlq", timeout_ms=500)
        return any(d.get("messageId") == mid and "READ" in d["reason"] for d in letters)

    await stack.wait_for(dead_lettered, 20, "the READ to be dead-lettered")
    history = await stack.get(f"/api/messagestatus/{mid}/history")
    assert "READ" not in [e["status"] for e in history.body["events"]]


async def test_read_on_rcs_is_the_final_status(stack: Stack) -> None:
    """On RCS, READ outranks DELIVERED, and sms is absent from the document."""
    mid = str(uuid.uuid4())
    await stack.post(
        [
            acceptance(mid, channel="RCS"),
            receipt("READ", "2026-02-04T06:56:00Z", message_id=mid),
            receipt("DELIVERED", "2026-02-04T06:55:00Z", message_id=mid),
        ]
    )
    doc = (await stack.wait_for_status(mid, "READ")).body["message"]
    assert doc["channel"] == "RCS"
    assert "sms" not in doc


async def test_invalid_record_in_the_log_is_dead_lettered_and_the_projector_goes_on(
    stack: Stack,
) -> None:
    """A record that is not a valid event goes to the DLQ; later events still apply."""
    from aiokafka import AIOKafkaProducer  # noqa: PLC0415

    producer = AIOKafkaProducer(bootstrap_servers=stack.kafka)
    await producer.start()
    try:
        await producer.send_and_wait(
            stack.topic, b'{"schemaVersion": 1, "status": "LOST"}', key=b"x"
        )
    finally:
        await producer.stop()
    mid = str(uuid.uuid4())
    await stack.post(acceptance(mid))
    await stack.wait_for_status(mid, "PROVIDER_ACCEPTANCE")

    async def dead_lettered() -> bool:
        letters = await read_all(stack.kafka, stack.topic + ".dlq", timeout_ms=500)
        return any("LOST" in d.get("raw", "") for d in letters)

    await stack.wait_for(dead_lettered, 20, "the invalid record to be dead-lettered")


async def test_optional_fields_follow_the_seed(stack: Stack) -> None:
    """reference is {} when absent; provider.message appears only when given; code a string."""
    mid = str(uuid.uuid4())
    await stack.post(
        [
            acceptance(mid),
            receipt(
                "UNDELIVERED",
                "2026-02-04T06:55:00Z",
                message_id=mid,
                code="30007",
                message="Number Blocked by Carrier",
            ),
        ]
    )
    doc = (await stack.wait_for_status(mid, "UNDELIVERED")).body["message"]
    assert doc["reference"] == {}
    assert doc["provider"]["message"] == "Number Blocked by Carrier"
    assert doc["provider"]["code"] == "30007"
    other = str(uuid.uuid4())
    await stack.post(acceptance(other))
    doc2 = (await stack.wait_for_status(other, "PROVIDER_ACCEPTANCE")).body["message"]
    assert "message" not in doc2["provider"]


async def test_text_becomes_segments_and_uppercase_ids_match(stack: Stack) -> None:
    """Segments computed from text (UCS-2 here); a message id in upper case finds the message."""
    mid = str(uuid.uuid4())
    await stack.post(acceptance(mid, text="Zażółć gęślą jaźń " * 5, segments=None))
    reply = await stack.wait_for_status(mid, "PROVIDER_ACCEPTANCE")
    assert reply.body["message"]["sms"] == {"segments": 2}
    upper = await stack.get(f"/api/messagestatus/{mid.upper()}")
    assert upper.status == 200
    assert upper.body["message"]["id"] == mid


async def test_a_log_record_holding_two_events_is_dead_lettered_not_split(stack: Stack) -> None:
    """A record value "{event},{event}" is not one event: dead-lettered, neither applied."""
    from aiokafka import AIOKafkaProducer  # noqa: PLC0415

    from tests.factories import record  # noqa: PLC0415

    first, second = str(uuid.uuid4()), str(uuid.uuid4())
    a = record(Status.PROVIDER_ACCEPTANCE, 1_770_188_075_000, message_id=first).to_json()
    b = record(Status.PROVIDER_ACCEPTANCE, 1_770_188_075_000, message_id=second).to_json()
    marker = str(uuid.uuid4())
    after = record(Status.PROVIDER_ACCEPTANCE, 1_770_188_075_000, message_id=marker).to_json()
    producer = AIOKafkaProducer(bootstrap_servers=stack.kafka)
    await producer.start()
    try:  # same key, same partition: once the marker is applied, so was the bad record
        await producer.send_and_wait(stack.topic, a + b"," + b, key=first.encode())
        await producer.send_and_wait(stack.topic, after, key=first.encode())
    finally:
        await producer.stop()
    await stack.wait_for_status(marker, "PROVIDER_ACCEPTANCE")
    assert (await stack.get(f"/api/messagestatus/{first}")).status == 404
    assert (await stack.get(f"/api/messagestatus/{second}")).status == 404

    async def dead_lettered() -> bool:
        letters = await read_all(stack.kafka, stack.topic + ".dlq", timeout_ms=500)
        return any(d.get("raw") == (a + b"," + b).decode() for d in letters)

    await stack.wait_for(dead_lettered, 20, "the two-event record to be dead-lettered")
