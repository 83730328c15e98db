"""Lua scripts of the projection writes; each touches keys of one hash slot only (Cluster safe).

They are loaded once and called by SHA (projector/commands.py); a server that lost its script
cache (restart, SCRIPT FLUSH, failover) answers NOSCRIPT, and the batch is re-run after loading
them again.
"""

from __future__ import annotations

COMPARE_AND_SET = """
-- KEYS[1] message key. ARGV[1] the value we read ('' = absent), ARGV[2] the new value,
-- ARGV[3] expiry (epoch ms). Writes only if nobody changed the key since we read it.
local cur = redis.call('GET', KEYS[1])
if cur == false then
  if ARGV[1] ~= '' then return 0 end
elseif cur ~= ARGV[1] then
  return 0
end
redis.call('SET', KEYS[1], ARGV[2], 'PXAT', ARGV[3])
return 1
"""

INDEX_ADD = """
-- KEYS[1] index ZSET. ARGV[1] member (message id), ARGV[2] score (send time, epoch ms),
-- ARGV[3] expiry of the member's message (epoch ms): the index lives as long as its newest
-- message. Idempotent: the same member and score give the same set however often it runs.
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
if redis.call('PEXPIRETIME', KEYS[1]) < tonumber(ARGV[3]) then
  redis.call('PEXPIREAT', KEYS[1], ARGV[3])
end
return 1
"""

PARK = """
-- KEYS[1] provider map (HASH message id -> candidate), KEYS[2] the provider id's receipts.
-- ARGV[1] event id, ARGV[2] record JSON, ARGV[3] expiry (epoch ms). Keeps the receipt with
-- its provider id and returns the candidates (HGETALL); the projector routes it
-- (projector.provider_routing), so a receipt is never lost between the two steps.
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
if redis.call('PEXPIRETIME', KEYS[2]) < tonumber(ARGV[3]) then
  redis.call('PEXPIREAT', KEYS[2], ARGV[3])
end
return redis.call('HGETALL', KEYS[1])
"""

REGISTER = """
-- KEYS[1] provider map, KEYS[2] the provider id's receipts. ARGV[1] message id, ARGV[2] its
-- candidate value ('<sent ms> <expiry ms> <phone>'), ARGV[3] expiry (epoch ms). Adds the
-- message as a candidate and returns {candidates, receipts} (two HGETALL replies) for the
-- projector to route every receipt again. Idempotent.
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
if redis.call('PEXPIRETIME', KEYS[1]) < tonumber(ARGV[3]) then
  redis.call('PEXPIREAT', KEYS[1], ARGV[3])
end
return {redis.call('HGETALL', KEYS[1]), redis.call('HGETALL', KEYS[2])}
"""

POSITIONS = """
-- KEYS[1] the generation's positions HASH ('<topic>:<partition>' -> next offset).
-- ARGV: field, offset, field, offset, ... Keeps the greater offset: two projectors during a
-- rebalance never move a position back. Returns the fields that had no position yet.
local absent = {}
for i = 1, #ARGV, 2 do
  local cur = redis.call('HGET', KEYS[1], ARGV[i])
  if not cur then absent[#absent + 1] = ARGV[i] end
  if tonumber(ARGV[i + 1]) > tonumber(cur or '-1') then
    redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
  end
end
return absent
"""
