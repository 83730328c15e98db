"""Lua scripts of the format-2 projection writes; each touches the keys of one slot only.

Loaded by SHA through projector.commands (a server that lost them gets them again).
Provider-map entries are ``<message id: 16 bytes><send ms: 6 bytes, big-endian><phone
length: 1 byte><phone>`` concatenated (projector.parking).
"""

from __future__ import annotations

CAS = """
-- KEYS[1] a message bucket. ARGV: (field, value we read or '' when absent, new value)...
-- Writes each field only if nobody changed it since we read it; returns 1/0 per field.
local out = {}
for i = 1, #ARGV, 3 do
  local cur = redis.call('HGET', KEYS[1], ARGV[i])
  if (cur == false and ARGV[i + 1] == '') or cur == ARGV[i + 1] then
    redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 2])
    out[#out + 1] = 1
  else
    out[#out + 1] = 0
  end
end
return out
"""

PARK = """
-- KEYS[1] provider bucket, KEYS[2] receipts kept with the provider id. ARGV[1] field,
-- ARGV[2] event id, ARGV[3] record JSON, ARGV[4] expiry (epoch ms). Keeps the receipt
-- (routed again by each later registration) and returns the provider id's entries, or nil
-- while none is registered (the receipt waits, parked).
redis.call('HSET', KEYS[2], ARGV[2], ARGV[3])
if redis.call('PEXPIRETIME', KEYS[2]) < tonumber(ARGV[4]) then
  redis.call('PEXPIREAT', KEYS[2], ARGV[4])
end
return redis.call('HGET', KEYS[1], ARGV[1])
"""

_SCAN = """
local function has(entries, id)
  local i = 1
  while i <= #entries do
    if string.sub(entries, i, i + 15) == id then return i end
    i = i + 23 + string.byte(entries, i + 22)
  end
  return nil
end
"""

REGISTER = (
    _SCAN
    + """
-- KEYS[1] provider bucket, KEYS[2] parked receipts. ARGV[1] field, ARGV[2] entry.
-- Adds the entry, or replaces its message's entry (the folded acceptance, hence its send
-- time and recipient, may change as acceptances arrive); returns {entries, event id 1,
-- record 1, ...}: every receipt kept with the provider id, to be routed again.
local entries = redis.call('HGET', KEYS[1], ARGV[1]) or ''
local at = has(entries, string.sub(ARGV[2], 1, 16))
local updated = entries .. ARGV[2]
if at then
  local after = at + 23 + string.byte(entries, at + 22)
  updated = string.sub(entries, 1, at - 1) .. ARGV[2] .. string.sub(entries, after)
end
if updated ~= entries then
  entries = updated
  redis.call('HSET', KEYS[1], ARGV[1], entries)
end
local out = redis.call('HGETALL', KEYS[2])
table.insert(out, 1, entries)
return out
"""
)

FORGET = (
    _SCAN
    + """
-- KEYS[1] provider bucket. ARGV[1] field, ARGV[2] message id (16 bytes): drops its entry.
local entries = redis.call('HGET', KEYS[1], ARGV[1])
if not entries then return 0 end
local at = has(entries, ARGV[2])
if not at then return 0 end
local after = at + 23 + string.byte(entries, at + 22)
local rest = string.sub(entries, 1, at - 1) .. string.sub(entries, after)
if rest == '' then
  redis.call('HDEL', KEYS[1], ARGV[1])
else
  redis.call('HSET', KEYS[1], ARGV[1], rest)
end
return 1
"""
)

SWEEP = """
-- KEYS[1] a message bucket. ARGV[1] now (epoch ms). Deletes the fields whose value's expiry
-- (the digits before the first 0x1E byte) has passed; returns {field, value, ...} of them.
local now = tonumber(ARGV[1])
local all = redis.call('HGETALL', KEYS[1])
local out = {}
for i = 1, #all, 2 do
  local v = all[i + 1]
  local cut = string.find(v, '\\30', 1, true)
  if cut and tonumber(string.sub(v, 1, cut - 1)) <= now then
    redis.call('HDEL', KEYS[1], all[i])
    out[#out + 1] = all[i]
    out[#out + 1] = v
  end
end
return out
"""

CLAIM = """
-- KEYS[1] the generation's meta HASH. ARGV[1] buckets to claim. Advances the sweep counter
-- (field 'sweep') and returns its new value; nil once the generation is gone (deleted after
-- a replay switched away from it), so a late sweep never re-creates any of its keys.
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
return redis.call('HINCRBY', KEYS[1], 'sweep', ARGV[1])
"""

POSITIONS = """
-- KEYS[1] the generation's positions HASH ('<topic>:<partition>' -> next offset).
-- ARGV: field, offset, ... Keeps the greater offset; returns the fields that had none yet.
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

ALL = {
    "cas": CAS,
    "park": PARK,
    "register": REGISTER,
    "forget": FORGET,
    "sweep": SWEEP,
    "claim": CLAIM,
    "positions": POSITIONS,
}
