-- luacheck settings for the Redis scripts (services/*/lua/*.lua), run by cmake/luagen.sh on the
-- script as Redis runs it. Redis runs Lua 5.1 with these globals and nothing else.
std = "lua51"
read_globals = { "KEYS", "ARGV", "redis", "cjson", "cmsgpack", "struct", "bit" }
-- Line 1 is generated (the header's names as locals) and is long by nature.
max_line_length = false
