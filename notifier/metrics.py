"""The notifier's Prometheus metrics (docs/push.md, docs/operations.md)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

ATTEMPTS = Counter(
    "msgstatus_push_attempts_total",
    "Delivery attempts by endpoint and outcome",
    ["endpoint", "outcome"],
)
TAKEN_IN = Counter(
    "msgstatus_push_changes_total",
    "Change records taken in: queued, superseding, dropped (a repeat or older), no_endpoint",
    ["result"],
)
DEAD = Counter("msgstatus_push_dead_letters_total", "Deliveries given up", ["reason"])
REFUSED = Counter("msgstatus_push_ssrf_refused_total", "Attempts refused by the SSRF guard")
POSTPONED = Counter(
    "msgstatus_push_postponed_total",
    "Claims put back unattempted (circuit, rate, capacity)",
    ["why"],
)
QUEUE_AGE = Gauge(
    "msgstatus_push_queue_age_seconds",
    "Age of the oldest delivery claimed last, per endpoint",
    ["endpoint"],
)
CIRCUIT_OPEN = Gauge(
    "msgstatus_push_circuit_open", "1 while an endpoint's circuit is open", ["endpoint"]
)
LATENCY = Histogram(
    "msgstatus_push_attempt_seconds",
    "Duration of delivery attempts",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
EMIT_TO_DELIVERED = Histogram(
    "msgstatus_push_delivered_after_seconds",
    "From the projector publishing a change to its successful delivery",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0, 30.0, 300.0, 3600.0, 86400.0),
)
