/* Inside lib/store: the pieces the Redis adapter's files share (store.c, store_node.c,
 * store_sentinel.c, store_cluster.c, store_target.c). Nothing outside lib/ includes this: the
 * hiredis types stay here.
 *
 * A store sends batches of commands (store_cmd_t). How a batch reaches Redis depends on the
 * target's mode:
 *   single    one node, reconnected once after an I/O error;
 *   sentinel  one node, the primary the sentinels name; asked again after an I/O error, a
 *             -READONLY reply or a +switch-master message;
 *   cluster   one connection per node, chosen by the slot of each command's keys, with MOVED,
 *             ASK, TRYAGAIN and CLUSTERDOWN handled here.
 * Every mode runs the commands of a batch in their order; consecutive commands for one node share
 * one round trip. */
#ifndef ENGAGE_STORE_INTERNAL_H
#define ENGAGE_STORE_INTERNAL_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/time.h>

#include <hiredis/hiredis.h>

#include "engage/store.h"

#include "store_slots.h"

/* A connection to one Redis server. */
typedef struct {
    char *host;
    int port;
    redisContext *ctx; /* NULL until connected, and after an I/O error */
} store_node_t;

typedef struct {
    char *src;  /* as registered (what eg_store_script_add compares) */
    char *text; /* as loaded: src, behind the key check when that is on */
    char sha[41];
} store_script_t;

typedef struct store_cluster store_cluster_t;
typedef struct store_sentinel store_sentinel_t;

struct eg_store {
    eg_store_target_t target;
    struct timeval tv; /* connect and command timeout */
    bool has_timeout;
    int timeout_ms;
    bool check_slots;  /* refuse cross-slot commands in every mode (ENGAGE_STORE_CHECK_KEYS=1) */
    store_node_t node; /* single and sentinel: the server commands go to */
    store_sentinel_t *sentinel; /* sentinel mode */
    store_cluster_t *cluster;   /* cluster mode */
    store_script_t *scripts;
    size_t nscripts;
    size_t capscripts;
    char err[256];
};

void store_set_error(eg_store_t *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- store_node.c: one connection ---- */

/** Connect n (replacing an old context), with AUTH and SELECT db (db < 0: none). */
eg_status_t store_node_connect(eg_store_t *s, store_node_t *n, int db);
/** Drop n's context (the next use connects again). */
void store_node_drop(store_node_t *n);
/** Free n's strings and context. */
void store_node_free(store_node_t *n);
/** Send cmds[0..n) to node in one round trip; raw[i] are the replies (hiredis objects, owned by
 *  the caller). One attempt: an I/O error drops the context and is EG_EUNAVAIL (raw freed). */
eg_status_t store_node_exec(eg_store_t *s, store_node_t *node, size_t n, const store_cmd_t *cmds,
                            redisReply **raw);
/** Free raw[0..n) and set them to NULL. */
void store_free_raw(redisReply **raw, size_t n);
/** True when r is an error reply starting with the word `word`. */
bool store_reply_is(const redisReply *r, const char *word);
/** Convert a hiredis reply into the project's own (deep copy). */
eg_reply_t *store_reply_convert(const redisReply *r);

/* ---- store.c ---- */

/** store_node_exec, then (when the target wants replicas and the batch writes) WAIT on the same
 *  connection: fewer replicas than min_replicas is EG_EUNAVAIL, replies freed. */
eg_status_t store_exec_node(eg_store_t *s, store_node_t *node, size_t n, const store_cmd_t *cmds,
                            redisReply **raw);

/* ---- store_cluster.c: the cluster client ---- */

eg_status_t store_cluster_open(eg_store_t *s);
void store_cluster_free(store_cluster_t *c);
/** Run the batch on the cluster (the slot of each command in slots[i]); where[i] is the index of
 *  the node that gave raw[i]. */
eg_status_t store_cluster_exec(eg_store_t *s, size_t n, const store_cmd_t *cmds, const int *slots,
                               redisReply **raw, int *where);
/** SCRIPT LOAD text on node (an index from store_cluster_exec's where). */
eg_status_t store_cluster_load(eg_store_t *s, int node, const char *text);

/* ---- store_sentinel.c ---- */

eg_status_t store_sentinel_open(eg_store_t *s);
void store_sentinel_free(store_sentinel_t *st);
/** Point s->node at the primary the sentinels name now, connected and checked with ROLE. */
eg_status_t store_sentinel_resolve(eg_store_t *s);
/** True when a +switch-master for our master arrived since the last call (never blocks). */
bool store_sentinel_switched(eg_store_t *s);

#endif
