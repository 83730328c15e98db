"""The notifier's state in Redis: key layout and records, shared by the notifier and the read
API's ``/deliveries`` endpoints (docs/push.md).

Keys live under ``msgstatus:<namespace>:`` (namespace ``notify`` by default), beside and
independent of the projection's generations: a replay into a new generation keeps them, which
is what lets the notifier drop changes it already handled. Per message (hash tag = its id)::

    hook:{id}      STRING  the acceptance's webhook (schemas.webhook_config JSON)
    last:{id}      HASH    endpoint -> highest sequence taken in (the dedupe of repeats)
    pending:{id}   HASH    endpoint -> :class:`Delivery` JSON waiting to be delivered
    latest:{id}    HASH    endpoint -> the last delivery that ended (delivered, dead, gone)
    attempts:{id}  LIST    :class:`Attempt` JSON, newest first, at most ``MAX_ATTEMPTS_KEPT``

and per notifier deployment: ``due`` (ZSET ``<id> <endpoint>`` -> when due, epoch ms),
``disabled`` (HASH endpoint -> why, after a 410), ``dead`` (LIST of dead letters, newest
first). Every per-message key expires with the projection's retention.

The scripts touch a message's keys together with ``due``, so on a Redis Cluster
(``redis+cluster://``) the whole namespace is one hash tag: :func:`key_namespace` makes the keys
``msgstatus:{notify}:...``, all in one slot of one master (and its replica). The notifier's
load is small beside the projection's, which spreads over every master.
"""

from __future__ import annotations

from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field
from redis.asyncio import Redis

from schemas.keys import PREFIX

DEFAULT_NAMESPACE = "notify"
MAX_ATTEMPTS_KEPT = 50
MAX_DEAD_KEPT = 10_000

Outcome = Literal["delivered", "retry", "dead", "gone", "refused", "superseded"]


def key_namespace(namespace: str, cluster: bool) -> str:
    """The namespace as it appears in keys: ``{namespace}`` (one Redis Cluster hash tag, so
    one slot for every key) on a cluster, as is on a single node (the layout of earlier
    releases). Settings allow neither ``{`` nor ``}`` in a namespace."""
    return f"{{{namespace}}}" if cluster else namespace


def _key(namespace: str, entity: str, message_id: str | None = None) -> str:
    if message_id is None:
        return f"{PREFIX}:{namespace}:{entity}"
    return f"{PREFIX}:{namespace}:{entity}:{{{message_id}}}"


def hook_key(ns: str, message_id: str) -> str:
    """STRING: the webhook the message's acceptance named."""
    return _key(ns, "hook", message_id)


def last_key(ns: str, message_id: str) -> str:
    """HASH endpoint -> the highest sequence taken in for that endpoint."""
    return _key(ns, "last", message_id)


def pending_key(ns: str, message_id: str) -> str:
    """HASH endpoint -> the :class:`Delivery` waiting (one per endpoint: newer supersedes)."""
    return _key(ns, "pending", message_id)


def latest_key(ns: str, message_id: str) -> str:
    """HASH endpoint -> the last :class:`Delivery` that ended, for ``/deliveries/resend``."""
    return _key(ns, "latest", message_id)


def attempts_key(ns: str, message_id: str) -> str:
    """LIST of :class:`Attempt` JSON, newest first."""
    return _key(ns, "attempts", message_id)


def due_key(ns: str) -> str:
    """ZSET ``<message id> <endpoint>`` -> epoch ms when the delivery is due (the schedule)."""
    return _key(ns, "due")


def disabled_key(ns: str) -> str:
    """HASH endpoint -> JSON ``{"reason", "at"}``: endpoints that answered 410 Gone."""
    return _key(ns, "disabled")


def dead_key(ns: str) -> str:
    """LIST of dead letters (:class:`Delivery` JSON with ``reason``), newest first."""
    return _key(ns, "dead")


def member(message_id: str, endpoint: str) -> str:
    """The schedule member of a (message, endpoint) pair."""
    return f"{message_id} {endpoint}"


def split_member(value: str) -> tuple[str, str]:
    """(message id, endpoint) of a schedule member."""
    message_id, _, endpoint = value.partition(" ")
    return message_id, endpoint


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)

    def to_json(self) -> bytes:
        """Compact camelCase JSON."""
        return orjson.dumps(self.model_dump(by_alias=True, exclude_none=True, mode="json"))


class Delivery(_Model):
    """One status change on its way to one endpoint.

    ``body`` is the exact JSON sent (the seed webhook body); ``webhook_id`` the Standard
    Webhooks ``webhook-id``, the same on every attempt; ``headers`` the sender's
    authentication headers; ``attempts`` made so far; times epoch ms (UTC).
    """

    webhook_id: str = Field(alias="webhookId")
    message_id: str = Field(alias="messageId")
    endpoint: str
    url: str
    headers: dict[str, str] = Field(default_factory=dict)
    sequence: int
    status: str
    body: str
    attempts: int = 0
    created_ms: int = Field(alias="createdAt")
    reason: str | None = None


class Attempt(_Model):
    """One attempt (or a decision without one): when, where, what came back, how long.

    ``host`` is the endpoint's host name only; response bodies are never kept.
    """

    at_ms: int = Field(alias="at")
    endpoint: str
    host: str
    sequence: int
    webhook_id: str = Field(alias="webhookId")
    http_status: int | None = Field(default=None, alias="httpStatus")
    latency_ms: float | None = Field(default=None, alias="latencyMs")
    error: str | None = None
    outcome: Outcome


async def read_deliveries(redis: Redis, ns: str, message_id: str) -> dict[str, Any]:
    """The ``/deliveries`` document of a message (docs/push.md)::

        {"messageId", "endpoints": [{"endpoint", "state": "pending"|"delivered"|"dead"|"gone",
         "sequence", "attempts", "status", "nextAttemptAt"}], "attempts": [Attempt...]}

    ``nextAttemptAt`` (epoch ms) is when a pending delivery is due on the schedule (while an
    attempt is in flight: when its lease ends); null for the others. Raises redis-py errors
    when Redis is unreachable.
    """
    async with redis.pipeline(transaction=False) as pipe:
        pipe.hgetall(pending_key(ns, message_id))
        pipe.hgetall(latest_key(ns, message_id))
        pipe.lrange(attempts_key(ns, message_id), 0, MAX_ATTEMPTS_KEPT - 1)
        pending, latest, attempts = await pipe.execute()
    endpoints: dict[str, dict[str, Any]] = {}
    for raw in latest.values():
        d = Delivery.model_validate_json(raw)
        endpoints[d.endpoint] = _summary(d, d.reason or "delivered")
    waiting = [Delivery.model_validate_json(raw) for raw in pending.values()]
    due: list[float | None] = []
    if waiting:
        async with redis.pipeline(transaction=False) as pipe:
            for d in waiting:
                pipe.zscore(due_key(ns), member(message_id, d.endpoint))
            due = await pipe.execute()
    for d, when in zip(waiting, due, strict=True):
        endpoints[d.endpoint] = _summary(d, "pending")
        endpoints[d.endpoint]["nextAttemptAt"] = None if when is None else int(when)
    return {
        "messageId": message_id,
        "endpoints": [endpoints[k] for k in sorted(endpoints)],
        "attempts": [orjson.loads(a) for a in attempts],
    }


def _summary(d: Delivery, state: str) -> dict[str, Any]:
    return {
        "endpoint": d.endpoint,
        "state": state,
        "sequence": d.sequence,
        "status": d.status,
        "attempts": d.attempts,
        "nextAttemptAt": None,
    }


PUT_IF_ABSENT = """
if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 1 then
  redis.call('PEXPIRE', KEYS[1], ARGV[5])
  redis.call('ZADD', KEYS[2], ARGV[3], ARGV[4])
  return 1
end
return 0
"""
"""KEYS pending, due; ARGV endpoint, delivery JSON, due ms, member, ttl ms."""


async def resend(redis: Redis, ns: str, message_id: str, now_ms: int, ttl_ms: int) -> int:
    """Queue the last ended delivery of each endpoint again, with a new ``webhook-id``;
    endpoints with a delivery still pending are left alone. Returns how many were queued."""
    latest = await redis.hgetall(latest_key(ns, message_id))
    queued = 0
    for raw in latest.values():
        d = Delivery.model_validate_json(raw)
        again = d.model_copy(
            update={
                "webhook_id": f"{d.webhook_id.split('.r', 1)[0]}.r{now_ms}",
                "attempts": 0,
                "created_ms": now_ms,
                "reason": None,
            }
        )
        body = orjson.loads(again.body)
        body["id"] = again.webhook_id
        again = again.model_copy(update={"body": orjson.dumps(body).decode()})
        queued += int(
            await redis.eval(
                PUT_IF_ABSENT,
                2,
                pending_key(ns, message_id),
                due_key(ns),
                d.endpoint,
                again.to_json(),
                now_ms,
                member(message_id, d.endpoint),
                ttl_ms,
            )
        )
    return queued
