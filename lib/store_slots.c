/* Slots, keys and redirections for the cluster client: see store_slots.h.
 *
 * The slot function is Redis Cluster's: CRC16-CCITT (XMODEM: polynomial 0x1021, initial value 0,
 * no reflection) of the key's hash tag or of the whole key, modulo 16384. It is computed bit by
 * bit: keys are short and a table buys nothing measurable next to a network round trip.
 *
 * Which arguments are keys is a property of the command. The table below covers what Engage
 * sends (and the usual read and write commands); any other command is taken to have its key
 * first, the rule for most of Redis's commands. A command in the keyless list goes to any node. */
#include "store_slots.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "engage/mem.h"

static uint16_t crc16(const unsigned char *p, size_t n)
{
    unsigned crc = 0;
    for (size_t i = 0; i < n; i++) {
        crc ^= (unsigned)p[i] << 8;
        for (int b = 0; b < 8; b++)
            crc = (crc & 0x8000u) ? ((crc << 1) ^ 0x1021u) & 0xFFFFu : (crc << 1) & 0xFFFFu;
    }
    return (uint16_t)crc;
}

uint16_t store_key_slot(const char *key, size_t len)
{
    const char *open = memchr(key, '{', len);
    if (open) {
        size_t rest = len - (size_t)(open - key) - 1;
        const char *close = memchr(open + 1, '}', rest);
        if (close && close > open + 1)
            return (uint16_t)(crc16((const unsigned char *)open + 1, (size_t)(close - open - 1)) &
                              (STORE_SLOTS - 1));
    }
    return (uint16_t)(crc16((const unsigned char *)key, len) & (STORE_SLOTS - 1));
}

static size_t arg_len(const store_cmd_t *c, int i)
{
    return c->lens ? c->lens[i] : strlen(c->argv[i]);
}

static bool is_cmd(const store_cmd_t *c, const char *name)
{
    return strlen(name) == arg_len(c, 0) && strncasecmp(c->argv[0], name, arg_len(c, 0)) == 0;
}

static bool in_list(const store_cmd_t *c, const char *const *names)
{
    for (size_t i = 0; names[i]; i++)
        if (is_cmd(c, names[i]))
            return true;
    return false;
}

static const char *const keyless[] = {
    "PING",    "TIME",    "SCRIPT",  "INFO",   "WAIT",     "ROLE",      "CLUSTER", "ASKING",
    "AUTH",    "SELECT",  "ECHO",    "DBSIZE", "FLUSHDB",  "FLUSHALL",  "CONFIG",  "CLIENT",
    "LATENCY", "SLOWLOG", "COMMAND", "HELLO",  "READONLY", "READWRITE", NULL};
static const char *const all_keys[] = {"DEL", "UNLINK", "EXISTS", "MGET", "TOUCH", NULL};
static const char *const read_only[] = {"GET",
                                        "MGET",
                                        "STRLEN",
                                        "EXISTS",
                                        "TTL",
                                        "PTTL",
                                        "TYPE",
                                        "HGET",
                                        "HMGET",
                                        "HGETALL",
                                        "HLEN",
                                        "HEXISTS",
                                        "HKEYS",
                                        "HVALS",
                                        "ZRANGE",
                                        "ZREVRANGE",
                                        "ZRANK",
                                        "ZREVRANK",
                                        "ZCARD",
                                        "ZSCORE",
                                        "ZCOUNT",
                                        "ZRANGEBYSCORE",
                                        "ZREVRANGEBYSCORE",
                                        "ZMSCORE",
                                        "SMEMBERS",
                                        "SISMEMBER",
                                        "SCARD",
                                        "LRANGE",
                                        "LLEN",
                                        "LINDEX",
                                        "XRANGE",
                                        "XREVRANGE",
                                        "XLEN",
                                        "XINFO",
                                        "XPENDING",
                                        "XREAD",
                                        "SCAN",
                                        "HSCAN",
                                        "ZSCAN",
                                        "SSCAN",
                                        "PING",
                                        "TIME",
                                        "INFO",
                                        "ROLE",
                                        "CLUSTER",
                                        "ECHO",
                                        "DBSIZE",
                                        "WAIT",
                                        "ASKING",
                                        "COMMAND",
                                        NULL};

/* Fold the slot of argument i into *slot; false when it differs from the one already there. */
static bool fold(const store_cmd_t *c, int i, int *slot)
{
    int k = store_key_slot(c->argv[i], arg_len(c, i));
    if (*slot == STORE_NO_SLOT)
        *slot = k;
    return *slot == k;
}

static int fold_range(const store_cmd_t *c, int from, int to)
{
    int slot = STORE_NO_SLOT;
    for (int i = from; i < to && i < c->argc; i++)
        if (!fold(c, i, &slot))
            return STORE_CROSS_SLOT;
    return slot;
}

/* SCAN cursor [MATCH pattern] [COUNT n] [TYPE t]: the slot of the pattern's hash tag, when the
 * pattern has one (then every key it can match is in that slot). */
static int scan_slot(const store_cmd_t *c)
{
    for (int i = 2; i + 1 < c->argc; i += 2) {
        size_t n = arg_len(c, i);
        if (n == 5 && strncasecmp(c->argv[i], "MATCH", 5) == 0) {
            const char *p = c->argv[i + 1];
            size_t len = arg_len(c, i + 1);
            const char *open = memchr(p, '{', len);
            const char *close = open ? memchr(open, '}', len - (size_t)(open - p)) : NULL;
            if (!close || close == open + 1 || memchr(open, '*', (size_t)(close - open)) ||
                memchr(open, '?', (size_t)(close - open)) ||
                memchr(open, '[', (size_t)(close - open)))
                return STORE_NO_SLOT;
            return store_key_slot(open, (size_t)(close - open + 1));
        }
    }
    return STORE_NO_SLOT;
}

int store_cmd_slot(const store_cmd_t *c)
{
    if (c->argc < 1)
        return STORE_NO_SLOT;
    if (in_list(c, keyless))
        return STORE_NO_SLOT;
    if (is_cmd(c, "EVAL") || is_cmd(c, "EVALSHA") || is_cmd(c, "EVAL_RO") ||
        is_cmd(c, "EVALSHA_RO")) {
        if (c->argc < 3)
            return STORE_NO_SLOT;
        long nk = strtol(c->argv[2], NULL, 10);
        if (nk <= 0)
            return STORE_NO_SLOT;
        return fold_range(c, 3, 3 + (int)nk);
    }
    if (is_cmd(c, "XREAD") || is_cmd(c, "XREADGROUP")) {
        for (int i = 1; i < c->argc; i++)
            if (arg_len(c, i) == 7 && strncasecmp(c->argv[i], "STREAMS", 7) == 0) {
                int nstreams = (c->argc - i - 1) / 2;
                return fold_range(c, i + 1, i + 1 + nstreams);
            }
        return STORE_NO_SLOT;
    }
    if (is_cmd(c, "SCAN"))
        return scan_slot(c);
    if (in_list(c, all_keys))
        return fold_range(c, 1, c->argc);
    if (is_cmd(c, "XGROUP") || is_cmd(c, "XINFO") || is_cmd(c, "OBJECT") || is_cmd(c, "MEMORY"))
        return c->argc > 2 ? fold_range(c, 2, 3) : STORE_NO_SLOT;
    return c->argc > 1 ? fold_range(c, 1, 2) : STORE_NO_SLOT;
}

bool store_cmd_writes(const store_cmd_t *c)
{
    return c->argc >= 1 && !in_list(c, read_only);
}

bool store_redirect_parse(const char *err, size_t len, store_redirect_t *out)
{
    char buf[320];
    if (!err || len >= sizeof buf)
        return false;
    memcpy(buf, err, len);
    buf[len] = '\0';
    memset(out, 0, sizeof *out);
    const char *p;
    if (strncmp(buf, "MOVED ", 6) == 0) {
        p = buf + 6;
    } else if (strncmp(buf, "ASK ", 4) == 0) {
        out->ask = true;
        p = buf + 4;
    } else {
        return false;
    }
    char *end;
    long slot = strtol(p, &end, 10);
    if (end == p || *end != ' ' || slot < 0 || slot >= STORE_SLOTS)
        return false;
    p = end + 1;
    const char *colon = strrchr(p, ':');
    if (!colon || colon == p || (size_t)(colon - p) >= sizeof out->host)
        return false;
    long port = strtol(colon + 1, &end, 10);
    if (end == colon + 1 || *end || port < 1 || port > 65535)
        return false;
    memcpy(out->host, p, (size_t)(colon - p));
    out->host[colon - p] = '\0';
    out->slot = (int)slot;
    out->port = (int)port;
    return true;
}

void store_ranges_free(store_range_t *r, size_t n)
{
    for (size_t i = 0; r && i < n; i++)
        free(r[i].host);
    free(r);
}

eg_status_t store_slots_parse(const eg_reply_t *r, const char *asked_host, store_range_t **out,
                              size_t *n)
{
    *out = NULL;
    *n = 0;
    if (!r || r->type != EG_REPLY_ARRAY)
        return EG_EPROTO;
    store_range_t *ranges = r->elements ? eg_xcalloc(r->elements, sizeof *ranges) : NULL;
    size_t k = 0;
    for (size_t i = 0; i < r->elements; i++) {
        const eg_reply_t *e = r->element[i];
        if (e->type != EG_REPLY_ARRAY || e->elements < 3 ||
            e->element[0]->type != EG_REPLY_INTEGER || e->element[1]->type != EG_REPLY_INTEGER)
            goto bad;
        const eg_reply_t *m = e->element[2];
        if (m->type != EG_REPLY_ARRAY || m->elements < 2 ||
            m->element[0]->type != EG_REPLY_STRING || m->element[1]->type != EG_REPLY_INTEGER)
            goto bad;
        long long start = e->element[0]->integer, end = e->element[1]->integer;
        long long port = m->element[1]->integer;
        if (start < 0 || end < start || end >= STORE_SLOTS || port < 1 || port > 65535)
            goto bad;
        const char *host = m->element[0]->str;
        if (host[0] == '\0' || strcmp(host, "?") == 0)
            host = asked_host;
        ranges[k].start = (int)start;
        ranges[k].end = (int)end;
        ranges[k].port = (int)port;
        ranges[k].host = eg_xstrdup(host);
        k++;
    }
    *out = ranges;
    *n = k;
    return EG_OK;
bad:
    store_ranges_free(ranges, k);
    return EG_EPROTO;
}
