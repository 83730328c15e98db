"""The notifier's durable state in Redis (layout: schemas.deliveries): take in, claim, settle.

Everything a delivery needs is in Redis before the change's offset is committed, and an
attempt's outcome is written before the next claim, so a notifier killed at any point loses
nothing: a claimed delivery is hidden for a lease only, then claimed again (docs/push.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from redis.asyncio import Redis
from redis.typing import EncodableT

from runtime import redis_client
from schemas import deliveries as d
from schemas.deliveries import Attempt, Delivery

ENQUEUE = """
local last = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '-1')
if tonumber(ARGV[2]) <= last then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[6])
local old = redis.call('HGET', KEYS[2], ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
redis.call('PEXPIRE', KEYS[2], ARGV[6])
redis.call('ZADD', KEYS[3], ARGV[4], ARGV[5])
if old then return 2 end
return 1
"""
"""KEYS last, pending, due; ARGV endpoint, sequence, delivery, due ms, member, ttl ms.
0: a repeat or an older change (dropped); 1: queued; 2: queued, superseding a pending one."""

CLAIM = """
local m = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[3])
for _, v in ipairs(m) do redis.call('ZADD', KEYS[1], ARGV[2], v) end
return m
"""
"""KEYS due; ARGV now ms, lease-until ms, limit. Returns the claimed members."""

FINISH = """
local cur = redis.call('HGET', KEYS[1], ARGV[1])
local mine = cur == ARGV[2]
if ARGV[3] == 'retry' then
  if mine then
    redis.call('HSET', KEYS[1], ARGV[1], ARGV[4])
    redis.call('ZADD', KEYS[2], ARGV[5], ARGV[6])
  end
else
  if mine then
    redis.call('HDEL', KEYS[1], ARGV[1])
    redis.call('ZREM', KEYS[2], ARGV[6])
    redis.call('HSET', KEYS[3], ARGV[1], ARGV[4])
    redis.call('PEXPIRE', KEYS[3], ARGV[8])
  end
end
redis.call('LPUSH', KEYS[4], ARGV[7])
redis.call('LTRIM', KEYS[4], 0, tonumber(ARGV[9]) - 1)
redis.call('PEXPIRE', KEYS[4], ARGV[8])
if mine then return 1 end
return 0
"""
"""KEYS pending, due, latest, attempts; ARGV endpoint, claimed delivery, 'retry'|'end',
updated delivery, due ms, member, attempt, ttl ms, attempts kept. A delivery superseded
while in flight is left to its successor (0); the attempt is recorded either way."""


@dataclass(frozen=True, slots=True)
class Claimed:
    """A delivery taken from the schedule: its raw stored form (to compare on settle)."""

    raw: bytes
    delivery: Delivery


class State:
    """Typed access to the notifier's keys of one namespace (async redis-py, bytes replies).

    On a Redis Cluster every key of the namespace is in one slot (``d.key_namespace``), and
    scripts in a pipeline are sent as ``EVAL`` (redis-py refuses ``EVALSHA`` in a cluster
    pipeline).
    """

    def __init__(self, redis: Redis, namespace: str, ttl_ms: int) -> None:
        self.redis = redis
        self.cluster = redis_client.is_cluster(redis)
        self.ns = d.key_namespace(namespace, self.cluster)
        self.ttl_ms = ttl_ms
        self._enqueue = redis.register_script(ENQUEUE)
        self._claim = redis.register_script(CLAIM)
        self._finish = redis.register_script(FINISH)

    async def remember_webhook(self, message_id: str, webhook_json: bytes) -> None:
        """Keep the webhook an acceptance named, for the message's later changes."""
        await self.redis.set(d.hook_key(self.ns, message_id), webhook_json, px=self.ttl_ms)

    async def webhooks(self, message_ids: Sequence[str]) -> list[bytes | None]:
        """The remembered webhooks of several messages (None where none)."""
        if not message_ids:
            return []
        keys = [d.hook_key(self.ns, m) for m in message_ids]
        found = await self.redis.mget(keys)
        return [v if v is None or isinstance(v, bytes) else v.encode() for v in found]

    async def enqueue(self, items: Sequence[tuple[Delivery, int]]) -> list[int]:
        """Take in (delivery, due ms) pairs in one pipeline; see :data:`ENQUEUE`'s results."""
        if not items:
            return []
        async with self.redis.pipeline(transaction=False) as pipe:
            for delivery, due in items:
                keys = [
                    d.last_key(self.ns, delivery.message_id),
                    d.pending_key(self.ns, delivery.message_id),
                    d.due_key(self.ns),
                ]
                args: list[EncodableT] = [
                    delivery.endpoint,
                    delivery.sequence,
                    delivery.to_json(),
                    due,
                    d.member(delivery.message_id, delivery.endpoint),
                    self.ttl_ms,
                ]
                if self.cluster:
                    pipe.eval(ENQUEUE, len(keys), *keys, *args)
                else:
                    await self._enqueue(keys=keys, args=args, client=pipe)
            return [int(r) for r in await pipe.execute()]

    async def disabled(self) -> set[str]:
        """Endpoints that answered 410 Gone."""
        return {k.decode() for k in await self.redis.hkeys(d.disabled_key(self.ns))}  # type: ignore[union-attr]

    async def claim(self, now_ms: int, lease_ms: int, limit: int) -> list[Claimed]:
        """Claim up to ``limit`` due deliveries, hidden from other claims for ``lease_ms``."""
        members = await self._claim(
            keys=[d.due_key(self.ns)], args=[now_ms, now_ms + lease_ms, limit]
        )
        if not members:
            return []
        pairs = [d.split_member(m.decode()) for m in members]
        async with self.redis.pipeline(transaction=False) as pipe:
            for message_id, endpoint in pairs:
                pipe.hget(d.pending_key(self.ns, message_id), endpoint)
            raws = await pipe.execute()
        out, stale = [], []
        for member, raw in zip(members, raws, strict=True):
            if raw is None:
                stale.append(member)  # delivered meanwhile by another claim
            else:
                out.append(Claimed(raw, Delivery.model_validate_json(raw)))
        if stale:
            await self.redis.zrem(d.due_key(self.ns), *stale)
        return out

    async def finish(
        self, claimed: Claimed, attempt: Attempt, *, retry_at_ms: int | None, reason: str
    ) -> bool:
        """Record an attempt; reschedule (``retry_at_ms``) or end the delivery (``reason``:
        delivered, dead, gone). Returns False when a newer change superseded it meanwhile."""
        c = claimed.delivery
        bump = c.attempts + (0 if attempt.outcome == "superseded" else 1)
        if retry_at_ms is not None:
            updated = c.model_copy(update={"attempts": bump})
        else:
            updated = c.model_copy(update={"attempts": bump, "reason": reason})
        result = await self._finish(
            keys=[
                d.pending_key(self.ns, c.message_id),
                d.due_key(self.ns),
                d.latest_key(self.ns, c.message_id),
                d.attempts_key(self.ns, c.message_id),
            ],
            args=[
                c.endpoint,
                claimed.raw,
                "retry" if retry_at_ms is not None else "end",
                updated.to_json(),
                retry_at_ms or 0,
                d.member(c.message_id, c.endpoint),
                attempt.to_json(),
                self.ttl_ms,
                d.MAX_ATTEMPTS_KEPT,
            ],
        )
        return bool(result)

    async def postpone(self, claimed: Claimed, due_ms: int) -> None:
        """Put a claimed delivery back without an attempt (circuit open, rate, capacity)."""
        c = claimed.delivery
        await self.redis.zadd(
            d.due_key(self.ns), {d.member(c.message_id, c.endpoint): due_ms}, xx=True
        )

    async def dead_letter(self, delivery: Delivery, reason: str) -> None:
        """Keep a delivery that will not be attempted again, with the reason."""
        letter = delivery.model_copy(update={"reason": reason}).to_json()
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.lpush(d.dead_key(self.ns), letter)
            pipe.ltrim(d.dead_key(self.ns), 0, d.MAX_DEAD_KEPT - 1)
            await pipe.execute()

    async def disable(self, endpoint: str, reason: str) -> None:
        """Stop delivering to an endpoint (it answered 410 Gone)."""
        await self.redis.hset(d.disabled_key(self.ns), endpoint, reason)
