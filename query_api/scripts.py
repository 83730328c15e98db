"""The read API's Lua script: one list page in one round trip.

It reads message keys that it is not given as KEYS (their names come from the index), so it
needs a single-node Redis (or a proxy), like the MGET it replaces; see docs/operations.md.
"""

from __future__ import annotations

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
