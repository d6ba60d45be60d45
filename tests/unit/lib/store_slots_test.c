/* The cluster client's pure parts: the slot of a key (checked against CLUSTER KEYSLOT of a real
 * redis-server 7.0), the keys of a command, which commands write, MOVED/ASK and CLUSTER SLOTS
 * parsing, and the target URLs. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engage/config.h"
#include "engage/store.h"
#include "store_slots.h"

static int slot_of(const char *k)
{
    return store_key_slot(k, strlen(k));
}

Test(store_slots, key_slots_match_redis_cluster_keyslot)
{
    /* redis-cli cluster keyslot <key> on redis-server 7.0.15 */
    static const struct {
        const char *key;
        int slot;
    } known[] = {{"foo", 12182},
                 {"bar", 5061},
                 {"123456789", 12739},
                 {"{user1000}.following", 3443},
                 {"{user1000}.followers", 3443},
                 {"foo{}{bar}", 8363},
                 {"foo{{bar}}zap", 4015},
                 {"foo{bar}{zap}", 5061},
                 {"engage:{t-1}:cb:x", 4608},
                 {"", 0},
                 {"a{", 14311},
                 {"}{b}", 3300}};
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        cr_expect_eq(slot_of(known[i].key), known[i].slot, "slot of '%s': %d, redis says %d",
                     known[i].key, slot_of(known[i].key), known[i].slot);
}

static int cmd_slot(int argc, const char **argv)
{
    store_cmd_t c = {.argc = argc, .argv = argv};
    return store_cmd_slot(&c);
}

Test(store_slots, commands_are_routed_by_their_keys)
{
    const char *get[] = {"GET", "engage:{t1}:a"};
    cr_expect_eq(cmd_slot(2, get), slot_of("t1"));
    const char *ping[] = {"PING"};
    cr_expect_eq(cmd_slot(1, ping), STORE_NO_SLOT);
    const char *load[] = {"SCRIPT", "LOAD", "return 1"};
    cr_expect_eq(cmd_slot(3, load), STORE_NO_SLOT);
    const char *ev[] = {"EVALSHA", "0123", "2", "x:{t1}:a", "x:{t1}:b", "not-a-key"};
    cr_expect_eq(cmd_slot(6, ev), slot_of("t1"), "EVALSHA: its KEYS, not its ARGV");
    const char *ev0[] = {"EVALSHA", "0123", "0", "arg"};
    cr_expect_eq(cmd_slot(4, ev0), STORE_NO_SLOT);
    const char *xrg[] = {"XREADGROUP", "GROUP", "g", "c", "COUNT", "10", "STREAMS", "s{q}", ">"};
    cr_expect_eq(cmd_slot(9, xrg), slot_of("q"), "XREADGROUP: the stream after STREAMS");
    const char *xg[] = {"XGROUP", "CREATE", "stream-a", "g", "$", "MKSTREAM"};
    cr_expect_eq(cmd_slot(6, xg), slot_of("stream-a"));
    const char *scan[] = {"SCAN", "0", "MATCH", "engage:{t9}:ci:req:*", "COUNT", "1000"};
    cr_expect_eq(cmd_slot(6, scan), slot_of("t9"), "SCAN: the hash tag of its pattern");
    const char *scan_all[] = {"SCAN", "0", "MATCH", "engage:*"};
    cr_expect_eq(cmd_slot(4, scan_all), STORE_NO_SLOT);
}

Test(store_slots, keys_in_two_slots_are_refused)
{
    const char *del[] = {"DEL", "engage:{t1}:a", "engage:{t2}:a"};
    cr_expect_eq(cmd_slot(3, del), STORE_CROSS_SLOT);
    const char *del_ok[] = {"DEL", "engage:{t1}:a", "engage:{t1}:b"};
    cr_expect_eq(cmd_slot(3, del_ok), slot_of("t1"));
    const char *ev[] = {"EVALSHA", "0123", "2", "x:{t1}:a", "x:{t2}:b"};
    cr_expect_eq(cmd_slot(5, ev), STORE_CROSS_SLOT, "a script over two tenants' keys");
    const char *mget[] = {"MGET", "a", "b"};
    cr_expect_eq(cmd_slot(3, mget), STORE_CROSS_SLOT);
}

Test(store_slots, reads_do_not_wait_for_replicas)
{
    const char *hget[] = {"HGET", "k", "f"}, *zr[] = {"ZRANGE", "k", "0", "-1"},
               *xadd[] = {"XADD", "s", "*", "f", "v"}, *ev[] = {"EVALSHA", "x", "0"},
               *xrg[] = {"XREADGROUP", "GROUP", "g", "c", "STREAMS", "s", ">"};
    store_cmd_t c1 = {2, hget, NULL}, c2 = {4, zr, NULL}, c3 = {5, xadd, NULL}, c4 = {3, ev, NULL},
                c5 = {7, xrg, NULL};
    cr_expect_not(store_cmd_writes(&c1));
    cr_expect_not(store_cmd_writes(&c2));
    cr_expect(store_cmd_writes(&c3));
    cr_expect(store_cmd_writes(&c4), "scripts write");
    cr_expect(store_cmd_writes(&c5), "XREADGROUP moves entries into the pending list");
}

Test(store_slots, redirections_parse)
{
    store_redirect_t r;
    const char *moved = "MOVED 3999 127.0.0.1:6381";
    cr_assert(store_redirect_parse(moved, strlen(moved), &r));
    cr_expect_not(r.ask);
    cr_expect_eq(r.slot, 3999);
    cr_expect_str_eq(r.host, "127.0.0.1");
    cr_expect_eq(r.port, 6381);
    const char *ask = "ASK 12182 10.0.0.7:7002";
    cr_assert(store_redirect_parse(ask, strlen(ask), &r));
    cr_expect(r.ask);
    cr_expect_eq(r.slot, 12182);
    cr_expect_eq(r.port, 7002);
    const char *bad[] = {"MOVED",       "MOVED 16384 h:1", "MOVED 1 h:0", "MOVED 1 :5",
                         "MOVED x h:1", "ERR wrong",       "ASK 1 host"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        cr_expect_not(store_redirect_parse(bad[i], strlen(bad[i]), &r), "'%s' parsed", bad[i]);
}

static eg_reply_t *integer(long long v)
{
    eg_reply_t *r = calloc(1, sizeof *r);
    r->type = EG_REPLY_INTEGER;
    r->integer = v;
    return r;
}

static eg_reply_t *string(const char *s)
{
    eg_reply_t *r = calloc(1, sizeof *r);
    r->type = EG_REPLY_STRING;
    r->str = strdup(s);
    r->len = strlen(s);
    return r;
}

static eg_reply_t *array(size_t n, eg_reply_t **items)
{
    eg_reply_t *r = calloc(1, sizeof *r);
    r->type = EG_REPLY_ARRAY;
    r->elements = n;
    r->element = calloc(n, sizeof *r->element);
    memcpy(r->element, items, n * sizeof *items);
    return r;
}

/* One CLUSTER SLOTS entry: start, end, master [host, port, id], one replica. */
static eg_reply_t *range(int start, int end, const char *host, int port)
{
    eg_reply_t *m[] = {string(host), integer(port), string("id-m")};
    eg_reply_t *rp[] = {string("127.0.0.1"), integer(port + 100), string("id-r")};
    eg_reply_t *e[] = {integer(start), integer(end), array(3, m), array(3, rp)};
    return array(4, e);
}

Test(store_slots, cluster_slots_reply_parses)
{
    eg_reply_t *items[] = {range(0, 5460, "127.0.0.1", 7000), range(5461, 10922, "", 7001),
                           range(10923, 16383, "127.0.0.1", 7002)};
    eg_reply_t *r = array(3, items);
    store_range_t *out = NULL;
    size_t n = 0;
    cr_assert_eq(store_slots_parse(r, "10.1.1.1", &out, &n), EG_OK);
    cr_assert_eq(n, 3);
    cr_expect_eq(out[0].start, 0);
    cr_expect_eq(out[0].end, 5460);
    cr_expect_eq(out[0].port, 7000, "the master, not the replica");
    cr_expect_str_eq(out[1].host, "10.1.1.1", "an empty host is the node that was asked");
    cr_expect_eq(out[2].start, 10923);
    store_ranges_free(out, n);
    eg_reply_free(r);

    eg_reply_t *bad_items[] = {range(100, 50, "h", 1)};
    r = array(1, bad_items);
    cr_expect_eq(store_slots_parse(r, "h", &out, &n), EG_EPROTO, "end before start");
    eg_reply_free(r);
    r = string("nope");
    cr_expect_eq(store_slots_parse(r, "h", &out, &n), EG_EPROTO);
    eg_reply_free(r);
}

Test(store_slots, target_urls_parse)
{
    eg_store_target_t t;
    cr_assert_eq(eg_store_target_parse("redis://:pw@127.0.0.1:7000/2", &t), EG_OK);
    cr_expect_eq(t.mode, EG_STORE_SINGLE);
    cr_expect_str_eq(t.password, "pw");
    cr_expect_eq(t.db, 2);
    cr_expect_eq(t.min_replicas, 0);
    eg_store_target_free(&t);

    cr_assert_eq(eg_store_target_parse("redis-sentinel://a:1,b:2,c?master=engage&min_replicas=1"
                                       "&wait_ms=250",
                                       &t),
                 EG_OK);
    cr_expect_eq(t.mode, EG_STORE_SENTINEL);
    cr_expect_eq(t.nhosts, 3);
    cr_expect_str_eq(t.host[1], "b");
    cr_expect_eq(t.port[2], 26379, "sentinels default to 26379");
    cr_expect_str_eq(t.master, "engage");
    cr_expect_eq(t.min_replicas, 1);
    cr_expect_eq(t.wait_ms, 250);
    eg_store_target_free(&t);

    cr_assert_eq(eg_store_target_parse("redis-cluster://u:p@w@h1:7000,h2:7001", &t), EG_OK);
    cr_expect_eq(t.mode, EG_STORE_CLUSTER);
    cr_expect_str_eq(t.password, "p@w", "the last '@' ends the credentials");
    cr_expect_eq(t.nhosts, 2);
    cr_expect_eq(t.wait_ms, 1000, "the default wait");
    eg_store_target_free(&t);

    const char *bad[] = {"redis-sentinel://a:1",       /* no master */
                         "redis://a:1,b:2",            /* single takes one host */
                         "redis-cluster://a:1/3",      /* a cluster has no db */
                         "redis://a:1?min_replicas=x", /* not a number */
                         "redis://a:1?color=red",      /* unknown parameter */
                         "redis://a:0",
                         "http://a:1",
                         "redis-cluster://"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        cr_expect_eq(eg_store_target_parse(bad[i], &t), EG_EINVAL, "'%s' accepted", bad[i]);
}

Test(store_slots, the_environment_becomes_a_target)
{
    /* make test runs this with the suite's variables set: start from none. */
    const char *vars[] = {"URL", "CLUSTER", "SENTINELS", "MASTER", "MIN_REPLICAS", "WAIT_MS"};
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) {
        char n[64];
        snprintf(n, sizeof n, "ENGAGE_REDIS_%s", vars[i]);
        unsetenv(n);
        snprintf(n, sizeof n, "ENGAGE_VOICE_REDIS_%s", vars[i]);
        unsetenv(n);
    }
    setenv("ENGAGE_REDIS_URL", "redis://:s3cret@127.0.0.1:6390", 1);
    setenv("ENGAGE_REDIS_CLUSTER", "127.0.0.1:7000,127.0.0.1:7001", 1);
    setenv("ENGAGE_REDIS_MIN_REPLICAS", "1", 1);
    char *t = eg_config_redis_target("ENGAGE_REDIS", NULL);
    cr_expect_str_eq(t, "redis-cluster://:s3cret@127.0.0.1:7000,127.0.0.1:7001?min_replicas=1");
    char *v = eg_config_redis_target("ENGAGE_VOICE_REDIS", t);
    cr_expect_str_eq(v, t, "the voice platform's Redis defaults to Engage's");
    free(v);
    free(t);
    unsetenv("ENGAGE_REDIS_CLUSTER");
    setenv("ENGAGE_REDIS_SENTINELS", "127.0.0.1:26379,127.0.0.1:26380", 1);
    t = eg_config_redis_target("ENGAGE_REDIS", NULL);
    cr_expect_str_eq(
        t, "redis-sentinel://:s3cret@127.0.0.1:26379,127.0.0.1:26380?master=engage&min_replicas=1");
    free(t);
    unsetenv("ENGAGE_REDIS_SENTINELS");
    t = eg_config_redis_target("ENGAGE_REDIS", NULL);
    cr_expect_str_eq(t, "redis://:s3cret@127.0.0.1:6390?min_replicas=1");
    free(t);
}
