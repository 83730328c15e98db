"""The stored value of a message (format 1: document, separator, fold state) round-trips."""

from __future__ import annotations

import base64
import hashlib
import uuid

from hypothesis import given
from hypothesis import strategies as st

from projector import fold
from schemas import stored
from schemas.documents import render_message
from schemas.events import EventRecord
from schemas.status import Channel, Status
from schemas.stored import MessageState, decode_stored, join_stored
from tests.factories import record

NOW = 1_800_000_000_000
RECEIPTS = [s for s in Status if s is not Status.PROVIDER_ACCEPTANCE]
# Printable text, as the event model admits (no control characters), unicode included.
TEXT = st.text(st.characters(blacklist_categories=("Cc", "Cs")), min_size=1, max_size=20)
WORDS = st.one_of(st.none(), TEXT.map(lambda t: t[:12]))


@st.composite
def events(draw: st.DrawFn) -> list[EventRecord]:
    """An acceptance (or none) and receipts with varied statuses, times and provider words."""
    out: list[EventRecord] = []
    if draw(st.booleans()):
        channel = draw(st.sampled_from([Channel.SMS, Channel.RCS]))
        out.append(
            record(
                Status.PROVIDER_ACCEPTANCE,
                NOW - draw(st.integers(0, 10**9)),
                channel=channel,
                phone=draw(st.sampled_from(["+1234567890", "+393331234567", "+4930111111"])),
                reference_key=draw(st.one_of(st.none(), TEXT)),
                event_id=str(draw(st.uuids())),
            )
        )
    for _ in range(draw(st.integers(0, 6))):
        event = record(
            draw(st.sampled_from(RECEIPTS)),
            NOW - draw(st.integers(0, 10**9)),
            provider_status=draw(WORDS),
            code=draw(WORDS),
            event_id=str(draw(st.uuids())),
            received_ms=NOW - draw(st.integers(0, 10**6)),
        )
        out.append(event)
    return out


def stored_value(message_id: str, state: MessageState) -> bytes:
    """The value the projector writes: the rendered document (empty until accepted) + state."""
    view = fold.view(message_id, state)
    return join_stored(render_message(view) if view is not None else b"", state)


@given(events())
def test_decode_of_encode_is_the_state(batch: list[EventRecord]) -> None:
    """decode(encode(state)) == state for every state the fold can reach."""
    message_id = str(uuid.uuid4())
    state = fold.apply_all(fold.empty_state(NOW), batch).state
    assert decode_stored(stored_value(message_id, state)) == state


@given(st.uuids(), st.sampled_from(["plain", "upper", "hex", "braced", "urn"]))
def test_event_key_of_any_uuid_spelling_is_the_key_of_its_bytes(u: uuid.UUID, form: str) -> None:
    """The fast path for UUID text gives exactly what uuid.UUID's bytes give, in every spelling
    uuid.UUID accepts (the keys are stored: a different one would duplicate history entries)."""
    text = {
        "plain": str(u),
        "upper": str(u).upper(),
        "hex": u.hex,
        "braced": "{" + str(u) + "}",
        "urn": u.urn,
    }[form]
    expected = base64.urlsafe_b64encode(hashlib.sha256(u.bytes).digest()[:9]).decode()
    assert stored.event_key(text) == expected
