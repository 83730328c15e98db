"""A provider retrying a callback never adds a history entry, for every adapter, end to end.

A retried callback is the same event (its id leaves out signatures and our receive time,
docs/providers.md "Event ids"); the fold keeps each event once, in its earliest form, even
where ``occurredAt`` is the receive time and so differs between the original and the retry
(Twilio, Sinch batch reports, Kannel types). Histories are compared as lists: order and count.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from urllib.parse import urlencode

import orjson
import pytest

from tests.support.providers import (
    PROVIDER_SETTINGS,
    SMPP_TOKEN,
    new_phone,
    new_sid,
    vonage_jwt,
)
from tests.support.stack import Reply, Stack, new_stack
from tests.test_providers_e2e import (
    INFOBIP_AUTH,
    SINCH_AUTH,
    accept,
    call,
    dlr,
    infobip_report,
    messages_status,
    twilio,
    vonage_id,
)


@pytest.fixture(scope="module")
async def stack() -> AsyncIterator[Stack]:
    """A stack whose ingest has every adapter's credentials (tests.support.providers)."""
    s = new_stack()
    await s.start(**PROVIDER_SETTINGS)
    yield s
    await s.close()


Send = Callable[[Stack], Awaitable[Reply]]
"""Sends the callback once more, signed afresh where the provider signs each attempt."""


async def accepted_twilio(stack: Stack) -> tuple[str, Send]:
    """A Twilio message and its 'delivered' callback (no provider time: receive time)."""
    sid = new_sid()
    mid = await accept(stack, "twilio", sid)
    return mid, lambda s: twilio(s, sid, "delivered")


async def accepted_vonage(stack: Stack) -> tuple[str, Send]:
    """A Vonage SMS message and its DLR (new timestamp, nonce and sig on each attempt)."""
    pid = vonage_id()
    mid = await accept(stack, "vonage", pid)

    async def send(s: Stack) -> Reply:
        return await call(s, "GET", "/webhooks/vonage?" + urlencode(dlr(pid, "delivered")))

    return mid, send


async def accepted_vonage_messages(stack: Stack) -> tuple[str, Send]:
    """A Vonage Messages RCS message and its 'read' status (a new JWT on each attempt)."""
    muuid = str(uuid.uuid4())
    mid = await accept(stack, "vonage", muuid, channel="RCS")
    body = messages_status(muuid, "read", "2025-01-15T12:31:02Z")

    async def send(s: Stack) -> Reply:
        headers = {
            "Authorization": f"Bearer {vonage_jwt(body)}",
            "Content-Type": "application/json",
        }
        return await call(s, "POST", "/webhooks/vonage-messages", body=body, headers=headers)

    return mid, send


async def accepted_infobip(stack: Stack) -> tuple[str, Send]:
    """An Infobip message and a report batch holding its delivery report."""
    pid = "MSG-" + uuid.uuid4().hex
    mid = await accept(stack, "infobip", pid)
    body = orjson.dumps({"results": [infobip_report(pid, 5, "DELIVERED_TO_HANDSET", "DELIVERED")]})
    return mid, lambda s: call(s, "POST", "/webhooks/infobip", body=body, headers=INFOBIP_AUTH)


async def accepted_sinch(stack: Stack) -> tuple[str, Send]:
    """A Sinch message and a batch delivery report naming it (no provider time: receive time)."""
    batch, phone = "01J" + uuid.uuid4().hex[:23].upper(), new_phone()
    mid = await accept(stack, "sinch", f"{batch}/{phone}", phone="+" + phone)
    body = orjson.dumps(
        {
            "type": "delivery_report_sms",
            "batch_id": batch,
            "statuses": [{"code": 0, "status": "Delivered", "count": 1, "recipients": [phone]}],
        }
    )
    return mid, lambda s: call(s, "POST", "/webhooks/sinch", body=body, headers=SINCH_AUTH)


async def accepted_smpp(stack: Stack) -> tuple[str, Send]:
    """An SMPP message and a Kannel DLR by type naming our id (receive time)."""
    mid = await accept(stack, "smpp", str(uuid.uuid4()))
    query = urlencode({"token": SMPP_TOKEN, "type": "1", "messageId": mid})
    return mid, lambda s: call(s, "GET", "/webhooks/smpp?" + query)


ADAPTERS: dict[str, tuple[Callable[[Stack], Awaitable[tuple[str, Send]]], str]] = {
    "twilio": (accepted_twilio, "DELIVERED"),
    "vonage": (accepted_vonage, "DELIVERED"),
    "vonage-messages": (accepted_vonage_messages, "READ"),
    "infobip": (accepted_infobip, "DELIVERED"),
    "sinch": (accepted_sinch, "DELIVERED"),
    "smpp": (accepted_smpp, "DELIVERED"),
}


@pytest.mark.parametrize("adapter", sorted(ADAPTERS))
async def test_a_retried_callback_is_one_history_entry(stack: Stack, adapter: str) -> None:
    """The same callback sent three times gives one event id and exactly one history entry,
    and the status time is the first attempt's."""
    setup, status = ADAPTERS[adapter]
    mid, send = await setup(stack)
    replies = [await send(stack) for _ in range(3)]
    assert [r.status for r in replies] == [200, 200, 200], [r.raw for r in replies]
    ids = [r.body["eventIds"] for r in replies if r.body is not None]  # SMPP answers ACK text
    assert all(i == ids[0] and len(i) == 1 for i in ids), ids
    doc = (await stack.wait_for_status(mid, status)).body["message"]
    await stack.wait_caught_up()
    history = (await stack.get(f"/api/messagestatus/{mid}/history")).body["events"]
    assert [e["status"] for e in history] == ["PROVIDER_ACCEPTANCE", status]
    assert doc["statusChangedAt"][:19] == history[1]["occurredAt"][:19]  # whole seconds vs ms
    again = (await stack.get(f"/api/messagestatus/{mid}")).body["message"]
    assert again == doc
