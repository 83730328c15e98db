"""The status fold (docs/design.md §2) as a pure function: examples and hypothesis properties."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from projector import fold
from schemas.documents import render_message
from schemas.events import EventRecord
from schemas.status import Channel, Status
from tests.factories import record

T0 = 1_770_188_075_000


def current(events: list[EventRecord]) -> Status:
    view = fold.view("m", fold.fold("m", events, 2**47).state)
    assert view is not None
    return view.status


def test_late_sent_never_undoes_delivered() -> None:
    """A SENT that arrives after DELIVERED leaves the status DELIVERED but stays in history."""
    events = [
        record(Status.PROVIDER_ACCEPTANCE, T0),
        record(Status.DELIVERED, T0 + 20_000),
        record(Status.SENT, T0 + 5_000),
    ]
    state = fold.fold("m", events, 2**47).state
    assert current(events) is Status.DELIVERED
    assert [e.status for e in state.entries] == [
        Status.PROVIDER_ACCEPTANCE,
        Status.SENT,
        Status.DELIVERED,
    ]


def test_delivered_outweighs_a_later_undelivered() -> None:
    """A handset receipt outweighs a failure report, even one stamped later."""
    events = [
        record(Status.PROVIDER_ACCEPTANCE, T0),
        record(Status.DELIVERED, T0 + 1_000),
        record(Status.UNDELIVERED, T0 + 9_000),
    ]
    assert current(events) is Status.DELIVERED


def test_equal_rank_later_occurred_at_wins() -> None:
    """REJECTED then UNDELIVERED (same rank): the later occurredAt holds the status."""
    events = [
        record(Status.PROVIDER_ACCEPTANCE, T0),
        record(Status.UNDELIVERED, T0 + 1_000),
        record(Status.REJECTED, T0 + 2_000),
    ]
    assert current(events) is Status.REJECTED


def test_exact_tie_is_decided_by_the_documented_order_not_arrival() -> None:
    """REJECTED and UNDELIVERED at the same instant: UNDELIVERED wins in both arrival orders."""
    a = record(Status.REJECTED, T0 + 1_000)
    b = record(Status.UNDELIVERED, T0 + 1_000)
    acc = record(Status.PROVIDER_ACCEPTANCE, T0)
    assert current([acc, a, b]) is Status.UNDELIVERED
    assert current([acc, b, a]) is Status.UNDELIVERED


def test_status_changed_at_is_the_holders_time_and_acceptance_is_send_time() -> None:
    """statusChangedAt comes from the holding event, providerAcceptanceAt from the acceptance."""
    events = [record(Status.PROVIDER_ACCEPTANCE, T0), record(Status.DELIVERED, T0 + 20_000)]
    view = fold.view("m", fold.fold("m", events, 2**47).state)
    assert view is not None
    assert (view.accepted_ms, view.changed_ms) == (T0, T0 + 20_000)


def test_unaccepted_message_has_no_view() -> None:
    """A receipt that beats its acceptance is kept, but the message is unknown until then."""
    state = fold.fold("m", [record(Status.DELIVERED, T0)], 2**47).state
    assert fold.view("m", state) is None
    state = fold.apply(state, record(Status.PROVIDER_ACCEPTANCE, T0 - 5)).state
    view = fold.view("m", state)
    assert view is not None
    assert view.status is Status.DELIVERED


def test_read_on_sms_is_refused_whichever_arrives_first() -> None:
    """READ is RCS only: on an SMS message it is refused before or after the acceptance."""
    read = record(Status.READ, T0 + 5)
    acc = record(Status.PROVIDER_ACCEPTANCE, T0, channel=Channel.SMS)
    for events in ([read, acc], [acc, read]):
        result = fold.fold("m", events, 2**47)
        assert [e.status for e in result.refused] == [Status.READ]
        assert all(e.status is not Status.READ for e in result.state.visible_entries())


def test_read_on_rcs_implies_delivered() -> None:
    """READ outranks DELIVERED on an RCS message."""
    events = [
        record(Status.PROVIDER_ACCEPTANCE, T0, channel=Channel.RCS),
        record(Status.READ, T0 + 3),
        record(Status.DELIVERED, T0 + 9),
    ]
    assert current(events) is Status.READ


def test_earliest_acceptance_defines_the_message() -> None:
    """Of two different acceptances the earliest gives providerAcceptanceAt and the phone."""
    early = record(Status.PROVIDER_ACCEPTANCE, T0, phone="+111111")
    late = record(Status.PROVIDER_ACCEPTANCE, T0 + 50, phone="+222222")
    for events in ([early, late], [late, early]):
        state = fold.fold("m", events, 2**47).state
        assert state.acceptance is not None
        assert (state.acceptance.phone, state.acceptance.occurred_ms) == ("+111111", T0)


statuses = st.sampled_from(list(Status))
event_strategy = st.builds(
    lambda status, dt, ps, code, channel, event_id: record(
        status,
        T0 + dt,
        channel=channel,
        provider_status=ps,
        code=code,
        event_id=str(event_id),
    ),
    statuses,
    st.integers(min_value=0, max_value=5),  # few instants: equal-instant ties are common
    st.sampled_from(["a", "b", None]),
    st.sampled_from(["0", "1", None]),
    st.sampled_from([Channel.SMS, Channel.RCS]),
    st.uuids(),  # independent of the content: two events at one instant stay two events
)


@settings(max_examples=300, deadline=None)
@given(st.lists(event_strategy, min_size=1, max_size=8), st.randoms(use_true_random=False))
def test_any_order_and_any_duplicates_give_the_same_document(
    events: list[EventRecord], rnd: random.Random
) -> None:
    """Property: the state and document are a function of the SET of events."""
    reference = fold.fold("m", events, 2**47).state
    shuffled = events + rnd.sample(events, k=min(len(events), 3))
    rnd.shuffle(shuffled)
    other = fold.fold("m", shuffled, 2**47).state
    assert other == reference
    v1, v2 = fold.view("m", reference), fold.view("m", other)
    assert (render_message(v1) if v1 else None) == (render_message(v2) if v2 else None)


@settings(max_examples=200, deadline=None)
@given(st.lists(event_strategy, min_size=1, max_size=8))
def test_applying_everything_again_changes_nothing(events: list[EventRecord]) -> None:
    """Property: a replay of all events onto the folded state is a no-op (idempotence)."""
    state = fold.fold("m", events, 2**47).state
    again = state
    for event in events:
        again = fold.apply(again, event).state
    assert again == state


@settings(max_examples=200, deadline=None)
@given(
    st.lists(event_strategy, max_size=8),
    st.sampled_from([Channel.SMS, Channel.RCS]),
    statuses.filter(lambda s: s is not Status.PROVIDER_ACCEPTANCE),
    st.integers(0, 5),
)
def test_a_receipt_never_moves_the_status_back(
    events: list[EventRecord], channel: Channel, status: Status, dt: int
) -> None:
    """Property: adding a receipt (any status but an acceptance) never lowers the rank."""
    from schemas.status import RANK  # noqa: PLC0415

    accepted = [record(Status.PROVIDER_ACCEPTANCE, T0 - 1, channel=channel), *events]
    state = fold.fold("m", accepted, 2**47).state
    before = fold.view("m", state)
    after = fold.view("m", fold.apply(state, record(status, T0 + dt)).state)
    assert before is not None
    assert after is not None
    assert RANK[after.status] >= RANK[before.status]


# The precedence rule as the README states it, written out here independently of
# schemas.status: rank, then the later instant, then UNDELIVERED over REJECTED, then the
# provider's words (status, then code) compared as text.
DOCUMENTED_RANK = {
    Status.PROVIDER_ACCEPTANCE: 0,
    Status.SENT: 1,
    Status.REJECTED: 2,
    Status.UNDELIVERED: 2,
    Status.DELIVERED: 3,
    Status.READ: 4,
}


def spec_key(e: EventRecord) -> tuple[int, int, bool, str, str]:
    """The README's order of precedence of one receipt."""
    return (
        DOCUMENTED_RANK[e.status],
        e.occurred_ms,
        e.status is Status.UNDELIVERED,
        e.provider.status or "",
        e.provider.code or "",
    )


def test_every_tie_is_decided_by_the_documented_order_in_both_arrival_orders() -> None:
    """Any two receipts of an RCS message (statuses x two instants x two provider words x two
    codes, equal rank and instant included): the holder is the documented winner, whichever
    arrives first."""
    acc = record(Status.PROVIDER_ACCEPTANCE, T0 - 1, channel=Channel.RCS)
    grid = [
        record(status, T0 + dt, provider_status=word, code=code)
        for status in Status
        if status is not Status.PROVIDER_ACCEPTANCE
        for dt in (0, 1)
        for word in ("a", "b")
        for code in ("0", "1")
    ]
    ties = 0
    for i, x in enumerate(grid):
        for y in grid[i + 1 :]:
            winner = max(x, y, key=spec_key)
            ties += spec_key(x)[:2] == spec_key(y)[:2]
            for events in ([acc, x, y], [acc, y, x]):
                view = fold.view("m", fold.fold("m", events, 2**47).state)
                assert view is not None
                got = (view.status, view.changed_ms, view.provider_status, view.provider_code)
                want = (
                    winner.status,
                    winner.occurred_ms,
                    winner.provider.status,
                    winner.provider.code,
                )
                assert got == want, (x, y)
    assert ties > 50  # equal rank and instant: the tie rules were exercised


def test_provider_words_decide_a_tie_of_status_and_instant() -> None:
    """Same status at the same instant: the provider status compared as text, then the code."""
    acc = record(Status.PROVIDER_ACCEPTANCE, T0)
    expired = record(Status.UNDELIVERED, T0 + 5, provider_status="EXPIRED", code="1")
    undeliv = record(Status.UNDELIVERED, T0 + 5, provider_status="UNDELIV", code="0")
    code_9 = record(Status.UNDELIVERED, T0 + 5, provider_status="UNDELIV", code="9")
    for events in ([acc, expired, undeliv], [acc, undeliv, expired]):
        view = fold.view("m", fold.fold("m", events, 2**47).state)
        assert view is not None
        assert (view.provider_status, view.provider_code) == ("UNDELIV", "0")
    for events in ([acc, code_9, undeliv, expired], [acc, expired, undeliv, code_9]):
        view = fold.view("m", fold.fold("m", events, 2**47).state)
        assert view is not None
        assert (view.provider_status, view.provider_code) == ("UNDELIV", "9")


def test_a_retried_callback_stamped_with_its_receive_time_is_one_entry() -> None:
    """Same event id, later receive-time stamp (Twilio sends no time): kept once, earliest."""
    acc = record(Status.PROVIDER_ACCEPTANCE, T0)
    first = record(Status.DELIVERED, T0 + 1_000, event_id="11111111-1111-4111-8111-111111111111")
    retry = first.model_copy(update={"occurred_ms": T0 + 9_000})
    for events in ([acc, first, retry], [acc, retry, first], [acc, first]):
        state = fold.fold("m", events, 2**47).state
        view = fold.view("m", state)
        assert view is not None
        assert len(state.entries) == 2
        assert view.changed_ms == T0 + 1_000
