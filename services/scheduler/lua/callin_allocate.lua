-- callin_allocate.lua: lend a call-in request a (number, access code) pair of its group.
-- The group's numbers are tried from a random start; on each, the first of the drawn codes
-- that no live request holds is taken (or the number itself, in a group without codes). The
-- request record, the number's held codes and its pair index change in one step, so two
-- requests never share a pair. A retry with the same request id answers the record it made.
-- Every key is the tenant's (hash tag {t:<tenant>}); see services/scheduler/store_keys.h.
--
-- KEYS
--   REQUEST     the request's record (HASH)
--   ...         for each number of the group, in the order of its numbers in ARGV, two keys:
--               its held codes (ZSET code -> expiry ms; "-" for the number itself) and its
--               pair index (HASH code -> request id)
-- ARGV
--   TTL_MS      how long the request lives
--   CODE_SPACE  10^digits, or 0 for a group without access codes
--   START       the number to try first (0-based)
--   NCODES      how many drawn codes follow
--   TRIES       how many of them one number tries
--   NNUMBERS    how many numbers follow the codes
--   TENANT      the tenant id (kept in the record)
--   ID          the request id
--   GROUP       the call-in group's name
--   FROM        the caller's number it is for ("" = any)
--   CBSVC       the callback service it names ("" = none)
--   USER_DATA   its user data (JSON)
--   ...         NCODES codes, then NNUMBERS numbers
-- RETURNS
--   ALLOCATED = 1   {ALLOCATED, HGETALL of the record}: new, or the one this id made before
--   FULL = 0        {FULL, earliest expiry among the numbers looked at (0 = unknown), now}

local rec = redis.call('HGETALL', REQUEST)
if #rec > 0 then return {ALLOCATED, rec} end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(TTL_MS)
local exp = now + ttl
local space, start = tonumber(CODE_SPACE), tonumber(START)
local k, tries, n = tonumber(NCODES), tonumber(TRIES), tonumber(NNUMBERS)

-- Forget the codes of a number whose requests expired, in its held set and its pair index.
local function expire(held, pairs)
  while true do
    local gone = redis.call('ZRANGEBYSCORE', held, '-inf', now, 'LIMIT', 0, 1000)
    if #gone == 0 then return end
    redis.call('ZREM', held, unpack(gone))
    redis.call('HDEL', pairs, unpack(gone))
  end
end

local soonest = 0
for i = 0, n - 1 do
  local at = (start + i) % n
  local num = ARGV[ARGV_TAIL + k + 1 + at]
  local held, pairs = KEYS[KEYS_TAIL + 2 * at + 1], KEYS[KEYS_TAIL + 2 * at + 2]
  expire(held, pairs)
  local count = redis.call('ZCARD', held)
  local code = nil
  if space == 0 then
    if count == 0 then code = '-' end
  elseif count < space and not redis.call('ZSCORE', held, '-') then
    for j = 0, tries - 1 do
      local c = ARGV[ARGV_TAIL + 1 + ((i + j) % k)]
      if not redis.call('ZSCORE', held, c) then code = c break end
    end
  end
  if code then
    redis.call('ZADD', held, exp, code)
    local last = redis.call('ZRANGE', held, -1, -1, 'WITHSCORES')
    redis.call('PEXPIREAT', held, last[2])
    redis.call('HSET', pairs, code, ID)
    redis.call('PEXPIREAT', pairs, last[2])
    redis.call('HSET', REQUEST, 'id', ID, 'tenant', TENANT, 'group', GROUP, 'to', num,
      'code', (code == '-') and '' or code, 'from', FROM, 'cbsvc', CBSVC,
      'userData', USER_DATA, 'created', now, 'expires', exp)
    redis.call('PEXPIRE', REQUEST, ttl)
    return {ALLOCATED, redis.call('HGETALL', REQUEST)}
  end
  local first = redis.call('ZRANGE', held, 0, 0, 'WITHSCORES')
  if first[2] then
    local f = tonumber(first[2])
    if soonest == 0 or f < soonest then soonest = f end
  end
end
return {FULL, soonest, now}
