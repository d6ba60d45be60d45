-- reschedule.lua: move a scheduled callback to a new time in one atomic step, compare-and-set.
-- Its place moves from the old slot to the new one (refused when the new slot is full), its due
-- time and record change, and its event goes into the tenant's outbox in the same step.
-- Every key is the tenant's (hash tag {t:<tenant>}); see services/scheduler/store_keys.h.
--
-- KEYS
--   CB          the callback's record
--   DUE         the service's due ZSET
--   SLOTS       the service's slot counters
--   OUTBOX      the tenant's outbox
--   NUMBER      the number's hash
-- ARGV
--   OLD         the record as the caller read it
--   BLOB        the new record
--   ID          the callback id
--   SCORE       its new due score
--   TTL_MS      the record's time to live
--   OLD_SLOT    the slot field it holds a place in ("" = none: a retry holds no place)
--   NEW_SLOT    the slot field of the new time
--   CAPACITY    the new slot's capacity
--   EVENT_ID    the event's id
--   EVENT       the packed event
-- RETURNS
--   MOVED = 1       moved
--   CONFLICT = 0    the record changed or vanished since the caller read it; nothing written
--   SLOT_FULL = 0   {SLOT_FULL, places used}: the new slot is full; nothing written

if redis.call('GET', CB) ~= OLD then return CONFLICT end
if OLD_SLOT ~= NEW_SLOT then
  local used = tonumber(redis.call('HGET', SLOTS, NEW_SLOT) or '0')
  if used >= tonumber(CAPACITY) then return {SLOT_FULL, used} end
  redis.call('HINCRBY', SLOTS, NEW_SLOT, 1)
  if OLD_SLOT ~= '' and redis.call('HINCRBY', SLOTS, OLD_SLOT, -1) <= 0 then
    redis.call('HDEL', SLOTS, OLD_SLOT)
  end
end
redis.call('SET', CB, BLOB, 'PX', TTL_MS)
redis.call('ZADD', DUE, SCORE, ID)
-- A later desired time keeps the record longer: its number's hash too.
local t = redis.call('PTTL', NUMBER)
if t ~= -2 and t < tonumber(TTL_MS) then redis.call('PEXPIRE', NUMBER, TTL_MS) end
redis.call('XADD', OUTBOX, '*', 'e', EVENT_ID, 'd', EVENT)
return MOVED
