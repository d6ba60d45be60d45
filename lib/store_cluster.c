/* Cluster mode of lib/store: a small Redis Cluster client (hiredis 0.14 has none).
 *
 * The store keeps a connection per node (so per node and per thread, a store being one thread's)
 * and a slot map, 16384 entries naming the master of each slot, built from CLUSTER SLOTS asked of
 * any node it knows (the seeds first time). A batch is routed command by command: the slot of its
 * keys (store_slots.c; a command whose keys span slots never gets here) names the node; a command
 * without a key goes with its neighbour, or to any master. Consecutive commands for one node go
 * in one round trip, and the runs go one after another, so the batch keeps its order.
 *
 * What a node may answer instead, and what happens (one command at a time, the rest of its round
 * trip kept):
 *   MOVED slot host:port   the slot lives there now: the map entry changes at once, the whole
 *                          map is refreshed before the next batch, the command goes there;
 *   ASK slot host:port     the slot is migrating and this key has moved: ASKING then the
 *                          command, on that node, in one round trip; the map stays;
 *   TRYAGAIN               a multi-key command during a migration: wait and send it again;
 *   CLUSTERDOWN            the cluster lost a master and has not failed over yet: likewise;
 *   a dropped connection   the map is refreshed (at most every REFRESH_MIN_MS) and the command
 *                          sent again.
 * Waits start at BACKOFF_MIN_MS and double up to BACKOFF_MAX_MS; a command is given up
 * (EG_EUNAVAIL) once the store's timeout has passed since the batch began, or after MAX_TRIES.
 * No MOVED, ASK or TRYAGAIN ever reaches a caller: an error of that kind is either resolved here
 * or turned into EG_EUNAVAIL. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engage/log.h"
#include "engage/mem.h"
#include "engage/timeutil.h"
#include "store_internal.h"

#define REFRESH_MIN_MS 100
#define BACKOFF_MIN_MS 25
#define BACKOFF_MAX_MS 400
#define MAX_TRIES 32
#define DEFAULT_DEADLINE_MS 5000
#define MAX_NODES 256

struct store_cluster {
    store_node_t *nodes;
    size_t nnodes, cap;
    int16_t slot[STORE_SLOTS]; /* index into nodes; -1: no master known */
    bool stale;                /* refresh before the next batch */
    bool mapped;               /* a map was read at least once */
    int64_t refreshed_at;
    size_t any; /* rotates the node that takes keyless commands */
};

static void sleep_ms(int ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* The index of the node at host:port, added when new (-1 when the list is full). */
static int node_index(store_cluster_t *c, const char *host, int port)
{
    for (size_t i = 0; i < c->nnodes; i++)
        if (c->nodes[i].port == port && strcmp(c->nodes[i].host, host) == 0)
            return (int)i;
    if (c->nnodes == MAX_NODES)
        return -1;
    if (c->nnodes == c->cap) {
        c->cap = c->cap ? c->cap * 2 : 8;
        c->nodes = eg_xrealloc(c->nodes, c->cap * sizeof *c->nodes);
    }
    c->nodes[c->nnodes] = (store_node_t){.host = eg_xstrdup(host), .port = port};
    return (int)c->nnodes++;
}

/* Ask node i for the slot map and take it. */
static eg_status_t refresh_from(eg_store_t *s, size_t i)
{
    store_cluster_t *c = s->cluster;
    const char *argv[] = {"CLUSTER", "SLOTS"};
    store_cmd_t cmd = {.argc = 2, .argv = argv};
    redisReply *raw = NULL;
    eg_status_t st = store_node_exec(s, &c->nodes[i], 1, &cmd, &raw);
    if (st != EG_OK)
        return st;
    eg_reply_t *r = store_reply_convert(raw);
    freeReplyObject(raw);
    store_range_t *ranges = NULL;
    size_t n = 0;
    st = store_slots_parse(r, c->nodes[i].host, &ranges, &n);
    eg_reply_free(r);
    if (st != EG_OK || n == 0) {
        store_ranges_free(ranges, n);
        store_set_error(s, "redis %s:%d: no slot map in CLUSTER SLOTS", c->nodes[i].host,
                        c->nodes[i].port);
        return st != EG_OK ? st : EG_EUNAVAIL;
    }
    for (size_t k = 0; k < STORE_SLOTS; k++)
        c->slot[k] = -1;
    for (size_t k = 0; k < n; k++) {
        int idx = node_index(c, ranges[k].host, ranges[k].port);
        for (int sl = ranges[k].start; idx >= 0 && sl <= ranges[k].end; sl++)
            c->slot[sl] = (int16_t)idx;
    }
    store_ranges_free(ranges, n);
    c->mapped = true;
    c->stale = false;
    return EG_OK;
}

/* Read the slot map from the first node that gives one (rate-limited unless forced). */
static eg_status_t refresh(eg_store_t *s, bool force)
{
    store_cluster_t *c = s->cluster;
    int64_t now = eg_mono_ms();
    if (!force && c->mapped && now - c->refreshed_at < REFRESH_MIN_MS)
        return EG_OK;
    c->refreshed_at = now;
    eg_status_t st = EG_EUNAVAIL;
    size_t n = c->nnodes;
    for (size_t k = 0; k < n; k++) {
        size_t i = (c->any + k) % n;
        st = refresh_from(s, i);
        if (st == EG_OK)
            return EG_OK;
    }
    eg_log_warn("redis cluster: cannot read the slot map from any of %zu nodes: %s", n, s->err);
    return st;
}

eg_status_t store_cluster_open(eg_store_t *s)
{
    s->cluster = eg_xcalloc(1, sizeof *s->cluster);
    for (size_t i = 0; i < s->target.nhosts; i++)
        node_index(s->cluster, s->target.host[i], s->target.port[i]);
    return refresh(s, true);
}

void store_cluster_free(store_cluster_t *c)
{
    if (c == NULL)
        return;
    for (size_t i = 0; i < c->nnodes; i++)
        store_node_free(&c->nodes[i]);
    free(c->nodes);
    free(c);
}

/* A master for a keyless command: the next one in turn that serves a slot. */
static int any_master(store_cluster_t *c)
{
    for (size_t k = 0; k < c->nnodes; k++) {
        size_t i = (c->any + k) % c->nnodes;
        for (size_t sl = 0; sl < STORE_SLOTS; sl += 1024)
            if (c->slot[sl] == (int16_t)i)
                return (int)i;
    }
    for (size_t sl = 0; sl < STORE_SLOTS; sl++)
        if (c->slot[sl] >= 0)
            return c->slot[sl];
    return -1;
}

static int route(store_cluster_t *c, int slot)
{
    return slot >= 0 ? c->slot[slot] : any_master(c);
}

typedef enum { R_DONE, R_MOVED, R_ASK, R_WAIT } outcome_t;

static outcome_t classify(const redisReply *r, store_redirect_t *to)
{
    if (r->type != REDIS_REPLY_ERROR)
        return R_DONE;
    if (store_reply_is(r, "TRYAGAIN") || store_reply_is(r, "CLUSTERDOWN"))
        return R_WAIT;
    if (store_redirect_parse(r->str, r->len, to))
        return to->ask ? R_ASK : R_MOVED;
    return R_DONE;
}

/* Send one command until it gets an answer that is not a redirection (or the deadline). */
static eg_status_t exec_one(eg_store_t *s, const store_cmd_t *cmd, int slot, int64_t deadline,
                            redisReply **out, int *where)
{
    store_cluster_t *c = s->cluster;
    int backoff = BACKOFF_MIN_MS;
    store_redirect_t to;
    const char *asking[] = {"ASKING"};
    eg_status_t st = EG_EUNAVAIL;
    *out = NULL;
    int target = -1; /* set by MOVED or ASK for the next try */
    bool ask = false;
    for (int tries = 0; tries < MAX_TRIES; tries++) {
        int idx = target >= 0 ? target : route(c, slot);
        target = -1;
        redisReply *r = NULL;
        if (idx < 0) {
            store_set_error(s, "redis cluster: no master serves slot %d", slot);
            st = EG_EUNAVAIL;
        } else if (ask) {
            store_cmd_t two[2] = {{.argc = 1, .argv = asking}, *cmd};
            redisReply *got[2] = {NULL, NULL};
            st = store_exec_node(s, &c->nodes[idx], 2, two, got);
            if (st == EG_OK) {
                store_free_raw(got, 1);
                r = got[1];
            }
        } else {
            st = store_exec_node(s, &c->nodes[idx], 1, cmd, &r);
        }
        ask = false;
        if (st == EG_OK) {
            outcome_t o = classify(r, &to);
            if (o == R_DONE) {
                *out = r;
                *where = idx;
                return EG_OK;
            }
            freeReplyObject(r);
            if (o == R_MOVED || o == R_ASK) {
                int n = node_index(c, to.host, to.port);
                if (n < 0) {
                    store_set_error(s, "redis cluster: too many nodes");
                    return EG_EUNAVAIL;
                }
                target = n;
                if (o == R_MOVED) {
                    c->slot[to.slot] = (int16_t)n;
                    c->stale = true;
                } else {
                    ask = true;
                }
                continue;
            }
            store_set_error(s, "redis cluster: slot %d is not available (TRYAGAIN/CLUSTERDOWN)",
                            slot);
        } else if (idx >= 0 && c->nodes[idx].ctx != NULL) {
            return st; /* -LOADING or too few replicas: an outage the caller waits out */
        }
        /* A dropped connection or a cluster in transition: wait, look again. */
        if (eg_mono_ms() + backoff > deadline)
            break;
        sleep_ms(backoff);
        backoff = backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : backoff * 2;
        refresh(s, false);
        c->any++;
    }
    if (st == EG_OK)
        st = EG_EUNAVAIL;
    return st;
}

eg_status_t store_cluster_exec(eg_store_t *s, size_t n, const store_cmd_t *cmds, const int *slots,
                               redisReply **raw, int *where)
{
    store_cluster_t *c = s->cluster;
    int64_t deadline = eg_mono_ms() + (s->timeout_ms > 0 ? s->timeout_ms : DEFAULT_DEADLINE_MS);
    eg_status_t st = EG_OK;
    if (c->stale || !c->mapped)
        refresh(s, true);
    int *node = eg_xcalloc(n ? n : 1, sizeof *node);
    /* Keyless commands go with the command before them (or after, or any master). */
    for (size_t i = 0; i < n; i++)
        node[i] = slots[i] >= 0 ? c->slot[slots[i]] : -2;
    for (size_t i = 0; i < n; i++)
        if (node[i] == -2)
            node[i] = i > 0 ? node[i - 1] : -2;
    for (size_t i = n; i-- > 0;)
        if (node[i] == -2)
            node[i] = i + 1 < n ? node[i + 1] : -2;
    for (size_t i = 0; i < n; i++)
        if (node[i] == -2)
            node[i] = any_master(c);
    for (size_t i = 0; i < n && st == EG_OK;) {
        size_t j = i + 1;
        while (j < n && node[j] == node[i])
            j++;
        eg_status_t rst = node[i] >= 0
                              ? store_exec_node(s, &c->nodes[node[i]], j - i, &cmds[i], &raw[i])
                              : EG_EUNAVAIL;
        bool io = rst != EG_OK && (node[i] < 0 || c->nodes[node[i]].ctx == NULL);
        if (rst != EG_OK && !io) {
            st = rst;
            break;
        }
        /* Each command that did not get its answer (connection lost, redirected, busy) goes
         * again on its own. */
        for (size_t k = i; k < j && st == EG_OK; k++) {
            store_redirect_t to;
            where[k] = node[i];
            if (!io && classify(raw[k], &to) == R_DONE)
                continue;
            if (raw[k] != NULL) {
                freeReplyObject(raw[k]);
                raw[k] = NULL;
            }
            if (io)
                refresh(s, false);
            st = exec_one(s, &cmds[k], slots[k], deadline, &raw[k], &where[k]);
        }
        i = j;
    }
    if (st != EG_OK)
        store_free_raw(raw, n);
    free(node);
    return st;
}

eg_status_t store_cluster_load(eg_store_t *s, int node, const char *text)
{
    store_cluster_t *c = s->cluster;
    if (node < 0 || (size_t)node >= c->nnodes)
        return EG_EUNAVAIL;
    const char *argv[] = {"SCRIPT", "LOAD", text};
    store_cmd_t cmd = {.argc = 3, .argv = argv};
    redisReply *r = NULL;
    eg_status_t st = store_node_exec(s, &c->nodes[node], 1, &cmd, &r);
    if (st == EG_OK && (r->type != REDIS_REPLY_STRING || r->len != 40)) {
        store_set_error(s, "SCRIPT LOAD on %s:%d: %s", c->nodes[node].host, c->nodes[node].port,
                        r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
        st = EG_EPROTO;
    }
    if (r != NULL)
        freeReplyObject(r);
    return st;
}
