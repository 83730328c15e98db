"""The traffic of the fault tests and the comparison of final states through the read API.

Every message has three events (acceptance, SENT, DELIVERED), shares its phone number and
reference key with other messages (so the lists have many entries), and gets a distinct send
time (so list order is fixed). A request answered 503 or not at all is sent again, as a
provider does, until it gets a 2xx.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import aiohttp
import orjson

from tests.factories import acceptance, receipt, sign

STATUSES = ["PROVIDER_ACCEPTANCE", "SENT", "DELIVERED"]
T0 = datetime(2026, 3, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Message:
    """One message of the workload and the events a provider sends for it, in order."""

    id: str
    phone: str
    reference: str
    events: tuple[dict[str, Any], ...]


def workload(count: int, phones: int = 5, references: int = 3) -> list[Message]:
    """``count`` messages over ``phones`` numbers and ``references`` reference keys."""
    tag = uuid.uuid4().hex[:8]  # reference keys of this workload only
    digits = str(uuid.uuid4().int)[:5]
    numbers = [f"+1666{digits}{i:03d}" for i in range(phones)]
    out = []
    for i in range(count):
        mid = str(uuid.uuid4())
        sent = T0 + timedelta(seconds=i)
        ref = f"ref-{tag}-{i % references}"

        def at(s: float, base: datetime = sent) -> str:
            return (base + timedelta(seconds=s)).strftime("%Y-%m-%dT%H:%M:%SZ")

        events = (
            acceptance(
                mid,
                at=at(0),
                phone=numbers[i % phones],
                reference={"service": "FAULTS", "action": "TEST", "key": ref},
            ),
            receipt("SENT", at(1), message_id=mid),
            receipt("DELIVERED", at(2), message_id=mid),
        )
        out.append(Message(mid, numbers[i % phones], ref, events))
    return out


@dataclass(frozen=True)
class Attempt:
    """One POST: when it started and ended (monotonic seconds) and its status (0: no answer)."""

    start: float
    end: float
    status: int


@dataclass
class Sender:
    """Posts signed webhooks to ingest and keeps every attempt."""

    http: aiohttp.ClientSession
    ingest_url: str
    secret: str
    retry_pause_s: float = 0.5
    attempts: list[Attempt] = field(default_factory=list)
    acknowledged: int = 0

    async def post_until_acknowledged(
        self, events: dict[str, Any] | list[dict[str, Any]], deadline_s: float = 90
    ) -> None:
        """POST one event (or a list) until ingest answers 2xx; fail after ``deadline_s`` s."""
        body = orjson.dumps(events if isinstance(events, list) else [events])
        webhook_id = f"msg_{uuid.uuid4().hex}"  # a provider's retry keeps its webhook id
        give_up = time.monotonic() + deadline_s
        while time.monotonic() < give_up:
            start = time.monotonic()
            try:
                async with self.http.post(
                    self.ingest_url + "/webhooks/events",
                    data=body,
                    headers=sign(self.secret, body, webhook_id),
                    timeout=aiohttp.ClientTimeout(total=30),
                ) as resp:
                    status = resp.status
                    answer = await resp.read()
            except (aiohttp.ClientError, TimeoutError):
                status, answer = 0, b""
            self.attempts.append(Attempt(start, time.monotonic(), status))
            if 200 <= status < 300:
                self.acknowledged += 1
                return
            assert status in (0, 503), f"ingest answered {status}: {answer!r}"
            await asyncio.sleep(self.retry_pause_s)
        raise AssertionError(f"no 2xx for an event within {deadline_s} s")

    async def send_message(self, message: Message) -> None:
        """Its events one after another, as one provider sends them."""
        for event in message.events:
            await self.post_until_acknowledged(event)

    async def steady(self, messages: list[Message], per_second: float) -> None:
        """Start one message every ``1 / per_second`` s, whatever the answers take."""
        t0 = time.monotonic()
        tasks = []
        for i, message in enumerate(messages):
            await asyncio.sleep(max(0.0, t0 + i / per_second - time.monotonic()))
            tasks.append(asyncio.create_task(self.send_message(message)))
        await asyncio.gather(*tasks)

    async def backlog(self, messages: list[Message], per_request: int = 300) -> None:
        """Post every event of ``messages`` in bulk requests (a backlog for the projector)."""
        body = [e for m in messages for e in m.events]
        for i in range(0, len(body), per_request):
            await self.post_until_acknowledged(body[i : i + per_request])

    def failed(self) -> list[Attempt]:
        """Attempts that got no 2xx."""
        return [a for a in self.attempts if not 200 <= a.status < 300]


@dataclass
class Snapshot:
    """The read API's view of a workload: documents, histories and the two kinds of list."""

    documents: dict[str, Any]
    histories: dict[str, list[Any]]
    phone_lists: dict[str, list[str]]
    reference_lists: dict[str, list[str]]


@dataclass
class Reader:
    """GETs from one read API with its key."""

    http: aiohttp.ClientSession
    api_url: str
    api_key: str

    async def get(self, path: str) -> tuple[int, Any, dict[str, str]]:
        """Status, parsed JSON body and headers of ``GET path``."""
        async with self.http.get(self.api_url + path, headers={"X-Api-Key": self.api_key}) as r:
            raw = await r.read()
            return r.status, (orjson.loads(raw) if raw else None), dict(r.headers)

    async def listing(self, kind: str, value: str) -> list[str]:
        """Every message id of a phone or reference list, following ``Link: rel=next``."""
        path = f"/api/messagestatus/{kind}/{quote(value, safe='')}?count=100"
        ids: list[str] = []
        while path:
            status, body, headers = await self.get(path)
            assert status == 200, (status, body)
            ids += [m["message"]["id"] for m in body["messages"]]
            link = headers.get("Link", "")
            path = link[1 : link.index(">")] if link else ""
        return ids

    async def delivered(self, messages: list[Message]) -> list[str]:
        """Ids of the messages not (yet) readable as DELIVERED."""
        missing = []
        for m in messages:
            status, body, _ = await self.get(f"/api/messagestatus/{m.id}")
            if status != 200 or body["message"]["status"] != "DELIVERED":
                missing.append(m.id)
        return missing

    async def converge(self, messages: list[Message], timeout: float = 120.0) -> Snapshot:
        """Wait until every message reads DELIVERED, then take the snapshot."""
        deadline = time.monotonic() + timeout
        missing = await self.delivered(messages)
        while missing and time.monotonic() < deadline:
            await asyncio.sleep(0.5)
            missing = await self.delivered([m for m in messages if m.id in set(missing)])
        assert not missing, f"{len(missing)} messages never read DELIVERED, e.g. {missing[:3]}"
        return await self.snapshot(messages)

    async def snapshot(self, messages: list[Message]) -> Snapshot:
        """Documents, histories and lists of the workload, as the API answers them."""
        documents: dict[str, Any] = {}
        histories: dict[str, list[Any]] = {}
        for m in messages:
            status, documents[m.id], _ = await self.get(f"/api/messagestatus/{m.id}")
            assert status == 200
            status, body, _ = await self.get(f"/api/messagestatus/{m.id}/history")
            assert status == 200
            histories[m.id] = body["events"]
        phones = sorted({m.phone for m in messages})
        refs = sorted({m.reference for m in messages})
        return Snapshot(
            documents,
            histories,
            {p: await self.listing("phonenumber", p) for p in phones},
            {r: await self.listing("reference", r) for r in refs},
        )


def assert_exactly_once(snapshot: Snapshot, messages: list[Message]) -> None:
    """Every event of every message once in its history; every message once in its lists."""
    for m in messages:
        assert [e["status"] for e in snapshot.histories[m.id]] == STATUSES, m.id
    for lists, attr in ((snapshot.phone_lists, "phone"), (snapshot.reference_lists, "reference")):
        for value, ids in lists.items():
            assert len(ids) == len(set(ids)), f"duplicate index entries in {value}"
            expected = [m.id for m in reversed(messages) if getattr(m, attr) == value]
            assert ids == expected, f"list {value}: {len(ids)} ids, {len(expected)} expected"


def assert_same_state(got: Snapshot, clean: Snapshot) -> None:
    """The state after the faults equals a clean single pass: documents, histories, lists."""
    assert got.documents == clean.documents
    assert got.histories == clean.histories
    assert got.phone_lists == clean.phone_lists
    assert got.reference_lists == clean.reference_lists
