-- transition.lua: change one callback's state in one atomic step, compare-and-set.
-- The record is replaced only if it is still the blob the caller read; with it move its index
-- entries (due, queue, watch), its slot place, the number's live count and the service's
-- statistics, and its event goes into the tenant's outbox in the same step.
-- Every key is the tenant's (hash tag {t:<tenant>}); see services/scheduler/store_keys.h.
--
-- KEYS
--   CB          the callback's record
--   DUE         the service's due ZSET
--   QUEUE       the service's queue ZSET
--   WATCH       the service's watch ZSET
--   SLOTS       the service's slot counters
--   OUTBOX      the tenant's outbox
--   NUMBER      the number's hash
--   SERVED      the virtual queue's last serve times (LIST, newest first, 32 kept)
--   STATS       the service's live counters (HASH: processing)
--   DAILY       the service's counters of the UTC day of the change (HASH: completed)
-- ARGV
--   OLD         the record as the caller read it
--   BLOB        the new record
--   ID          the callback id
--   DUE_OP      for DUE: "a" add with DUE_SCORE, "r" remove, "" leave as it is
--   DUE_SCORE   its score in DUE
--   QUEUE_OP    for QUEUE, the same
--   QUEUE_SCORE its score in QUEUE
--   WATCH_OP    for WATCH, the same
--   WATCH_SCORE its score in WATCH
--   TTL_MS      the record's time to live
--   SLOT        the slot field whose place is released ("" = none)
--   EVENT_ID    the event's id
--   EVENT       the packed event
--   LIVE_FIELD  the number's live-count field ("a:<service>") when the callback is no longer
--               live, else ""
--   AGENT       "+" when an agent took it (PROCESSING), "-" when it left PROCESSING, else ""
--   COMPLETED   "1" when it completed, else ""
--   NOW_MS      now
-- RETURNS
--   DONE = 1        changed
--   CONFLICT = 0    the record changed or vanished since the caller read it; nothing written

if redis.call('GET', CB) ~= OLD then return CONFLICT end
redis.call('SET', CB, BLOB, 'PX', TTL_MS)

local function move(key, op, score)
  if op == 'a' then redis.call('ZADD', key, score, ID)
  elseif op == 'r' then redis.call('ZREM', key, ID) end
end
move(DUE, DUE_OP, DUE_SCORE)
move(QUEUE, QUEUE_OP, QUEUE_SCORE)
move(WATCH, WATCH_OP, WATCH_SCORE)

if SLOT ~= '' and redis.call('HINCRBY', SLOTS, SLOT, -1) <= 0 then
  redis.call('HDEL', SLOTS, SLOT)
end
if LIVE_FIELD ~= '' and redis.call('HINCRBY', NUMBER, LIVE_FIELD, -1) <= 0 then
  redis.call('HDEL', NUMBER, LIVE_FIELD)
end
redis.call('XADD', OUTBOX, '*', 'e', EVENT_ID, 'd', EVENT)
if AGENT == '+' then
  redis.call('LPUSH', SERVED, NOW_MS)
  redis.call('LTRIM', SERVED, 0, 31)
  redis.call('HINCRBY', STATS, 'processing', 1)
elseif AGENT == '-' then
  redis.call('HINCRBY', STATS, 'processing', -1)
end
if COMPLETED == '1' and redis.call('HINCRBY', DAILY, 'completed', 1) == 1 then
  redis.call('PEXPIRE', DAILY, 259200000)
end
return DONE
