/* Sentinel mode of lib/store: the primary is whatever the sentinels name for the master.
 *
 * store_sentinel_resolve asks the sentinels in turn (starting with the last one that answered)
 * `SENTINEL get-master-addr-by-name <master>`, connects to the address, and checks with ROLE that
 * the server is a master: right after a failover a sentinel may still name the old primary, or a
 * restarted old primary may not have been turned into a replica yet. One pass over the sentinels;
 * when none leads to a master it is EG_EUNAVAIL and the caller tries again on its next call (a
 * failover takes down-after-milliseconds plus an election, about 4 s with the topology's
 * settings), so no thread sleeps in here.
 *
 * What makes the store ask again (store.c): a dropped connection, a -READONLY reply (the server
 * was demoted), and a +switch-master message. For the latter each store keeps a subscription to
 * +switch-master on one sentinel, read without blocking (poll with a zero timeout) before each
 * batch; a subscription that breaks is taken as a switch (ask again, to be safe) and reopened at
 * most every SUB_RETRY_MS.
 *
 * Sentinels are connected without credentials (the target's password is the data nodes'). */
#include <poll.h>
#include <stdlib.h>
#include <string.h>

#include "engage/log.h"
#include "engage/mem.h"
#include "engage/timeutil.h"
#include "store_internal.h"

#define SENTINEL_TIMEOUT_MS 1000
#define SUB_RETRY_MS 5000

struct store_sentinel {
    size_t next;          /* the sentinel to ask first */
    redisContext *sub;    /* subscribed to +switch-master; NULL when not */
    int64_t sub_retry_at; /* monotonic ms: when to try subscribing again */
    bool switched;
};

static redisContext *sentinel_connect(const eg_store_t *s, size_t i)
{
    int ms =
        s->has_timeout && s->timeout_ms < SENTINEL_TIMEOUT_MS ? s->timeout_ms : SENTINEL_TIMEOUT_MS;
    struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (suseconds_t)(ms % 1000) * 1000};
    redisContext *c = redisConnectWithTimeout(s->target.host[i], s->target.port[i], tv);
    if (c == NULL)
        return NULL;
    if (c->err != 0 || redisSetTimeout(c, tv) != REDIS_OK) {
        redisFree(c);
        return NULL;
    }
    return c;
}

static void subscribe(eg_store_t *s)
{
    store_sentinel_t *st = s->sentinel;
    st->sub_retry_at = eg_mono_ms() + SUB_RETRY_MS;
    for (size_t k = 0; k < s->target.nhosts; k++) {
        size_t i = (st->next + k) % s->target.nhosts;
        redisContext *c = sentinel_connect(s, i);
        if (c == NULL)
            continue;
        const char *argv[] = {"SUBSCRIBE", "+switch-master"};
        redisReply *r = redisCommandArgv(c, 2, argv, NULL);
        bool ok = r != NULL && r->type == REDIS_REPLY_ARRAY;
        if (r != NULL)
            freeReplyObject(r);
        if (ok) {
            st->sub = c;
            return;
        }
        redisFree(c);
    }
}

eg_status_t store_sentinel_open(eg_store_t *s)
{
    s->sentinel = eg_xcalloc(1, sizeof *s->sentinel);
    subscribe(s);
    return EG_OK;
}

void store_sentinel_free(store_sentinel_t *st)
{
    if (st == NULL)
        return;
    if (st->sub != NULL)
        redisFree(st->sub);
    free(st);
}

/* A +switch-master message: "<master> <old-ip> <old-port> <new-ip> <new-port>". */
static bool is_our_switch(const eg_store_t *s, const redisReply *r)
{
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 3 ||
        r->element[2]->type != REDIS_REPLY_STRING)
        return false;
    size_t n = strlen(s->target.master);
    const redisReply *m = r->element[2];
    return m->len > n && memcmp(m->str, s->target.master, n) == 0 && m->str[n] == ' ';
}

bool store_sentinel_switched(eg_store_t *s)
{
    store_sentinel_t *st = s->sentinel;
    if (st->sub == NULL) {
        if (eg_mono_ms() >= st->sub_retry_at)
            subscribe(s);
    } else {
        struct pollfd p = {.fd = st->sub->fd, .events = POLLIN};
        if (poll(&p, 1, 0) > 0) {
            if (redisBufferRead(st->sub) != REDIS_OK) {
                redisFree(st->sub);
                st->sub = NULL;
                st->switched = true; /* we may have missed one */
            } else {
                void *r = NULL;
                while (redisGetReplyFromReader(st->sub, &r) == REDIS_OK && r != NULL) {
                    if (is_our_switch(s, r)) {
                        eg_log_info("redis sentinel: +switch-master for %s", s->target.master);
                        st->switched = true;
                    }
                    freeReplyObject(r);
                    r = NULL;
                }
            }
        }
    }
    bool was = st->switched;
    st->switched = false;
    return was;
}

/* Ask sentinel i for the master's address (host malloc'd). */
static bool ask(const eg_store_t *s, size_t i, char **host, int *port)
{
    redisContext *c = sentinel_connect(s, i);
    if (c == NULL)
        return false;
    const char *argv[] = {"SENTINEL", "get-master-addr-by-name", s->target.master};
    redisReply *r = redisCommandArgv(c, 3, argv, NULL);
    bool ok = r != NULL && r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
              r->element[0]->type == REDIS_REPLY_STRING &&
              r->element[1]->type == REDIS_REPLY_STRING;
    if (ok) {
        long p = strtol(r->element[1]->str, NULL, 10);
        ok = p > 0 && p < 65536;
        if (ok) {
            *host = eg_xstrdup(r->element[0]->str);
            *port = (int)p;
        }
    }
    if (r != NULL)
        freeReplyObject(r);
    redisFree(c);
    return ok;
}

/* Is the connected node a master? */
static bool is_master(eg_store_t *s)
{
    const char *argv[] = {"ROLE"};
    store_cmd_t c = {.argc = 1, .argv = argv};
    redisReply *r = NULL;
    if (store_node_exec(s, &s->node, 1, &c, &r) != EG_OK)
        return false;
    bool ok = r->type == REDIS_REPLY_ARRAY && r->elements > 0 &&
              r->element[0]->type == REDIS_REPLY_STRING &&
              strcmp(r->element[0]->str, "master") == 0;
    freeReplyObject(r);
    return ok;
}

eg_status_t store_sentinel_resolve(eg_store_t *s)
{
    store_sentinel_t *st = s->sentinel;
    bool answered = false;
    for (size_t k = 0; k < s->target.nhosts; k++) {
        size_t i = (st->next + k) % s->target.nhosts;
        char *host = NULL;
        int port = 0;
        if (!ask(s, i, &host, &port))
            continue;
        answered = true;
        st->next = i;
        bool same = s->node.host && strcmp(s->node.host, host) == 0 && s->node.port == port;
        if (!same) {
            store_node_free(&s->node);
            s->node.host = host;
            s->node.port = port;
            eg_log_info("redis sentinel: master %s is at %s:%d", s->target.master, host, port);
        } else {
            free(host);
        }
        if (s->node.ctx == NULL && store_node_connect(s, &s->node, s->target.db) != EG_OK)
            continue;
        if (is_master(s))
            return EG_OK;
        store_node_drop(&s->node);
    }
    if (!answered)
        store_set_error(s, "no sentinel answered for master %s", s->target.master);
    else
        store_set_error(s, "the sentinels name no reachable master for %s yet", s->target.master);
    return EG_EUNAVAIL;
}
