"""Push: status changes reach senders' endpoints, signed, once, in a usable order, safely."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from redis.asyncio import Redis
from standardwebhooks.webhooks import Webhook

from notifier.runner import Notifier
from notifier.settings import NotifierSettings
from projector.replay import Replay
from projector.settings import ProjectorSettings
from schemas import deliveries
from schemas.changes import changes_topic
from tests.factories import acceptance, new_secret, receipt
from tests.support.receiver import Received, Receiver
from tests.support.stack import REDIS_URL, Stack, new_stack

PUSH_REDIS = REDIS_URL.rsplit("/", 1)[0] + "/7"
NEW_SECRET, OLD_SECRET, SUB_SECRET = new_secret(), new_secret(), new_secret()
SERVICE = f"SVC-{uuid.uuid4().hex[:8]}"


class Push:
    """The module's stack, receiver and notifier (which tests may kill and start again)."""

    def __init__(self, stack: Stack, receiver: Receiver, settings: NotifierSettings) -> None:
        self.stack, self.receiver, self.settings = stack, receiver, settings
        self.task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start a notifier process's loops as a task."""
        self.task = asyncio.create_task(Notifier(self.settings).run())

    async def kill(self) -> None:
        """Stop the notifier abruptly, mid-whatever it was doing."""
        assert self.task is not None
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)
        self.task = None

    async def until(self, cond: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
        """Poll ``cond`` until true; fail after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if cond():
                return
            if self.task is not None and self.task.done():
                raise AssertionError(f"the notifier stopped: {self.task.exception()!r}")
            await asyncio.sleep(0.02)
        raise AssertionError(f"timed out after {timeout}s waiting for {what}")

    async def accept(self, url: str | None, **kw: Any) -> str:
        """Post an acceptance naming ``url`` as its webhook; returns the message id."""
        mid = str(uuid.uuid4())
        event = acceptance(mid, **kw)
        if url is not None:
            event["webhook"] = {
                "url": url,
                "authentication": {"type": "HEADERS", "headers": {"X-Token": "t0ken"}},
            }
        assert (await self.stack.post(event)).status == 202
        return mid

    async def receipt(self, mid: str, status: str, at: str) -> None:
        """Post a receipt of ``mid``."""
        assert (await self.stack.post(receipt(status, at, message_id=mid))).status == 202

    async def deliveries(self, mid: str) -> dict[str, Any]:
        """The read API's deliveries document of ``mid``."""
        reply = await self.stack.get(f"/api/messagestatus/{mid}/deliveries")
        assert reply.status == 200, reply.body
        body: dict[str, Any] = reply.body
        return body

    async def caught_up(self, timeout: float = 15.0) -> None:
        """Wait until the notifier's group committed the whole change topic as it is now."""
        topic = changes_topic(self.stack.topic)
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.stack.kafka, group_id=self.settings.group_id
        )
        await consumer.start()
        try:
            tps = [TopicPartition(topic, p) for p in range(3)]
            ends = await consumer.end_offsets(tps)
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                done = [(await consumer.committed(tp) or 0) >= ends[tp] for tp in tps]
                if all(done):
                    return
                await asyncio.sleep(0.05)
            raise AssertionError("the notifier did not take the change log in")
        finally:
            await consumer.stop()


@pytest.fixture(scope="module")
async def push(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Push]:
    """A stack in a Redis database of its own, a local receiver and a running notifier."""
    r = Redis.from_url(PUSH_REDIS)
    await r.flushdb()
    await r.aclose()
    stack = new_stack(redis_url=PUSH_REDIS, pinned=False)
    await stack.start()
    receiver = await Receiver().start()
    subs: Path = tmp_path_factory.mktemp("push") / "subscriptions.json"
    subs.write_bytes(  # noqa: ASYNC240 - a small file, once per module
        orjson.dumps(
            {
                "subscriptions": [
                    {
                        "id": "crm",
                        "url": receiver.url("/ok/crm"),
                        "service": SERVICE,
                        "secrets": [SUB_SECRET],
                    }
                ]
            }
        )
    )
    settings = NotifierSettings(
        **stack.common(),
        group_id=f"notifier-{stack.topic}",
        subscriptions_file=str(subs),
        signing_secrets=[NEW_SECRET, OLD_SECRET],
        allow_hosts=["127.0.0.1"],
        retry_schedule_s=[0.2, 0.3, 0.4],
        retry_jitter=0.0,
        lease_s=1.0,
        request_timeout_s=1.0,
        endpoint_concurrency=2,
        breaker_failures=3,
        breaker_open_s=0.5,
        metrics_port=0,
        poll_timeout_ms=50,
        idle_poll_s=0.02,
    )
    p = Push(stack, receiver, settings)
    p.start()
    yield p
    if p.task is not None:
        await p.kill()
    await receiver.close()
    await stack.close()


def ok(received: list[Received]) -> list[Received]:
    """The requests answered 2xx."""
    return [r for r in received if 200 <= r.status < 300]


async def test_changes_arrive_signed_with_both_secrets_in_the_seed_body(push: Push) -> None:
    """Each change arrives once, in the seed body, signed for both secrets of a rotation."""
    mid = await push.accept(push.receiver.url("/ok/healthy"))
    await push.stack.wait_for_status(mid, "PROVIDER_ACCEPTANCE")
    await push.receipt(mid, "SENT", "2026-02-04T06:54:40Z")
    await push.stack.wait_for_status(mid, "SENT")
    await push.receipt(mid, "DELIVERED", "2026-02-04T06:54:55Z")
    document = (await push.stack.wait_for_status(mid, "DELIVERED")).body
    await push.until(lambda: len(ok(push.receiver.for_message(mid))) == 2, "two deliveries")
    got = push.receiver.for_message(mid)
    assert [r.body["message"]["status"] for r in got] == ["SENT", "DELIVERED"]
    for r in got:
        for secret in (NEW_SECRET, OLD_SECRET):
            Webhook(secret).verify(r.raw, r.headers)  # raises when a signature is wrong
        assert r.headers["X-Token"] == "t0ken"
        assert set(r.body) == {"id", "webhookConfigurationId", "type", "createdAt", "message"}
        assert r.body["type"] == "STATUS_UPDATE"
        assert r.body["id"] == r.headers["webhook-id"]
    assert got[-1].body["message"] == document["message"]
    sequences = [int(r.headers["msgstatus-sequence"]) for r in got]
    assert sequences == sorted(sequences)
    assert len(set(sequences)) == 2
    assert len({r.headers["webhook-id"] for r in got}) == 2


async def test_a_flaky_endpoint_gets_each_change_once_with_the_same_webhook_id(push: Push) -> None:
    """5xx twice then 2xx: three attempts of one webhook-id, one 2xx, attempts in the API."""
    mid = await push.accept(push.receiver.url("/flaky/2/a"))
    await push.receipt(mid, "DELIVERED", "2026-02-04T06:54:55Z")
    await push.until(lambda: len(ok(push.receiver.for_message(mid))) == 1, "a 2xx delivery")
    got = push.receiver.for_message(mid)
    assert [r.status for r in got] == [503, 503, 200]
    assert len({r.headers["webhook-id"] for r in got}) == 1
    # The receiver has answered before the notifier records the outcome: wait for the record.
    deadline = time.monotonic() + 10
    doc = await push.deliveries(mid)
    while len(doc["attempts"]) < 3 and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
        doc = await push.deliveries(mid)
    assert [a["outcome"] for a in doc["attempts"]] == ["delivered", "retry", "retry"]
    assert doc["attempts"][-1]["httpStatus"] == 503
    assert doc["attempts"][0]["host"] == "127.0.0.1"
    assert doc["attempts"][0]["latencyMs"] >= 0
    assert doc["endpoints"][0]["state"] == "delivered"
    assert "never stored" not in orjson.dumps(doc).decode()
    unauthorized = await push.stack.get(f"/api/messagestatus/{mid}/deliveries", api_key=None)
    assert unauthorized.status == 403


async def test_410_disables_the_endpoint(push: Push) -> None:
    """A 410 answer ends the delivery and no later change is sent to that endpoint."""
    url = push.receiver.url(f"/gone/{uuid.uuid4().hex}")
    mid = await push.accept(url)
    await push.receipt(mid, "SENT", "2026-02-04T06:54:40Z")
    await push.until(lambda: len(push.receiver.for_message(mid)) == 1, "the 410")
    second = await push.accept(url)
    await push.receipt(second, "DELIVERED", "2026-02-04T06:54:55Z")
    await push.stack.wait_for_status(second, "DELIVERED")
    await push.caught_up()
    doc = await push.deliveries(mid)
    assert doc["endpoints"][0]["state"] == "gone"
    assert push.receiver.for_message(second) == []


async def test_a_redirect_is_never_followed(push: Push) -> None:
    """302 to the link-local metadata address: retried as a failure, then dead-lettered."""
    mid = await push.accept(push.receiver.url("/redirect/x"))
    await push.receipt(mid, "DELIVERED", "2026-02-04T06:54:55Z")

    async def dead() -> bool:
        doc = await push.deliveries(mid)
        return bool(doc["endpoints"]) and doc["endpoints"][0]["state"] == "dead"

    deadline = time.monotonic() + 10
    while not await dead():
        assert time.monotonic() < deadline, "the delivery was not dead-lettered"
        await asyncio.sleep(0.05)
    got = push.receiver.for_message(mid)
    assert [r.status for r in got] == [302] * 4  # the first attempt and three retries
    doc = await push.deliveries(mid)
    assert {a["httpStatus"] for a in doc["attempts"]} == {302}


async def test_non_public_addresses_are_refused_and_logged(
    push: Push, caplog: pytest.LogCaptureFixture
) -> None:
    """localhost (not allow-listed) and a private IP literal are refused, never dialled."""
    caplog.set_level(logging.WARNING)
    port = push.receiver.base.rsplit(":", 1)[1]
    by_name = await push.accept(f"https://localhost:{port}/ok/ssrf")
    literal = await push.accept("https://10.1.2.3/ok/ssrf")
    for mid in (by_name, literal):
        await push.receipt(mid, "DELIVERED", "2026-02-04T06:54:55Z")
    for mid in (by_name, literal):
        deadline = time.monotonic() + 10
        while not (await push.deliveries(mid))["attempts"]:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.05)
        attempt = (await push.deliveries(mid))["attempts"][0]
        assert (attempt["outcome"], attempt["error"]) == ("refused", "RefusedAddress")
    assert push.receiver.for_message(by_name) == []
    assert "refused to dial localhost" in caplog.text
    assert "10.1.2.3 is not public" in caplog.text


async def test_a_receiver_getting_changes_reversed_keeps_the_newest_by_sequence(
    push: Push,
) -> None:
    """SENT answered after DELIVERED: keeping the highest sequence ends at DELIVERED."""
    mid = await push.accept(push.receiver.url("/slowfirst/r"))
    await push.receipt(mid, "SENT", "2026-02-04T06:54:40Z")
    await push.until(lambda: len(push.receiver.for_message(mid)) == 1, "the SENT request")
    await push.receipt(mid, "DELIVERED", "2026-02-04T06:54:55Z")
    await push.until(
        lambda: sum(r.message_id == mid for r in push.receiver.done) == 2, "both answered"
    )
    answered = [r for r in push.receiver.done if r.message_id == mid]
    assert [r.body["message"]["status"] for r in answered] == ["DELIVERED", "SENT"]
    kept: dict[str, tuple[int, str]] = {}
    for r in answered:  # what a receiver does with the header
        seq = int(r.headers["msgstatus-sequence"])
        if seq > kept.get(mid, (-1, ""))[0]:
            kept[mid] = (seq, r.body["message"]["status"])
    assert kept[mid][1] == "DELIVERED"


async def test_a_dead_endpoint_does_not_delay_another(push: Push) -> None:
    """Twenty deliveries to an endpoint that times out leave a healthy one's prompt."""
    dead = [await push.accept(push.receiver.url("/slow/dead")) for _ in range(20)]
    for mid in dead:
        await push.receipt(mid, "DELIVERED", "2026-02-04T06:54:55Z")
    await push.until(
        lambda: sum(r.path == "/slow/dead" for r in push.receiver.received) >= 2, "dead attempts"
    )
    started = time.monotonic()
    healthy = [await push.accept(push.receiver.url("/ok/other")) for _ in range(5)]
    for mid in healthy:
        await push.receipt(mid, "DELIVERED", "2026-02-04T06:54:55Z")
    await push.until(
        lambda: all(ok(push.receiver.for_message(m)) for m in healthy), "healthy deliveries"
    )
    assert time.monotonic() - started < 3.0


async def test_a_killed_notifier_loses_no_delivery(push: Push) -> None:
    """Killed between a failed attempt and its retry, and while a change waits: both arrive."""
    waiting = await push.accept(push.receiver.url("/flaky/1/kill"))
    await push.receipt(waiting, "DELIVERED", "2026-02-04T06:54:55Z")
    await push.until(lambda: len(push.receiver.for_message(waiting)) == 1, "the first 503")
    await push.kill()
    later = await push.accept(push.receiver.url("/ok/kill"))
    await push.receipt(later, "DELIVERED", "2026-02-04T06:54:55Z")
    await push.stack.wait_for_status(later, "DELIVERED")
    push.start()
    await push.until(lambda: len(ok(push.receiver.for_message(waiting))) == 1, "the retry")
    await push.until(lambda: len(ok(push.receiver.for_message(later))) == 1, "the waiting one")
    assert len({r.headers["webhook-id"] for r in push.receiver.for_message(waiting)}) == 1


async def test_subscriptions_select_by_reference_service(push: Push) -> None:
    """A message of the subscribed service goes to the subscription, signed with its secret."""
    mid = await push.accept(None, reference={"service": SERVICE, "key": "k1"})
    other = await push.accept(None, reference={"service": "ELSEWHERE"})
    for m in (mid, other):
        await push.receipt(m, "DELIVERED", "2026-02-04T06:54:55Z")
    await push.until(lambda: len(push.receiver.for_message(mid)) == 1, "the subscription's")
    got = push.receiver.for_message(mid)[0]
    assert got.body["webhookConfigurationId"] == "crm"
    Webhook(SUB_SECRET).verify(got.raw, got.headers)
    await push.stack.wait_for_status(other, "DELIVERED")
    await push.caught_up()
    assert push.receiver.for_message(other) == []


async def test_resend_and_recover_send_a_delivered_change_again(push: Push) -> None:
    """Resend queues the last change with a new id; recover after lost state with the old id."""
    mid = await push.accept(push.receiver.url("/ok/again"))
    await push.receipt(mid, "DELIVERED", "2026-02-04T06:54:55Z")
    await push.until(lambda: len(push.receiver.for_message(mid)) == 1, "the delivery")
    first = push.receiver.for_message(mid)[0].headers["webhook-id"]
    since = int(time.time() * 1000) - 60_000
    async with push.stack.http.post(
        f"{push.stack.api_url}/api/messagestatus/{mid}/deliveries/resend",
        headers={"X-Api-Key": push.stack.api_key},
    ) as resp:
        assert (resp.status, (await resp.json())["queued"]) == (202, 1)
    await push.until(lambda: len(push.receiver.for_message(mid)) == 2, "the resend")
    assert push.receiver.for_message(mid)[1].headers["webhook-id"] != first
    # The notifier's state of the message is lost; recover takes the change log in again.
    ns = push.settings.namespace
    await push.stack.redis.delete(deliveries.last_key(ns, mid), deliveries.latest_key(ns, mid))
    from notifier.recover import recover  # noqa: PLC0415
    from notifier.settings import RecoverSettings  # noqa: PLC0415

    queued = await recover(RecoverSettings(**push.settings.model_dump()), since)
    assert queued >= 1
    await push.until(lambda: len(push.receiver.for_message(mid)) == 3, "the recovered one")
    assert push.receiver.for_message(mid)[2].headers["webhook-id"] == first


@pytest.mark.slow
async def test_a_replay_into_a_new_generation_sends_nothing_again(push: Push) -> None:
    """Every change was delivered; a full replay publishes them again and none is re-sent."""
    mid = await push.accept(push.receiver.url("/ok/replay"))
    await push.receipt(mid, "DELIVERED", "2026-02-04T06:54:55Z")
    await push.until(lambda: len(push.receiver.for_message(mid)) == 1, "the delivery")
    await push.caught_up()
    before = len(push.receiver.received)
    delivered = {r.message_id for r in ok(push.receiver.received) if not r.path.startswith("/slow")}
    settings = ProjectorSettings(**push.stack.common(), metrics_port=0)
    result = await Replay(settings, grace_s=0).run()
    assert result.switched
    await push.caught_up()
    await push.stack.wait_for_status(mid, "DELIVERED")
    again = [r for r in push.receiver.received[before:] if r.message_id in delivered]
    assert again == []
