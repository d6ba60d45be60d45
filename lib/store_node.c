/* One connection to one Redis server, for every mode of lib/store (store_internal.h).
 *
 * A node owns a blocking hiredis context, connected with the store's timeout and keepalive, then
 * AUTH (when the target has a password) and SELECT (db > 0). store_node_exec sends a batch as one
 * pipeline and reads every reply; an I/O error (the server closed the connection, a reset, a
 * timeout) drops the context and is EG_EUNAVAIL, so the caller decides whether to connect again
 * and resend: the retry policy belongs to the mode (store.c, store_cluster.c).
 *
 * A server still loading its AOF answers -LOADING to everything: the batch is then EG_EUNAVAIL
 * like a refused connection (no reply handed out), an outage to wait out rather than a refusal of
 * the command.
 *
 * Replies are converted into the project's own eg_reply_t, copying every string, so no hiredis
 * type leaves lib/. Values are user data and are never logged; connection errors are logged with
 * host and port only. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engage/log.h"
#include "engage/mem.h"
#include "store_internal.h"

void store_set_error(eg_store_t *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->err, sizeof(s->err), fmt, ap);
    va_end(ap);
}

void store_node_drop(store_node_t *n)
{
    if (n->ctx != NULL) {
        redisFree(n->ctx);
        n->ctx = NULL;
    }
}

void store_node_free(store_node_t *n)
{
    store_node_drop(n);
    free(n->host);
    n->host = NULL;
}

bool store_reply_is(const redisReply *r, const char *word)
{
    size_t n = strlen(word);
    return r != NULL && r->type == REDIS_REPLY_ERROR && r->len >= n &&
           memcmp(r->str, word, n) == 0 && (r->len == n || r->str[n] == ' ');
}

/* One setup command (AUTH, SELECT) on a fresh context. */
static eg_status_t setup(eg_store_t *s, store_node_t *n, redisContext *c, const char *what,
                         int argc, const char **argv, eg_status_t refused)
{
    redisReply *r = redisCommandArgv(c, argc, argv, NULL);
    if (r == NULL) {
        store_set_error(s, "%s on %s:%d: %s", what, n->host, n->port, c->errstr);
        eg_log_warn("redis %s:%d: %s failed: %s", n->host, n->port, what, c->errstr);
        return EG_EUNAVAIL;
    }
    eg_status_t st = EG_OK;
    if (r->type == REDIS_REPLY_ERROR) {
        /* The text may echo the command; for AUTH say only that it was refused. */
        store_set_error(s, "%s refused by %s:%d", what, n->host, n->port);
        eg_log_warn("redis %s:%d: %s refused", n->host, n->port, what);
        st = store_reply_is(r, "LOADING") ? EG_EUNAVAIL : refused;
    }
    freeReplyObject(r);
    return st;
}

eg_status_t store_node_connect(eg_store_t *s, store_node_t *n, int db)
{
    eg_status_t st = EG_EUNAVAIL;
    redisContext *c = NULL;

    store_node_drop(n);
    c = s->has_timeout ? redisConnectWithTimeout(n->host, n->port, s->tv)
                       : redisConnect(n->host, n->port);
    if (c == NULL) {
        store_set_error(s, "cannot allocate a redis context");
        goto out;
    }
    if (c->err != 0) {
        store_set_error(s, "connect to %s:%d: %s", n->host, n->port, c->errstr);
        eg_log_warn("redis %s:%d: connect failed: %s", n->host, n->port, c->errstr);
        goto out;
    }
    if ((s->has_timeout && redisSetTimeout(c, s->tv) != REDIS_OK) ||
        redisEnableKeepAlive(c) != REDIS_OK) {
        store_set_error(s, "socket options on %s:%d: %s", n->host, n->port, c->errstr);
        goto out;
    }
    if (s->target.password != NULL) {
        const char *auth[] = {"AUTH", s->target.password};
        st = setup(s, n, c, "AUTH", 2, auth, EG_EAUTH);
        if (st != EG_OK)
            goto out;
    }
    if (db > 0) {
        char dbs[16];
        snprintf(dbs, sizeof dbs, "%d", db);
        const char *sel[] = {"SELECT", dbs};
        st = setup(s, n, c, "SELECT", 2, sel, EG_EINVAL);
        if (st != EG_OK)
            goto out;
    }
    n->ctx = c;
    c = NULL;
    st = EG_OK;
out:
    if (c != NULL)
        redisFree(c);
    return st;
}

void store_free_raw(redisReply **raw, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (raw[i] != NULL) {
            freeReplyObject(raw[i]);
            raw[i] = NULL;
        }
    }
}

eg_status_t store_node_exec(eg_store_t *s, store_node_t *node, size_t n, const store_cmd_t *cmds,
                            redisReply **raw)
{
    size_t i;
    for (i = 0; i < n; i++)
        raw[i] = NULL;
    if (node->ctx == NULL) {
        eg_status_t st = store_node_connect(s, node, s->target.db);
        if (st != EG_OK)
            return st;
    }
    for (i = 0; i < n; i++) {
        /* hiredis takes char ** without const but only reads the strings. */
        if (redisAppendCommandArgv(node->ctx, cmds[i].argc, (const char **)cmds[i].argv,
                                   cmds[i].lens) != REDIS_OK)
            break;
    }
    if (i == n) {
        for (i = 0; i < n; i++) {
            void *r = NULL;
            if (redisGetReply(node->ctx, &r) != REDIS_OK || r == NULL)
                break;
            raw[i] = r;
        }
    }
    if (i == n) {
        for (i = 0; i < n; i++) {
            if (store_reply_is(raw[i], "LOADING")) {
                store_set_error(s, "redis %s:%d: still loading its data", node->host, node->port);
                store_free_raw(raw, n);
                return EG_EUNAVAIL;
            }
        }
        return EG_OK;
    }
    store_free_raw(raw, n);
    if (node->ctx->err == 0) {
        /* Appending failed without an I/O error: only out of memory does that. */
        store_set_error(s, "cannot build the pipeline");
        return EG_EINTERNAL;
    }
    store_set_error(s, "redis %s:%d: %s", node->host, node->port,
                    node->ctx->errstr[0] != '\0' ? node->ctx->errstr : "I/O error");
    eg_log_warn("redis %s:%d: command failed (%s); reconnecting", node->host, node->port,
                node->ctx->errstr);
    store_node_drop(node);
    return EG_EUNAVAIL;
}

static char *copy_bytes(const char *p, size_t len)
{
    char *c = eg_xmalloc(len + 1);
    if (len > 0)
        memcpy(c, p, len);
    c[len] = '\0';
    return c;
}

eg_reply_t *store_reply_convert(const redisReply *r)
{
    eg_reply_t *e = eg_xcalloc(1, sizeof(*e));

    switch (r->type) {
    case REDIS_REPLY_STRING:
    case REDIS_REPLY_STATUS:
    case REDIS_REPLY_ERROR:
        e->type = r->type == REDIS_REPLY_STRING   ? EG_REPLY_STRING
                  : r->type == REDIS_REPLY_STATUS ? EG_REPLY_STATUS
                                                  : EG_REPLY_ERROR;
        e->str = copy_bytes(r->str, r->len);
        e->len = r->len;
        break;
    case REDIS_REPLY_INTEGER:
        e->type = EG_REPLY_INTEGER;
        e->integer = r->integer;
        break;
    case REDIS_REPLY_ARRAY:
        e->type = EG_REPLY_ARRAY;
        e->elements = r->elements;
        if (r->elements > 0) {
            e->element = eg_xcalloc(r->elements, sizeof(*e->element));
            for (size_t i = 0; i < r->elements; i++)
                e->element[i] = store_reply_convert(r->element[i]);
        }
        break;
    default:
        e->type = EG_REPLY_NIL;
        break;
    }
    return e;
}
