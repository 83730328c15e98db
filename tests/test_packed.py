"""The format-2 stored value (schemas.packed): round trips, documents, both list read paths."""

from __future__ import annotations

import os
import time
import uuid

import msgspec
import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from projector import fold, generations
from projector.store import ProjectionStore
from query_api.reader import Reader
from runtime import redis_client
from schemas import packed
from schemas.documents import render_message
from schemas.status import Channel, Status
from schemas.stored import Acceptance, HistoryEntry, MessageState
from tests.factories import record

REDIS_URL = os.environ.get("MSGSTATUS_REDIS_URL", "redis://127.0.0.1:6379/0")
T0 = 1_770_188_075_000
DAY = 86_400_000

text = st.text(st.characters(codec="utf-8"), max_size=12)
opt = st.none() | text


@st.composite
def states(draw: st.DrawFn) -> MessageState:
    """Fold states as the fold builds them: normalised acceptance, sorted distinct entries."""
    channel = draw(st.sampled_from(list(Channel)))
    ref = draw(st.none() | st.tuples(opt, opt, st.none() | text.filter(bool)))
    acc = draw(
        st.none()
        | st.builds(
            Acceptance,
            occurred_ms=st.integers(0, 2**45),
            channel=st.just(channel),
            phone=st.from_regex(r"\+[1-9][0-9]{1,14}", fullmatch=True),
            reference=st.just(ref if ref and any(p is not None for p in ref) else None),
            segments=st.just(None) if channel is Channel.RCS else st.integers(1, 255),
            provider_name=text.filter(bool),
            provider_id=st.none() | text.filter(bool),
        )
    )
    entries = draw(
        st.lists(
            st.builds(
                HistoryEntry,
                status=st.sampled_from(list(Status)),
                occurred_ms=st.integers(0, 2**45),
                provider_status=opt,
                provider_code=opt,
                provider_message=opt,
                event_key=st.text("abcXYZ-_0123456789", min_size=12, max_size=12),
            ),
            max_size=5,
            unique_by=lambda e: e.event_key,
        )
    )
    return MessageState(acc, tuple(sorted(entries, key=HistoryEntry.sort_key)),
                        draw(st.integers(0, 2**45)))  # fmt: skip


@given(states())
def test_decode_of_encode_is_the_state(state: MessageState) -> None:
    """decode(encode(state)) == state, whatever the texts contain."""
    view = fold.view("m", state)
    parts = packed.document_parts(view) if view is not None else b""
    assert packed.decode(packed.encode(state, parts, T0)) == state


@given(states())
def test_the_template_renders_the_read_api_document(state: MessageState) -> None:
    """The document rendered from the parts is byte for byte the read API's document."""
    mid = str(uuid.uuid4())
    view = fold.view(mid, state)
    if view is None:
        return
    raw = packed.encode(state, packed.document_parts(view), T0 + 1)
    assert packed.document(mid, raw, T0) == render_message(view)
    assert packed.document(mid, raw, T0 + 1) is None  # expired


@given(st.lists(states(), max_size=4))
def test_a_page_renders_as_its_documents_joined(found: list[MessageState]) -> None:
    """render_page of the list script's reply (``id US parts US ...``) is the documents of
    the accepted messages joined by commas, whatever the texts contain."""
    ids = [str(uuid.uuid4()) for _ in found]
    views = [(mid, fold.view(mid, s)) for mid, s in zip(ids, found, strict=True)]
    accepted = [(mid, v) for mid, v in views if v is not None]
    flat = packed.US.join(
        mid.encode() + packed.US + packed.document_parts(v) for mid, v in accepted
    )
    assert packed.render_page(flat) == b",".join(render_message(v) for _, v in accepted)


async def test_both_list_read_paths_give_the_same_pages() -> None:
    """The single-node script and the per-slot (cluster) path agree page by page."""
    if redis_client.is_cluster_url(REDIS_URL):
        pytest.skip("the single-node script reads other slots than its key's: not on a cluster")
    redis = redis_client.async_client(REDIS_URL)
    gen = f"lp{uuid.uuid4().hex[:8]}"
    try:
        layout = await generations.layout(redis, gen, 7)
        assert layout is not None
        store = ProjectionStore(redis_client.sync_client(REDIS_URL), layout, 90 * DAY)
        now = int(time.time() * 1000)
        phone = "+4930123456"
        events = [
            record(
                Status.PROVIDER_ACCEPTANCE,
                now - 1000 * (i // 2),
                phone=phone,
                message_id=str(uuid.uuid4()),
                received_ms=now,
            )
            for i in range(23)
        ]
        await store.apply(events, now_ms=now)
        index = layout.phone_index_key(phone)
        await redis.zadd(index, {str(uuid.uuid4()): now - 500})  # its message is gone
        pages: dict[bool, list[bytes]] = {}
        for per_slot in (False, True):
            reader = Reader(redis, 90 * DAY, pinned=gen, per_slot_lists=per_slot)
            await reader.start()
            cursor, got = None, []
            while True:
                joined, cursor = await reader.page(index, now + 1, 5, cursor)
                got.append(joined)
                if cursor is None:
                    break
            pages[per_slot] = got
        assert pages[False] == pages[True]
        assert sum(p.count(b'"message"') for p in pages[False]) == 23
    finally:
        await generations.delete(redis, gen)
        await redis.aclose()


@given(states())
def test_values_with_the_state_as_json_are_still_read(state: MessageState) -> None:
    """The first builds of format 2 wrote the state as JSON; such values decode to the same
    state as the MessagePack ones written now."""
    view = fold.view("m", state)
    parts = packed.document_parts(view) if view is not None else b""
    raw = packed.encode(state, parts, T0)
    expiry, parts, new_state = packed.split(raw)
    old = (
        b"%d" % expiry
        + packed.RS
        + parts
        + packed.RS
        + orjson.dumps(msgspec.msgpack.decode(new_state))
    )
    assert old != raw
    assert packed.decode(old) == packed.decode(raw) == state
