"""Admission control: a bound on the events in flight to the event log per ingest process.

Past the rate the producer can have acknowledged, more concurrent webhooks only make every
request slower until all of them miss ``produce_timeout_s`` and are answered 503 anyway, so
the sender retries everything (a burst that feeds itself). Shedding the excess at once with
``503`` and ``Retry-After`` keeps the accepted work well inside the deadline: goodput stays
at capacity and senders retry only what was refused (docs/design.md §4, §7).

A webhook reserves its events before its body is read, estimated from ``Content-Length``
(:func:`estimate_events`), so a shed request costs no reading, no signature check and no
parsing: work spent on a request that is then refused would lower the goodput exactly when
it matters. Once the body is parsed the reservation is set to the real count
(:meth:`Admission.resize`), and it is released when the answer is ready.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge

SHED = Counter(
    "msgstatus_requests_shed_total",
    "Webhook requests answered 503 at once because the events in flight were at their bound",
    ["source"],
)
IN_FLIGHT = Gauge(
    "msgstatus_events_in_flight", "Events handed to the event log and not yet acknowledged"
)


MIN_EVENT_BYTES = 256
"""A lower bound on an event's size in a body (a canonical event with a phone number and a
reference is ~330 bytes): estimates err on the side of reserving too many."""


def estimate_events(content_length: int | None, max_batch_events: int) -> int:
    """Events a body of ``content_length`` bytes may hold: at least 1, at most the batch cap.

    ``None`` (a chunked upload) counts as one event until the body is parsed.
    """
    if not content_length:
        return 1
    return max(1, min(max_batch_events, content_length // MIN_EVENT_BYTES))


class Admission:
    """Counts the events being published and refuses new ones past ``limit``.

    ``limit`` is in events. One request larger than ``limit`` is still admitted when nothing
    else is in flight, so a batch the body limits allow is never refused for ever.
    Single-threaded (one event loop): check-and-add has no await between, so it is atomic.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.in_flight = 0

    def enter(self, events: int) -> bool:
        """Reserve ``events``; False (nothing reserved) when that would pass the bound."""
        if self.in_flight and self.in_flight + events > self.limit:
            return False
        self.in_flight += events
        IN_FLIGHT.set(self.in_flight)
        return True

    def resize(self, reserved: int, events: int) -> None:
        """Turn a reservation of ``reserved`` events into one of ``events`` (the real count);
        a body that holds more events than estimated is not refused once it is parsed."""
        self.in_flight += events - reserved
        IN_FLIGHT.set(self.in_flight)

    def leave(self, events: int) -> None:
        """Release what :meth:`enter` reserved, whatever the publish's outcome."""
        self.in_flight -= events
        IN_FLIGHT.set(self.in_flight)
