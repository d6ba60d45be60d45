/* The Redis adapter: the public side of lib/store (engage/store.h). The other files:
 * store_node.c (one connection), store_sentinel.c (finding the primary), store_cluster.c (the
 * cluster client), store_slots.c (slots, keys, redirections), store_target.c (the URLs).
 *
 * Every call becomes a batch of commands run by run_batch(): in their order, on the node (or, in
 * cluster mode, the nodes) that serve them, in as few round trips as the mode allows. A batch
 * that meets a dropped connection is sent once more after reconnecting (single), after asking
 * the sentinels for the primary again (sentinel; also after a -READONLY reply or a
 * +switch-master message), or after refreshing the slot map (cluster). A second failure is
 * EG_EUNAVAIL.
 *
 * Retrying after a dropped connection can apply a command twice: the first copy may have run
 * before the connection broke. Engage's writes are Lua scripts that compare-and-set on a version
 * or are otherwise idempotent, so a replay is harmless; plain non-idempotent commands (INCR,
 * XADD without an explicit id) sent through here have at-least-once semantics.
 *
 * A server that restarted answers -LOADING to everything until it has read its AOF: that is
 * EG_EUNAVAIL like a refused connection (no reply is handed out), so callers retry it as the
 * outage it is instead of taking it for a refusal of the command.
 *
 * Scripts are registered once per store (source and SHA1 kept) and run with EVALSHA. A NOSCRIPT
 * reply (server restarted, SCRIPT FLUSH, failover, a cluster node that never saw it) loads the
 * source on the node that said so and sends the batch once more.
 *
 * With min_replicas (target URL), each round trip that holds a write ends with WAIT N wait_ms on
 * the same node; fewer than N replicas is EG_EUNAVAIL (store_exec_node).
 *
 * hiredis 0.14 writes with write(2), so writing to a socket the server has reset raises SIGPIPE:
 * services ignore SIGPIPE in main. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engage/log.h"
#include "engage/mem.h"
#include "engage/store.h"
#include "store_internal.h"

/* With ENGAGE_STORE_CHECK_KEYS=1 (make test sets it), every script runs behind this line: a
 * local `redis` whose call and pcall refuse a key argument that is not one of the script's
 * KEYS (commands without arguments, such as TIME, pass); scripts that never name KEYS run as
 * they are. It is prepended without a newline,
 * so Redis's line numbers still point into the script's .lua file. No script may build a key
 * name (Redis Cluster needs every key in KEYS): this proves it for every call the tests make. */
static const char key_check_lua[] =
    "local redis = (function(r, keys) local ok = {} for _, k in ipairs(keys) do ok[k] = true end "
    "local function chk(cmd, key) if key ~= nil and not ok[key] then "
    "error('engage key check: ' .. tostring(cmd) .. ' on ' .. tostring(key) .. "
    "' which is not in KEYS') end end "
    "return setmetatable({call = function(cmd, key, ...) if key == nil then return r.call(cmd) end "
    "chk(cmd, key) return r.call(cmd, key, ...) end, pcall = function(cmd, key, ...) "
    "if key == nil then return r.pcall(cmd) end chk(cmd, key) return r.pcall(cmd, key, ...) end}, "
    "{__index = r}) end)(redis, KEYS) ";

static bool key_check_on(const char *lua)
{
    const char *v = getenv("ENGAGE_STORE_CHECK_KEYS");
    /* Only scripts that address keys: one without KEYS runs as it is (its SHA unchanged). */
    return v && strcmp(v, "1") == 0 && strstr(lua, "KEYS[") != NULL;
}

static void free_scripts(eg_store_t *s)
{
    for (size_t i = 0; i < s->nscripts; i++) {
        free(s->scripts[i].src);
        free(s->scripts[i].text);
    }
    free(s->scripts);
    s->scripts = NULL;
    s->nscripts = s->capscripts = 0;
}

eg_status_t store_exec_node(eg_store_t *s, store_node_t *node, size_t n, const store_cmd_t *cmds,
                            redisReply **raw)
{
    bool writes = false;
    for (size_t i = 0; s->target.min_replicas > 0 && i < n && !writes; i++)
        writes = store_cmd_writes(&cmds[i]);
    if (!writes)
        return store_node_exec(s, node, n, cmds, raw);
    /* The batch, then WAIT on the same connection: it counts the replicas that have everything
     * this connection wrote. */
    char nrep[16], ms[16];
    snprintf(nrep, sizeof nrep, "%d", s->target.min_replicas);
    snprintf(ms, sizeof ms, "%d", s->target.wait_ms);
    const char *wait[] = {"WAIT", nrep, ms};
    store_cmd_t *all = eg_xcalloc(n + 1, sizeof *all);
    redisReply **got = eg_xcalloc(n + 1, sizeof *got);
    memcpy(all, cmds, n * sizeof *cmds);
    all[n] = (store_cmd_t){.argc = 3, .argv = wait};
    eg_status_t st = store_node_exec(s, node, n + 1, all, got);
    if (st == EG_OK) {
        const redisReply *w = got[n];
        if (w->type != REDIS_REPLY_INTEGER || w->integer < s->target.min_replicas) {
            long long k = w->type == REDIS_REPLY_INTEGER ? w->integer : -1;
            store_set_error(s, "redis %s:%d: the write reached %lld of %d replicas in %d ms",
                            node->host, node->port, k, s->target.min_replicas, s->target.wait_ms);
            eg_log_warn("%s", s->err);
            store_free_raw(got, n + 1);
            st = EG_EUNAVAIL;
        } else {
            memcpy(raw, got, n * sizeof *raw);
            store_free_raw(got + n, 1);
        }
    }
    free(all);
    free(got);
    return st;
}

/* One server (single or sentinel mode): a batch, sent again once after a reconnect. */
static eg_status_t exec_primary(eg_store_t *s, size_t n, const store_cmd_t *cmds, redisReply **raw)
{
    eg_status_t st = EG_EUNAVAIL;
    bool sentinel = s->target.mode == EG_STORE_SENTINEL;
    if (sentinel && (s->node.host == NULL || store_sentinel_switched(s))) {
        st = store_sentinel_resolve(s);
        if (st != EG_OK)
            return st;
    }
    for (int attempt = 0; attempt < 2; attempt++) {
        st = store_exec_node(s, &s->node, n, cmds, raw);
        bool readonly = false;
        for (size_t i = 0; st == EG_OK && i < n && !readonly; i++)
            readonly = store_reply_is(raw[i], "READONLY");
        if (readonly) {
            /* A primary that became a replica: ask the sentinels again. */
            store_free_raw(raw, n);
            store_set_error(s, "redis %s:%d is a replica now", s->node.host, s->node.port);
            store_node_drop(&s->node);
            st = EG_EUNAVAIL;
        }
        if (st == EG_OK || s->node.ctx != NULL)
            return st; /* done, or an outage that is not a dropped connection (-LOADING, WAIT) */
        if (attempt == 0 && sentinel) {
            eg_status_t rst = store_sentinel_resolve(s);
            if (rst != EG_OK)
                return rst;
        }
    }
    return st;
}

static const store_script_t *script_by_sha(const eg_store_t *s, const char *sha, size_t len)
{
    for (size_t i = 0; i < s->nscripts; i++)
        if (len == 40 && memcmp(s->scripts[i].sha, sha, 40) == 0)
            return &s->scripts[i];
    return NULL;
}

static bool is_evalsha(const store_cmd_t *c)
{
    return c->argc >= 3 && strcmp(c->argv[0], "EVALSHA") == 0;
}

/* Route and run a batch by mode; slots[i] is the slot of cmds[i], where[i] (cluster mode) the
 * node that answered it. */
static eg_status_t exec_routed(eg_store_t *s, size_t n, const store_cmd_t *cmds, const int *slots,
                               redisReply **raw, int *where)
{
    if (s->target.mode == EG_STORE_CLUSTER)
        return store_cluster_exec(s, n, cmds, slots, raw, where);
    return exec_primary(s, n, cmds, raw);
}

static bool lost_script(const store_cmd_t *c, const redisReply *r)
{
    return is_evalsha(c) && store_reply_is(r, "NOSCRIPT");
}

/* Load the scripts of the batch's EVALSHA commands that answered NOSCRIPT, on the node that
 * said so (one server: the server). */
static eg_status_t reload_scripts(eg_store_t *s, size_t n, const store_cmd_t *cmds,
                                  redisReply **raw, const int *where)
{
    eg_status_t st = EG_OK;
    for (size_t i = 0; i < n && st == EG_OK; i++) {
        if (!lost_script(&cmds[i], raw[i]))
            continue;
        const store_script_t *sc = script_by_sha(
            s, cmds[i].argv[1], cmds[i].lens ? cmds[i].lens[1] : strlen(cmds[i].argv[1]));
        if (!sc)
            continue;
        if (s->target.mode == EG_STORE_CLUSTER) {
            st = store_cluster_load(s, where[i], sc->text);
            continue;
        }
        const char *argv[] = {"SCRIPT", "LOAD", sc->text};
        store_cmd_t load = {.argc = 3, .argv = argv};
        redisReply *r = NULL;
        st = exec_primary(s, 1, &load, &r);
        if (st == EG_OK && (r->type != REDIS_REPLY_STRING || r->len != 40)) {
            store_set_error(s, "SCRIPT LOAD: %s",
                            r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
            st = EG_EPROTO;
        }
        if (r != NULL)
            freeReplyObject(r);
    }
    return st;
}

/* Run a batch: slots checked, routed by mode, scripts reloaded after NOSCRIPT (then the whole
 * batch is sent again: at most RELOAD_TRIES times, a cluster's slots may move meanwhile). On
 * EG_OK raw[0..n) are the replies, owned by the caller. */
#define RELOAD_TRIES 3
static eg_status_t run_batch(eg_store_t *s, size_t n, const store_cmd_t *cmds, redisReply **raw)
{
    int *slots = eg_xcalloc(n ? n : 1, sizeof *slots);
    int *where = eg_xcalloc(n ? n : 1, sizeof *where);
    eg_status_t st = EG_OK;
    for (size_t i = 0; i < n; i++) {
        raw[i] = NULL;
        slots[i] = store_cmd_slot(&cmds[i]);
        if (slots[i] == STORE_CROSS_SLOT &&
            (s->check_slots || s->target.mode == EG_STORE_CLUSTER)) {
            store_set_error(s, "%s: its keys are in more than one cluster slot", cmds[i].argv[0]);
            eg_log_error("redis: refused %s whose keys span cluster slots (use one hash tag)",
                         cmds[i].argv[0]);
            st = EG_EINVAL;
        }
    }
    if (st == EG_OK)
        st = exec_routed(s, n, cmds, slots, raw, where);
    for (int tries = 0; st == EG_OK && tries < RELOAD_TRIES; tries++) {
        bool noscript = false;
        for (size_t i = 0; i < n && !noscript; i++)
            noscript = lost_script(&cmds[i], raw[i]);
        if (!noscript)
            break;
        st = reload_scripts(s, n, cmds, raw, where);
        store_free_raw(raw, n);
        if (st == EG_OK)
            st = exec_routed(s, n, cmds, slots, raw, where);
    }
    free(where);
    free(slots);
    return st;
}

/* Turn a raw reply into the caller's result: an error reply is EG_EPROTO (its text kept for
 * eg_store_error); the converted reply goes to *reply when wanted. Frees r. */
static eg_status_t finish(eg_store_t *s, redisReply *r, eg_reply_t **reply)
{
    eg_status_t st = EG_OK;
    if (r->type == REDIS_REPLY_ERROR) {
        store_set_error(s, "%.*s", (int)r->len, r->str);
        st = EG_EPROTO;
    }
    if (reply != NULL)
        *reply = store_reply_convert(r);
    freeReplyObject(r);
    return st;
}

void eg_reply_free(eg_reply_t *r)
{
    if (r == NULL)
        return;
    for (size_t i = 0; i < r->elements; i++)
        eg_reply_free(r->element[i]);
    free(r->element);
    free(r->str);
    free(r);
}

eg_status_t eg_store_open(eg_store_t **out, const char *url, int timeout_ms)
{
    eg_status_t st;
    eg_store_t *s = NULL;

    *out = NULL;
    if (url == NULL)
        return EG_EINVAL;
    s = eg_xcalloc(1, sizeof(*s));
    st = eg_store_target_parse(url, &s->target);
    if (st != EG_OK) {
        /* The URL may hold a password: say only that it did not parse. */
        eg_log_warn("redis: cannot parse the redis URL");
        free(s);
        return st;
    }
    const char *chk = getenv("ENGAGE_STORE_CHECK_KEYS");
    s->check_slots = chk && strcmp(chk, "1") == 0;
    if (timeout_ms > 0) {
        s->has_timeout = true;
        s->timeout_ms = timeout_ms;
        s->tv.tv_sec = timeout_ms / 1000;
        s->tv.tv_usec = (suseconds_t)(timeout_ms % 1000) * 1000;
        /* WAIT must answer before the socket gives up on it. */
        if (s->target.wait_ms > timeout_ms - 100)
            s->target.wait_ms = timeout_ms > 200 ? timeout_ms - 100 : timeout_ms / 2;
    }
    switch (s->target.mode) {
    case EG_STORE_SINGLE:
        s->node.host = eg_xstrdup(s->target.host[0]);
        s->node.port = s->target.port[0];
        st = store_node_connect(s, &s->node, s->target.db);
        break;
    case EG_STORE_SENTINEL:
        st = store_sentinel_open(s);
        if (st == EG_OK)
            st = store_sentinel_resolve(s);
        break;
    case EG_STORE_CLUSTER:
        st = store_cluster_open(s);
        break;
    }
    if (st != EG_OK) {
        eg_store_close(s);
        return st;
    }
    *out = s;
    return EG_OK;
}

void eg_store_close(eg_store_t *s)
{
    if (s == NULL)
        return;
    store_node_free(&s->node);
    store_sentinel_free(s->sentinel);
    store_cluster_free(s->cluster);
    free_scripts(s);
    eg_store_target_free(&s->target);
    free(s);
}

/* One command, its reply in *out (raw), through run_batch. */
static eg_status_t run_one(eg_store_t *s, int argc, const char *const *argv, const size_t *lens,
                           redisReply **out)
{
    store_cmd_t c = {.argc = argc, .argv = argv, .lens = lens};
    return run_batch(s, 1, &c, out);
}

eg_status_t eg_store_ping(eg_store_t *s)
{
    redisReply *r = NULL;
    const char *argv[1] = {"PING"};
    eg_status_t st = run_one(s, 1, argv, NULL, &r);
    if (st == EG_OK && r->type == REDIS_REPLY_ERROR) {
        store_set_error(s, "PING: %.*s", (int)r->len, r->str);
        st = EG_EPROTO;
    }
    if (r != NULL)
        freeReplyObject(r);
    return st;
}

eg_status_t eg_store_script_add(eg_store_t *s, const char *lua, int *script)
{
    eg_status_t st;
    store_script_t sc = {0};
    redisReply *r = NULL;

    *script = -1;
    if (lua == NULL)
        return EG_EINVAL;
    for (size_t i = 0; i < s->nscripts; i++) {
        if (strcmp(s->scripts[i].src, lua) == 0) {
            *script = (int)i;
            return EG_OK;
        }
    }
    sc.src = eg_xstrdup(lua);
    if (key_check_on(lua)) {
        size_t n = sizeof key_check_lua - 1 + strlen(lua);
        sc.text = eg_xmalloc(n + 1);
        snprintf(sc.text, n + 1, "%s%s", key_check_lua, lua);
    } else {
        sc.text = eg_xstrdup(lua);
    }
    /* Loaded on one node now, for its SHA1; other nodes load it when they answer NOSCRIPT. */
    const char *argv[3] = {"SCRIPT", "LOAD", sc.text};
    st = run_one(s, 3, argv, NULL, &r);
    if (st == EG_OK && (r->type != REDIS_REPLY_STRING || r->len != 40)) {
        store_set_error(s, "SCRIPT LOAD: %s",
                        r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
        st = EG_EPROTO;
    }
    if (st != EG_OK)
        goto out;
    memcpy(sc.sha, r->str, 40);
    sc.sha[40] = '\0';
    if (s->nscripts == s->capscripts) {
        s->capscripts = s->capscripts == 0 ? 8 : s->capscripts * 2;
        s->scripts = eg_xrealloc(s->scripts, s->capscripts * sizeof(*s->scripts));
    }
    s->scripts[s->nscripts] = sc;
    sc.src = NULL;
    sc.text = NULL;
    *script = (int)s->nscripts;
    s->nscripts++;
out:
    if (r != NULL)
        freeReplyObject(r);
    free(sc.src);
    free(sc.text);
    return st;
}

/* The argv of EVALSHA sha nkeys (nk) argv...: argc + 3 entries with their lengths (malloc'd). */
static void build_evalsha(const eg_store_t *s, int script, const char *nk, int argc,
                          const char **argv, const size_t *argvlen, const char ***av, size_t **al)
{
    *av = eg_xmalloc((size_t)(argc + 3) * sizeof(**av));
    *al = eg_xmalloc((size_t)(argc + 3) * sizeof(**al));
    (*av)[0] = "EVALSHA";
    (*al)[0] = 7;
    (*av)[1] = s->scripts[script].sha;
    (*al)[1] = 40;
    (*av)[2] = nk;
    (*al)[2] = strlen(nk);
    for (int i = 0; i < argc; i++) {
        (*av)[i + 3] = argv[i];
        (*al)[i + 3] = argvlen != NULL ? argvlen[i] : strlen(argv[i]);
    }
}

static bool eval_args_ok(const eg_store_t *s, int script, int nkeys, int argc, const char **argv)
{
    return script >= 0 && (size_t)script < s->nscripts && nkeys >= 0 && argc >= nkeys &&
           (argc == 0 || argv != NULL);
}

eg_status_t eg_store_eval(eg_store_t *s, int script, int nkeys, int argc, const char **argv,
                          const size_t *argvlen, eg_reply_t **reply)
{
    return eg_store_eval_then(s, script, nkeys, argc, argv, argvlen, reply, 0, NULL, NULL, NULL);
}

eg_status_t eg_store_eval_then(eg_store_t *s, int script, int nkeys, int argc, const char **argv,
                               const size_t *argvlen, eg_reply_t **reply, size_t n,
                               const int *argcs, const char *const *const *cmds, eg_reply_t **after)
{
    const char **av = NULL;
    size_t *al = NULL;
    char nk[16];

    if (reply != NULL)
        *reply = NULL;
    for (size_t i = 0; i < n; i++)
        after[i] = NULL;
    if (!eval_args_ok(s, script, nkeys, argc, argv))
        return EG_EINVAL;
    for (size_t i = 0; i < n; i++)
        if (argcs[i] <= 0 || cmds[i] == NULL)
            return EG_EINVAL;
    snprintf(nk, sizeof(nk), "%d", nkeys);
    build_evalsha(s, script, nk, argc, argv, argvlen, &av, &al);
    /* The script first, then the commands, in one batch. */
    store_cmd_t *all = eg_xcalloc(n + 1, sizeof(*all));
    redisReply **raw = eg_xcalloc(n + 1, sizeof(*raw));
    all[0] = (store_cmd_t){.argc = argc + 3, .argv = av, .lens = al};
    for (size_t i = 0; i < n; i++)
        all[i + 1] = (store_cmd_t){.argc = argcs[i], .argv = cmds[i]};
    eg_status_t st = run_batch(s, n + 1, all, raw);
    if (st == EG_OK) {
        for (size_t i = 0; i < n; i++)
            after[i] = store_reply_convert(raw[i + 1]);
        st = finish(s, raw[0], reply);
        raw[0] = NULL;
    }
    store_free_raw(raw, n + 1);
    free(raw);
    free(all);
    free(av);
    free(al);
    return st;
}

eg_status_t eg_store_command(eg_store_t *s, int argc, const char **argv, const size_t *argvlen,
                             eg_reply_t **reply)
{
    redisReply *r = NULL;
    if (reply != NULL)
        *reply = NULL;
    if (argc <= 0 || argv == NULL)
        return EG_EINVAL;
    eg_status_t st = run_one(s, argc, argv, argvlen, &r);
    if (st != EG_OK)
        return st;
    return finish(s, r, reply);
}

eg_status_t eg_store_pipeline(eg_store_t *s, size_t n, const int *argcs,
                              const char *const *const *cmds, eg_reply_t **replies)
{
    for (size_t i = 0; i < n; i++)
        replies[i] = NULL;
    if (n == 0)
        return EG_OK;
    for (size_t i = 0; i < n; i++)
        if (argcs[i] <= 0 || cmds[i] == NULL)
            return EG_EINVAL;
    store_cmd_t *all = eg_xcalloc(n, sizeof(*all));
    redisReply **raw = eg_xcalloc(n, sizeof(*raw));
    for (size_t i = 0; i < n; i++)
        all[i] = (store_cmd_t){.argc = argcs[i], .argv = cmds[i]};
    eg_status_t st = run_batch(s, n, all, raw);
    for (size_t i = 0; st == EG_OK && i < n; i++)
        replies[i] = store_reply_convert(raw[i]);
    store_free_raw(raw, n);
    free(raw);
    free(all);
    return st;
}

const char *eg_store_error(const eg_store_t *s)
{
    if (s == NULL)
        return "no store";
    return s->err;
}
