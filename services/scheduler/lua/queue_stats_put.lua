-- queue_stats_put.lua: keep the newest queue.stats figures of one virtual queue.
-- Figures older than the stored ones (by their time) are ignored, so a late entry never
-- overwrites a newer one.
--
-- KEYS
--   STATS       the virtual queue's figures (HASH at, logged_in, ready, waiting, aht)
-- ARGV
--   AT_MS       when the voice platform measured them
--   LOGGED_IN   agents logged in
--   READY       agents ready
--   WAITING     calls waiting
--   AHT_S       average handle time, seconds
--   TTL_MS      how long they are kept without a newer report
-- RETURNS
--   STORED = 1      stored
--   OLDER = 0       older than what is stored; nothing written

local prev = redis.call('HGET', STATS, 'at')
if prev and tonumber(prev) > tonumber(AT_MS) then return OLDER end
redis.call('HSET', STATS, 'at', AT_MS, 'logged_in', LOGGED_IN, 'ready', READY,
  'waiting', WAITING, 'aht', AHT_S)
redis.call('PEXPIRE', STATS, TTL_MS)
return STORED
