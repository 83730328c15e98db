"""Read-API rules of docs/design.md §3 end to end: parameters, ordering, paging, OpenAPI."""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import quote

import pytest

from schemas.layout import Layout
from schemas.phone import normalize_e164
from schemas.timefmt import parse_iso_ms
from tests.factories import acceptance, receipt
from tests.support.stack import Stack


def new_phone() -> str:
    """A fresh E.164 number, so each test owns its phone index."""
    return "+4930" + str(uuid.uuid4().int)[:9]


async def post_accepted(stack: Stack, events: list[dict[str, Any]]) -> None:
    """Post acceptances and wait until each is readable by id and listed under its phone."""
    assert (await stack.post(events)).status == 202
    for event in events:
        await stack.wait_for_status(event["messageId"], "PROVIDER_ACCEPTANCE")
        index = Layout(stack.generation).phone_index_key(normalize_e164(event["phoneNumber"]))

        async def listed(index: str = index, mid: str = event["messageId"]) -> bool:
            return await stack.redis.zscore(index, mid) is not None

        # The index entry is written right after the document, in the same batch.
        await stack.wait_for(listed, 10, "the index entry")


@pytest.mark.parametrize(
    "bad", ["not-a-uuid", "011d9d6e-b5b9-4cb9-be13-2bc336a923c", "%00", "%0Aforged"]
)
async def test_message_id_that_is_not_a_uuid_is_400_naming_it(stack: Stack, bad: str) -> None:
    """Not a UUID: a 400 problem document naming messageid (never a 500)."""
    reply = await stack.get(f"/api/messagestatus/{bad}")
    assert reply.status == 400
    assert reply.body["errors"][0]["field"] == "messageid"


async def test_phone_number_with_plus_encoded_as_2b_works(stack: Stack) -> None:
    """%2B is a '+': both spellings find the same messages."""
    phone = new_phone()
    mid = str(uuid.uuid4())
    await post_accepted(stack, [acceptance(mid, phone=phone)])
    plain = await stack.get(f"/api/messagestatus/phonenumber/{phone}")
    encoded = await stack.get(f"/api/messagestatus/phonenumber/%2B{phone[1:]}")
    assert plain.status == encoded.status == 200
    assert plain.body == encoded.body
    assert [m["message"]["id"] for m in plain.body["messages"]] == [mid]


async def test_phone_number_given_with_00_prefix_in_the_event_is_indexed_as_e164(
    stack: Stack,
) -> None:
    """An event's 00-prefixed number is normalised, so the E.164 lookup finds it."""
    phone = new_phone()
    mid = str(uuid.uuid4())
    await post_accepted(stack, [acceptance(mid, phone="00" + phone[1:])])
    reply = await stack.get(f"/api/messagestatus/phonenumber/{quote(phone)}")
    assert [m["message"]["id"] for m in reply.body["messages"]] == [mid]


@pytest.mark.parametrize("bad", ["1234567890", "+0123", "+1234567890123456", "abc", "%2B12%0034"])
async def test_phone_number_that_is_not_e164_is_400(stack: Stack, bad: str) -> None:
    """Phone numbers are checked for E.164 syntax; anything else is a 400 naming phonenumber."""
    reply = await stack.get(f"/api/messagestatus/phonenumber/{bad}")
    assert reply.status == 400
    assert reply.body["errors"][0]["field"] == "phonenumber"


async def test_unknown_phone_number_is_an_empty_list(stack: Stack) -> None:
    """No messages: 200 with {"messages": []}."""
    reply = await stack.get(f"/api/messagestatus/phonenumber/{new_phone()}")
    assert reply.status == 200
    assert reply.body == {"messages": []}


@pytest.mark.parametrize(
    "key",
    [
        "a/b/c",
        "with space",
        "plus+sign",
        "zażółć-ключ-鍵",
        "colon:star*{brace}",
        "%41-literal-percent",
    ],
)
async def test_reference_keys_with_slashes_spaces_plus_and_unicode_work(
    stack: Stack, key: str
) -> None:
    """Any UTF-8 key up to 255 characters, percent-encoded in the path, finds its messages."""
    key = f"{key}-{uuid.uuid4().hex[:6]}"
    mid = str(uuid.uuid4())
    await post_accepted(
        stack, [acceptance(mid, reference={"service": "S", "action": "A", "key": key})]
    )
    reply = await stack.get(f"/api/messagestatus/reference/{quote(key, safe='')}")
    assert reply.status == 200
    assert [m["message"]["id"] for m in reply.body["messages"]] == [mid]
    assert reply.body["messages"][0]["message"]["reference"]["key"] == key


async def test_reference_key_that_is_another_keys_prefix_or_pattern_finds_nothing(
    stack: Stack,
) -> None:
    """A key with '*' or a shared prefix never addresses another key's index."""
    base = f"tenant-{uuid.uuid4().hex[:6]}"
    await post_accepted(stack, [acceptance(str(uuid.uuid4()), reference={"key": base + ":1"})])
    for probe in (base + "*", base, base + ":*", base + "%3A1x"):
        reply = await stack.get(f"/api/messagestatus/reference/{quote(probe, safe='%')}")
        assert reply.body == {"messages": []}, probe


@pytest.mark.parametrize(
    ("raw", "field"), [("0", "count"), ("-3", "count"), ("2.5", "count"), ("x", "count")]
)
async def test_bad_count_is_400_naming_count(stack: Stack, raw: str, field: str) -> None:
    """count below 1 or not an integer: 400."""
    reply = await stack.get(f"/api/messagestatus/reference/EXT_KEY?count={raw}")
    assert reply.status == 400
    assert reply.body["errors"][0]["field"] == field


async def test_count_above_100_is_capped_and_lists_are_newest_first(stack: Stack) -> None:
    """150 asks for 100: the 100 newest, newest first by send time."""
    phone = new_phone()
    events = [
        acceptance(str(uuid.uuid4()), phone=phone, at=f"2026-03-01T10:{i // 60:02d}:{i % 60:02d}Z")
        for i in range(105)
    ]
    await post_accepted(stack, events)
    reply = await stack.get(f"/api/messagestatus/phonenumber/{quote(phone)}?count=150")
    got = [m["message"]["providerAcceptanceAt"] for m in reply.body["messages"]]
    assert len(got) == 100
    assert got == sorted(got, reverse=True)
    assert got[0] == "2026-03-01T10:01:44Z"


async def test_send_date_is_strictly_before_and_accepts_offsets_and_fractions(stack: Stack) -> None:
    """sendDate keeps messages sent strictly before it; Z, offsets, fractions, no offset = UTC."""
    phone = new_phone()
    a, b = str(uuid.uuid4()), str(uuid.uuid4())
    await post_accepted(
        stack,
        [
            acceptance(a, phone=phone, at="2026-03-01T10:00:00.250Z"),
            acceptance(b, phone=phone, at="2026-03-01T10:00:01Z"),
        ],
    )
    base = f"/api/messagestatus/phonenumber/{quote(phone)}?sendDate="

    async def ids(send_date: str) -> list[str]:
        reply = await stack.get(base + quote(send_date))
        assert reply.status == 200, reply.body
        return [m["message"]["id"] for m in reply.body["messages"]]

    assert await ids("2026-03-01T10:00:01Z") == [a]  # strictly before: b is excluded
    assert await ids("2026-03-01T10:00:01.001Z") == [b, a]
    assert await ids("2026-03-01T11:00:00.250+01:00") == []  # = 10:00:00.250Z, a excluded
    assert await ids("2026-03-01T11:00:00.251+01:00") == [a]
    assert await ids("2026-03-01T10:00:00.251") == [a]  # no offset means UTC


@pytest.mark.parametrize("raw", ["2026-03-01T11:00:00 01:00", "tomorrow", "2026-02-30T00:00:00Z"])
async def test_unparseable_send_date_is_400_naming_send_date(stack: Stack, raw: str) -> None:
    """A '+' that arrived as a space (an unencoded offset) is a 400, not another time."""
    reply = await stack.get(f"/api/messagestatus/reference/EXT_KEY?sendDate={quote(raw)}")
    assert reply.status == 400
    assert reply.body["errors"][0]["field"] == "sendDate"


async def test_unencoded_plus_offset_in_query_is_400(stack: Stack) -> None:
    """sendDate=...+01:00 sent unencoded decodes '+' as a space: 400, never silently UTC."""
    reply = await stack.get(
        "/api/messagestatus/reference/EXT_KEY?sendDate=2026-03-01T11:00:00+01:00"
    )
    assert reply.status == 400


async def test_link_next_pages_through_messages_sharing_a_send_time_without_skipping(
    stack: Stack,
) -> None:
    """Equal send times order by id, descending; following rel=next visits every message once."""
    key = f"page-{uuid.uuid4().hex[:8]}"
    ids = [str(uuid.uuid4()) for _ in range(7)]
    await post_accepted(
        stack, [acceptance(i, reference={"key": key}, at="2026-03-02T08:00:00Z") for i in ids]
    )
    seen: list[str] = []
    path: str | None = f"/api/messagestatus/reference/{key}?count=3"
    pages = 0
    while path is not None:
        reply = await stack.get(path)
        assert reply.status == 200
        seen += [m["message"]["id"] for m in reply.body["messages"]]
        link = reply.headers.get("Link")
        path = link[1 : link.index(">")] if link else None
        pages += 1
    assert seen == sorted(ids, reverse=True)
    assert pages == 3


async def test_a_cursor_never_widens_the_list_past_send_date(stack: Stack) -> None:
    """With both sendDate and a cursor, the tighter bound holds: a cursor later than sendDate
    lists only messages sent strictly before sendDate."""
    key = f"bound-{uuid.uuid4().hex[:8]}"
    times = ["2026-03-02T08:00:00Z", "2026-03-02T09:00:00Z", "2026-03-02T10:00:00Z"]
    ids = [str(uuid.uuid4()) for _ in times]
    await post_accepted(
        stack,
        [acceptance(i, reference={"key": key}, at=t) for i, t in zip(ids, times, strict=True)],
    )
    late = f"{parse_iso_ms(times[2]) + 1}_{uuid.uuid4()}"  # after the newest message
    reply = await stack.get(
        f"/api/messagestatus/reference/{key}?sendDate=2026-03-02T09:00:00Z&cursor={late}"
    )
    assert reply.status == 200
    assert [m["message"]["id"] for m in reply.body["messages"]] == [ids[0]]
    earlier = f"{parse_iso_ms(times[1])}_{'0' * 8}-0000-0000-0000-{'0' * 12}"
    reply = await stack.get(
        f"/api/messagestatus/reference/{key}?sendDate=2026-03-02T11:00:00Z&cursor={earlier}"
    )
    assert [m["message"]["id"] for m in reply.body["messages"]] == [ids[0]]


async def test_history_lists_distinct_events_oldest_first_with_provider_words(stack: Stack) -> None:
    """GET /{id}/history: every distinct event, oldest first, with provider status and code."""
    mid = str(uuid.uuid4())
    await stack.post(
        [
            acceptance(mid),
            receipt(
                "DELIVERED",
                "2026-02-04T06:54:55.500Z",
                message_id=mid,
                provider_status="DELIVRD",
                code="000",
            ),
            receipt(
                "SENT",
                "2026-02-04T06:54:40Z",
                message_id=mid,
                provider_status="ENROUTE",
                code="000",
            ),
        ]
    )
    history = (await stack.wait_for_history(mid, 3)).body
    assert history["messageId"] == mid
    assert [(e["status"], e["occurredAt"], e["provider"]["status"]) for e in history["events"]] == [
        ("PROVIDER_ACCEPTANCE", "2026-02-04T06:54:35.000Z", "accepted"),
        ("SENT", "2026-02-04T06:54:40.000Z", "ENROUTE"),
        ("DELIVERED", "2026-02-04T06:54:55.500Z", "DELIVRD"),
    ]


async def test_openapi_document_describes_count_without_a_maximum(stack: Stack) -> None:
    """/openapi.json is OpenAPI 3.1; count has minimum 1, no maximum, the cap in words."""
    async with stack.http.get(stack.api_url + "/openapi.json") as resp:
        doc = await resp.json()
    assert doc["openapi"].startswith("3.1")
    params = doc["paths"]["/api/messagestatus/phonenumber/{phonenumber}"]["get"]["parameters"]
    count = next(p for p in params if p["name"] == "count")
    assert count["schema"]["minimum"] == 1
    assert "maximum" not in count["schema"]
    assert "100" in count["description"]


async def test_unknown_route_and_wrong_method_are_problem_documents(stack: Stack) -> None:
    """aiohttp's own 404/405 come back as problem documents too."""
    reply = await stack.get("/api/nothing-here")
    assert reply.status == 404
    assert reply.headers["Content-Type"].startswith("application/problem+json")
    async with stack.http.post(stack.api_url + "/api/messagestatus/x") as resp:
        assert resp.status == 405
        assert resp.headers["Content-Type"].startswith("application/problem+json")
        assert set(resp.headers["Allow"].split(",")) == {"GET", "HEAD"}
        body = await resp.json(content_type=None)
        assert (body["status"], body["instance"]) == (405, "/api/messagestatus/x")
        assert (body["type"], body["title"]) == ("about:blank", "Method Not Allowed")


async def test_expired_messages_leave_the_lists_and_their_index_entries_go(stack: Stack) -> None:
    """An index entry whose message expired (retention) is skipped, then removed."""
    phone = new_phone()
    kept = str(uuid.uuid4())
    await post_accepted(stack, [acceptance(kept, phone=phone, at="2026-03-01T10:00:00Z")])
    index = Layout(stack.generation).phone_index_key(phone)
    gone = str(uuid.uuid4())
    await stack.redis.zadd(index, {gone: 1_772_359_300_000})  # newer, but its message is gone
    reply = await stack.get(f"/api/messagestatus/phonenumber/{quote(phone)}")
    assert [m["message"]["id"] for m in reply.body["messages"]] == [kept]
    assert await stack.redis.zscore(index, gone) is None


async def test_ids_in_braces_repeated_parameters_and_sub_millisecond_bounds(stack: Stack) -> None:
    """A braced id is a 400 naming messageid; a repeated count is a 400; a bound at
    .5009 s still includes a message sent at .500 s (strictly before)."""
    braced = await stack.get("/api/messagestatus/{011d9d6e-b5b9-4cb9-be13-2bc336a923ce}")
    assert braced.status == 400
    assert braced.body["errors"][0]["field"] == "messageid"
    twice = await stack.get("/api/messagestatus/reference/EXT_KEY?count=1&count=2")
    assert twice.status == 400
    assert twice.body["errors"][0]["field"] == "count"
    phone = new_phone()
    mid = str(uuid.uuid4())
    await post_accepted(stack, [acceptance(mid, phone=phone, at="2026-03-01T10:00:00.500Z")])
    base = f"/api/messagestatus/phonenumber/{quote(phone)}?sendDate="
    assert len((await stack.get(base + "2026-03-01T10:00:00.5009Z")).body["messages"]) == 1
    assert (await stack.get(base + "2026-03-01T10:00:00.500Z")).body["messages"] == []
