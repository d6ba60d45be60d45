-- The physical limit of a create on this machine (lua_create_limit_per_s): the least a create
-- must do in Redis, as one script call. scripts/bench.sh loads it and runs it with
-- redis-benchmark (EVALSHA, random keys) at the same connection counts as the HTTP runs.
-- KEYS: callback record, slot counters (hash), due index (ZSET)
-- ARGV: packed callback (~200 bytes), slot field, due score, callback id
redis.call('SET', KEYS[1], ARGV[1])
redis.call('HINCRBY', KEYS[2], ARGV[2], 1)
redis.call('ZADD', KEYS[3], ARGV[3], ARGV[4])
return 1
