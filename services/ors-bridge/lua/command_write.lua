-- command_write.lua: append one command to the voice platform's stream, at most once.
-- The guard is set in the same step as the XADD, so a dispatch handled twice (redelivered
-- after a crash between the write and the ack) writes one entry. It is set after the XADD: a
-- failed XADD (a wrong-type key) leaves no guard, so the retry writes the entry (a script's
-- writes before an error stay in Redis). The guard shares the stream's hash slot (see
-- commands.c), so the script works on Redis Cluster too.
--
-- KEYS
--   GUARD       the guard of this command (STRING, set with GUARD_TTL_MS once written)
--   STREAM      the voice commands stream (capped at about 1,000,000 entries)
-- ARGV
--   GUARD_TTL_MS how long the guard is kept
--   ...         the entry's fields and values, in pairs
-- RETURNS
--   WRITTEN = 1     written
--   SEEN = 0        the guard was set before; nothing written

if redis.call('EXISTS', GUARD) == 1 then return SEEN end
redis.call('XADD', STREAM, 'MAXLEN', '~', '1000000', '*', unpack(ARGV, ARGV_TAIL + 1))
redis.call('SET', GUARD, '1', 'PX', GUARD_TTL_MS)
return WRITTEN
