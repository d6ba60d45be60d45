-- create.lua: book a new callback in one atomic step.
-- Writes the record, its index entry, its place in its slot, the number's counters and its
-- event in the tenant's outbox, or nothing at all: a slot that is full, a per-number limit
-- that is reached, an Idempotency-Key seen before or an id that exists write nothing.
-- Every key is the tenant's (hash tag {t:<tenant>}); see services/scheduler/store_keys.h.
--
-- KEYS
--   CB          the callback's record (STRING: the packed Callback)
--   INDEX       the service's due ZSET (scheduled) or queue ZSET (immediate)
--   SLOTS       the service's slot counters (HASH slot start ms -> places booked)
--   OUTBOX      the tenant's outbox (STREAM of packed Events)
--   NUMBER      the number's hash: i:<id> -> created ms, a:<service> -> live callbacks,
--               d:<service> -> the seconds of its creates in the last 24 h
--   IDEM        the Idempotency-Key's callback id (STRING; a placeholder key without one)
--   WATCH       the service's watch ZSET (attempts handed to the voice platform)
--   DAILY       the service's counters of the UTC day (HASH)
-- ARGV
--   BLOB        the packed record
--   ID          the callback id
--   SCORE       its score in INDEX
--   TTL_MS      the record's time to live
--   SLOT        the slot field in SLOTS ("" = takes no place)
--   CAPACITY    the slot's capacity
--   EVENT_ID    the event's id
--   EVENT       the packed event
--   NOW_MS      now
--   MAX_ACTIVE  live callbacks allowed per number in the service (0 = no limit)
--   MAX_PER_DAY creates allowed per number in the service in 24 h (0 = no limit)
--   IDEM_TTL_MS how long IDEM remembers the id ("" = no Idempotency-Key)
--   WATCH_SCORE its score in WATCH ("" = not watched)
--   SERVICE     the service name (the number's per-service fields)
-- RETURNS
--   CREATED = 1     created
--   EXISTS = -1     a callback with this id exists; nothing written
--   SLOT_FULL = 0   {SLOT_FULL, places used}: the slot is full
--   REPLAY = 2      {REPLAY, id}: the Idempotency-Key's callback, created before
--   PER_DAY = 3     {PER_DAY, creates}: the number's per-day limit is reached
--   ACTIVE = 4      {ACTIVE, live}: the number's live-callback limit is reached

if IDEM_TTL_MS ~= '' then
  local prev = redis.call('GET', IDEM)
  if prev then return {REPLAY, prev} end
end
if redis.call('EXISTS', CB) == 1 then return EXISTS end
local now = tonumber(NOW_MS)
local af, df = 'a:' .. SERVICE, 'd:' .. SERVICE
local num = redis.call('HMGET', NUMBER, af, df)
local live = tonumber(num[1] or '0')
local fields = {'i:' .. ID, NOW_MS, af, live + 1}
if tonumber(MAX_PER_DAY) > 0 then
  -- The number's creates of the last 24 h, as seconds, oldest first.
  local kept, since = {}, math.floor(now / 1000) - 86400
  for t in string.gmatch(num[2] or '', '%d+') do
    if tonumber(t) > since then kept[#kept + 1] = t end
  end
  if #kept >= tonumber(MAX_PER_DAY) then return {PER_DAY, #kept} end
  kept[#kept + 1] = tostring(math.floor(now / 1000))
  fields[5], fields[6] = df, table.concat(kept, ' ')
end
if tonumber(MAX_ACTIVE) > 0 and live >= tonumber(MAX_ACTIVE) then return {ACTIVE, live} end
if SLOT ~= '' then
  local used = tonumber(redis.call('HGET', SLOTS, SLOT) or '0')
  if used >= tonumber(CAPACITY) then return {SLOT_FULL, used} end
  redis.call('HINCRBY', SLOTS, SLOT, 1)
end
redis.call('SET', CB, BLOB, 'PX', TTL_MS)
redis.call('ZADD', INDEX, SCORE, ID)
if WATCH_SCORE ~= '' then redis.call('ZADD', WATCH, WATCH_SCORE, ID) end
redis.call('HSET', NUMBER, unpack(fields))
-- The number's hash lives as long as its longest-lived record: never shorten.
if redis.call('PTTL', NUMBER) < tonumber(TTL_MS) then redis.call('PEXPIRE', NUMBER, TTL_MS) end
if IDEM_TTL_MS ~= '' then redis.call('SET', IDEM, ID, 'PX', IDEM_TTL_MS) end
redis.call('XADD', OUTBOX, '*', 'e', EVENT_ID, 'd', EVENT)
-- The day's counter expires 3 days after its first use.
if redis.call('HINCRBY', DAILY, 'created', 1) == 1 then redis.call('PEXPIRE', DAILY, 259200000) end
return CREATED
