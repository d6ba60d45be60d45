-- Dial commands of one callback service on the voice commands stream, for the dispatch lateness
-- figure (scripts/bench.sh runs it with EVAL on the voice Redis, never on Engage's own).
-- KEYS: the commands stream. ARGV: service name.
-- Returns one "<entry id> <callback id> <attempt>" string per dial; the entry id's first part
-- is the millisecond Redis appended the dial.
local out = {}
for _, e in ipairs(redis.call('XRANGE', KEYS[1], '-', '+')) do
    local f = e[2]
    local kind, cb, attempt, service
    for i = 1, #f, 2 do
        local k, v = f[i], f[i + 1]
        if k == 'type' then
            kind = v
        elseif k == 'callback_id' then
            cb = v
        elseif k == 'attempt' then
            attempt = v
        elseif k == 'service' then
            service = v
        end
    end
    if kind == 'dial' and service == ARGV[1] then
        out[#out + 1] = e[1] .. ' ' .. tostring(cb) .. ' ' .. tostring(attempt)
    end
end
return out
