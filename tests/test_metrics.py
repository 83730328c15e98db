"""The metrics docs/operations.md lists exist and move when their event happens.

The stack runs in this process, so its metrics are read from the process's registry. The
outage metrics move in test_kafka_outage (publish failures) and test_redis_outage (retries,
failing), replay progress in test_replay.
"""

from __future__ import annotations

import pathlib
import re
import uuid
from urllib.parse import urlencode

from prometheus_client import REGISTRY

from ingest.app import create_app as create_ingest
from ingest.settings import IngestSettings
from projector import replay
from tests.factories import acceptance, receipt
from tests.support.stack import Stack

OPERATIONS = pathlib.Path(__file__).resolve().parents[1] / "docs" / "operations.md"


def value(name: str, **labels: str) -> float:
    """A sample's current value (0 before its first event)."""
    return REGISTRY.get_sample_value(name, labels) or 0.0


def total(name: str) -> float:
    """A counter's sum over all its label values."""
    return sum(s.value for m in REGISTRY.collect() for s in m.samples if s.name == name)


def test_every_documented_metric_exists() -> None:
    """Each msgstatus_* metric named in docs/operations.md is registered by the services."""
    assert replay.PROGRESS  # registered when `msgstatus replay` imports it
    documented = set(re.findall(r"`(msgstatus_[a-z_]+)", OPERATIONS.read_text()))
    assert len(documented) >= 13
    families = {m.name for m in REGISTRY.collect()}
    missing = {
        n for n in documented if n not in families and n.removesuffix("_total") not in families
    }
    assert missing == set()


async def test_webhook_read_projection_and_dead_letter_metrics_move(stack: Stack) -> None:
    """An accepted webhook, a refused one, a read and a dead letter each move their metrics."""
    before = {
        "accepted": value("msgstatus_webhooks_total", source="events", outcome="accepted"),
        "invalid": value("msgstatus_webhooks_total", source="events", outcome="invalid"),
        "received": value("msgstatus_events_received_total", source="events"),
        "published": value("msgstatus_events_published_total", source="canonical"),
        "applied": total("msgstatus_events_applied_total"),
        "refused": value("msgstatus_events_dead_lettered_total", reason="refused"),
    }
    mid = str(uuid.uuid4())
    events = [acceptance(mid), receipt("READ", "2026-02-04T06:56:00Z", message_id=mid)]
    assert (await stack.post(events)).status == 202
    assert (await stack.post({"status": "NOPE"})).status == 400
    await stack.wait_for_status(mid, "PROVIDER_ACCEPTANCE")
    route = "/api/messagestatus/{messageid}"
    reads = value("msgstatus_http_requests_total", service="api", route=route, status="200")
    timed = value("msgstatus_http_request_duration_seconds_count", service="api", route=route)
    assert (await stack.get(f"/api/messagestatus/{mid}")).status == 200

    async def dead_lettered() -> bool:
        return value("msgstatus_events_dead_lettered_total", reason="refused") > before["refused"]

    await stack.wait_for(dead_lettered, 15, "the READ on SMS to be dead-lettered")
    assert (
        value("msgstatus_webhooks_total", source="events", outcome="accepted")
        == before["accepted"] + 1
    )
    assert (
        value("msgstatus_webhooks_total", source="events", outcome="invalid")
        == before["invalid"] + 1
    )
    assert value("msgstatus_events_received_total", source="events") >= before["received"] + 2
    published = value("msgstatus_events_published_total", source="canonical")
    assert published >= before["published"] + 2
    assert total("msgstatus_events_applied_total") >= before["applied"] + 2
    assert value("msgstatus_http_requests_total", service="api", route=route, status="200") == (
        reads + 1
    )
    assert (
        value("msgstatus_http_request_duration_seconds_count", service="api", route=route)
        == timed + 1
    )
    lag = [s for m in REGISTRY.collect() if m.name == "msgstatus_projector_lag" for s in m.samples]
    assert lag, "no partition lag recorded"
    assert all(s.value >= 0 for s in lag)


async def test_a_skipped_provider_entry_is_counted(stack: Stack) -> None:
    """A receipt with a state that has no canonical event is acknowledged and counted."""
    base = await stack._serve(
        create_ingest(IngestSettings(**stack.common(), allow_unsigned_providers=["smpp"]))
    )

    async def ready() -> bool:
        async with stack.http.get(base + "/readyz") as resp:
            return resp.status == 200

    await stack.wait_for(ready, 60, "the second ingest to reach Kafka")
    before = value("msgstatus_provider_entries_skipped_total", adapter="smpp", reason="unknown")
    text = "id:0000000001 sub:001 dlvrd:000 submit date:2501151230 done date:2501151233 stat:BOGUS err:000 text:x"
    async with stack.http.get(base + "/webhooks/smpp?" + urlencode({"receipt": text})) as resp:
        assert resp.status == 200
    assert (
        value("msgstatus_provider_entries_skipped_total", adapter="smpp", reason="unknown")
        == before + 1
    )
