"""Admission control: a bound on the events in flight to the event log per ingest process.

Past the rate the producer can have acknowledged, more concurrent webhooks only make every
request slower until all of them miss ``produce_timeout_s`` and are answered 503 anyway, so
the sender retries everything (a burst that feeds itself). Shedding the excess at once with
``503`` and ``Retry-After`` keeps the accepted work well inside the deadline: goodput stays
at capacity and senders retry only what was refused (docs/design.md §4, §7).

Two checks share one counter: :meth:`Admission.full` before a body is read (a request
arriving while the bound is reached costs no parsing), and :meth:`Admission.enter` once the
body's events are counted, just before they are published.
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


class Admission:
    """Counts the events being published and refuses new ones past ``limit``.

    ``limit`` is in events. One request larger than ``limit`` is still admitted when nothing
    else is in flight, so a batch the body limits allow is never refused for ever.
    Single-threaded (one event loop): check-and-add has no await between, so it is atomic.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.in_flight = 0

    @property
    def full(self) -> bool:
        """True when no further event may be admitted now."""
        return self.in_flight >= self.limit

    def enter(self, events: int) -> bool:
        """Reserve ``events``; False (nothing reserved) when that would pass the bound."""
        if self.in_flight and self.in_flight + events > self.limit:
            return False
        self.in_flight += events
        IN_FLIGHT.set(self.in_flight)
        return True

    def leave(self, events: int) -> None:
        """Release what :meth:`enter` reserved, whatever the publish's outcome."""
        self.in_flight -= events
        IN_FLIGHT.set(self.in_flight)
