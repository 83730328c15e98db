"""The read API's Lua script: one list page in one round trip.

It reads message keys that it is not given as KEYS (their names come from the index), so it
needs a single-node Redis (or a proxy), like the MGET it replaces; see docs/operations.md.
"""

from __future__ import annotations

from schemas import packed

LIST_PAGE = """#!lua flags=no-writes
-- KEYS[1] index ZSET (member: message id, score: send time in epoch ms).
-- ARGV[1] upper bound: '(<ms>' (strictly before) or '<ms>' (a cursor's score, inclusive);
-- ARGV[2] page size; ARGV[3] cursor id and ARGV[4] cursor score ('' without a cursor):
-- entries at the cursor's score whose id is not below the cursor's were on earlier pages;
-- ARGV[5] message key prefix ('msgstatus:<generation>:msg:{'), ARGV[6] its suffix after the
-- id, ARGV[7] the separator between document and state (both from schemas: keys, stored).
-- Returns {documents joined by ',', more (0/1), last score, last id, expired id...}.
local count = tonumber(ARGV[2])
local cursor_score = ARGV[4] ~= '' and tonumber(ARGV[4]) or nil
local docs, expired = {}, {}
local last_score, last_id, more = '', '', 0
local offset, chunk = 0, count + 1
while true do
  local rows = redis.call('ZREVRANGEBYSCORE', KEYS[1], ARGV[1], '-inf',
                          'WITHSCORES', 'LIMIT', offset, chunk)
  offset = offset + #rows / 2
  for i = 1, #rows, 2 do
    local id, score = rows[i], rows[i + 1]
    if not (cursor_score and tonumber(score) == cursor_score and id >= ARGV[3]) then
      local raw = redis.call('GET', ARGV[5] .. id .. ARGV[6])
      if not raw then
        expired[#expired + 1] = id
      else
        local cut = string.find(raw, ARGV[7], 1, true)
        if cut and cut > 1 then
          if #docs == count then
            more = 1
            break
          end
          docs[#docs + 1] = string.sub(raw, 1, cut - 1)
          last_score, last_id = score, id
        end
      end
    end
  end
  if more == 1 or #rows / 2 < chunk then break end
end
local out = {table.concat(docs, ','), more, last_score, last_id}
for _, id in ipairs(expired) do out[#out + 1] = id end
return out
"""


def _lua_bytes(raw: bytes) -> str:
    """A Lua string literal of ``raw`` (decimal escapes: any byte, no quoting trouble)."""
    return "'" + "".join(f"\\{b}" for b in raw) + "'"


LIST_PAGE_V2 = (
    """#!lua flags=no-writes
-- Format 2 (schemas.layout, schemas.packed). KEYS[1] index ZSET. ARGV[1..4] as LIST_PAGE;
-- ARGV[5] message bucket key prefix ('msgstatus:<g>:<t>:m:{<t>:'), ARGV[6] buckets,
-- ARGV[7] now (epoch ms). It reads message buckets it is not given as KEYS, so it needs a
-- single Redis node; on a cluster the reader takes the per-slot path (query_api.pages).
-- The documents are rendered by the caller (schemas.packed.render_page): the script only
-- cuts each value's document parts out (two plain finds), which costs Redis a fraction of
-- a render in Lua (docs/design.md §5).
-- Returns {more (0/1), last score, last id, number of expired ids, expired id...,
-- 'id US parts US id US parts ...'}.
local RS, US = """
    + f"{_lua_bytes(packed.RS)}, {_lua_bytes(packed.US)}"
    + """
local buckets, now = tonumber(ARGV[6]), tonumber(ARGV[7])
local function bucket(id)
  local x = bit.bxor(tonumber(string.sub(id, 1, 8), 16), tonumber(string.sub(id, 29, 36), 16))
  if x < 0 then x = x + 4294967296 end
  return x % buckets
end
-- The document parts of a stored value: '' while unaccepted, nil when absent or expired.
local function parts(raw)
  if not raw then return nil end
  local cut = string.find(raw, RS, 1, true)
  if tonumber(string.sub(raw, 1, cut - 1)) <= now then return nil end
  local stop = string.find(raw, RS, cut + 1, true)
  return string.sub(raw, cut + 1, stop - 1)
end
local count = tonumber(ARGV[2])
local cursor_score = ARGV[4] ~= '' and tonumber(ARGV[4]) or nil
local docs, expired = {}, {}
local last_score, last_id, more = '', '', 0
local offset, chunk = 0, count + 1
while true do
  local rows = redis.call('ZREVRANGEBYSCORE', KEYS[1], ARGV[1], '-inf',
                          'WITHSCORES', 'LIMIT', offset, chunk)
  offset = offset + #rows / 2
  for i = 1, #rows, 2 do
    local id, score = rows[i], rows[i + 1]
    if not (cursor_score and tonumber(score) == cursor_score and id >= ARGV[3]) then
      local doc = parts(redis.call('HGET', ARGV[5] .. bucket(id) .. '}', id))
      if not doc then
        expired[#expired + 1] = id
      elseif doc ~= '' then
        if #docs == 4 * count then
          more = 1
          break
        end
        docs[#docs + 1] = id
        docs[#docs + 1] = US
        docs[#docs + 1] = doc
        docs[#docs + 1] = US
        last_score, last_id = score, id
      end
    end
  end
  if more == 1 or #rows / 2 < chunk then break end
end
local out = {more, last_score, last_id, #expired}
for _, id in ipairs(expired) do out[#out + 1] = id end
docs[#docs] = nil
out[#out + 1] = table.concat(docs)
return out
"""
)
