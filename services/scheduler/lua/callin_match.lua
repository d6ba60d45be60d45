-- callin_match.lua: match a call to the dialled number with its call-in request, once.
-- The request is found through the number's pair index, by the access code entered or, for a
-- number lent without codes, by the number alone. The pair, the held code and the record go in
-- one step, so one request routes one call; the answer is remembered under the platform's call
-- id, so a call.inbound read again gets it again. The caller reads the pair index first and
-- names the request keys it found (every key is in KEYS); when the index changed meanwhile the
-- script answers STALE and the caller reads again.
-- Every key is the tenant's (hash tag {t:<tenant>}); see services/scheduler/store_keys.h.
--
-- KEYS
--   MEMO        the match remembered under the call id (HASH: the request's fields)
--   HELD        the dialled number's held codes (ZSET code -> expiry ms)
--   PAIRS       the dialled number's pair index (HASH code -> request id)
--   BY_CODE     the record of the request PAIRS named for CODE (a placeholder when none)
--   BY_NUMBER   the record of the request PAIRS named for "-" (a placeholder when none)
-- ARGV
--   CODE        the access code entered ("" = none)
--   CALLER      the caller's number ("" = unknown)
--   MEMO_TTL_MS how long the match is remembered
--   ID_CODE     the request id the caller read for CODE ("" = none)
--   ID_NUMBER   the request id the caller read for "-" ("" = none)
-- RETURNS
--   MATCHED = 1     {MATCHED, HGETALL of the consumed request (or of the memo)}
--   NO_MATCH = 0    {NO_MATCH, why}: "none" (nothing live on the number), "code" (codes live
--                   on the number, not this one), "need_code" (codes live, none entered),
--                   "caller" (the request is for another caller)
--   STALE = 2       {STALE}: the pair index is not what the caller read; read again

local memo = redis.call('HGETALL', MEMO)
if #memo > 0 then return {MATCHED, memo} end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
while true do
  local gone = redis.call('ZRANGEBYSCORE', HELD, '-inf', now, 'LIMIT', 0, 1000)
  if #gone == 0 then break end
  redis.call('ZREM', HELD, unpack(gone))
  redis.call('HDEL', PAIRS, unpack(gone))
end

local by_code = CODE ~= '' and redis.call('HGET', PAIRS, CODE) or false
local by_number = redis.call('HGET', PAIRS, '-')
if (by_code or '') ~= ID_CODE or (by_number or '') ~= ID_NUMBER then return {STALE} end

local member, record
if by_code then
  member, record = CODE, BY_CODE
elseif by_number then
  member, record = '-', BY_NUMBER
else
  if redis.call('ZCARD', HELD) > 0 then
    if CODE == '' then return {NO_MATCH, 'need_code'} end
    return {NO_MATCH, 'code'}
  end
  return {NO_MATCH, 'none'}
end
local rec = redis.call('HGETALL', record)
if #rec == 0 then return {NO_MATCH, 'none'} end
if member == '-' then
  local from = redis.call('HGET', record, 'from')
  if from and from ~= '' and from ~= CALLER then return {NO_MATCH, 'caller'} end
end
redis.call('HDEL', PAIRS, member)
redis.call('ZREM', HELD, member)
redis.call('DEL', record)
redis.call('HSET', MEMO, unpack(rec))
redis.call('PEXPIRE', MEMO, MEMO_TTL_MS)
return {MATCHED, rec}
