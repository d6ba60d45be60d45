/* The Redis adapter: the one place that talks hiredis.
 *
 * An eg_store_t owns one blocking hiredis context plus what is needed to rebuild it: the parsed
 * URL (host, port, password, db) and the timeout. Every command goes through roundtrip(), which
 * sends it and, when the context reports an I/O error (the server closed the connection, a reset,
 * a timeout), throws the context away, connects a new one (AUTH and SELECT again) and sends the
 * command once more. A second failure is EG_EUNAVAIL; the context stays dropped and the next call
 * tries to connect again first.
 *
 * Retrying after a dropped connection can apply a command twice: the first copy may have run
 * before the connection broke. Engage's writes are Lua scripts that compare-and-set on a version
 * or are otherwise idempotent, so a replay is harmless; plain non-idempotent commands (INCR,
 * XADD without an explicit id) sent through here have at-least-once semantics.
 *
 * A server that restarted answers -LOADING to everything until it has read its AOF: that is
 * EG_EUNAVAIL like a refused connection (no reply is handed out), so callers retry it as the
 * outage it is instead of taking it for a refusal of the command (chaos_test found voice-sim
 * dropping progress steps, and creates answered 502, in that window).
 *
 * Scripts are registered once per store (source and SHA1 kept) and run with EVALSHA. A NOSCRIPT
 * reply (server restarted, SCRIPT FLUSH, failover) loads the source again and retries once.
 *
 * Replies are converted into the project's own eg_reply_t, copying every string, so no hiredis
 * type leaves this file. Values are user data and are never logged; connection errors are logged
 * with host and port only.
 *
 * hiredis 0.14 writes with write(2), so writing to a socket the server has reset raises SIGPIPE:
 * services ignore SIGPIPE in main. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include <hiredis/hiredis.h>

#include "engage/config.h"
#include "engage/log.h"
#include "engage/mem.h"
#include "engage/store.h"

typedef struct {
    char *src;  /* as registered (what eg_store_script_add compares) */
    char *text; /* as loaded: src, behind the key check when that is on */
    char sha[41];
} script_t;

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

struct eg_store {
    redisContext *ctx; /* NULL after a failed reconnect */
    eg_redis_url_t url;
    struct timeval tv;
    bool has_timeout;
    script_t *scripts;
    size_t nscripts;
    size_t capscripts;
    char err[256];
};

static void set_error(eg_store_t *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void set_error(eg_store_t *s, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(s->err, sizeof(s->err), fmt, ap);
    va_end(ap);
}

static void drop_ctx(eg_store_t *s)
{
    if (s->ctx != NULL) {
        redisFree(s->ctx);
        s->ctx = NULL;
    }
}

/* Connect a fresh context into s->ctx (replacing any old one), with AUTH and SELECT. */
static eg_status_t connect_ctx(eg_store_t *s)
{
    eg_status_t st = EG_EUNAVAIL;
    redisContext *c = NULL;
    redisReply *r = NULL;

    drop_ctx(s);
    if (s->has_timeout) {
        c = redisConnectWithTimeout(s->url.host, s->url.port, s->tv);
    } else {
        c = redisConnect(s->url.host, s->url.port);
    }
    if (c == NULL) {
        set_error(s, "cannot allocate a redis context");
        goto out;
    }
    if (c->err != 0) {
        set_error(s, "connect to %s:%d: %s", s->url.host, s->url.port, c->errstr);
        eg_log_warn("redis %s:%d: connect failed: %s", s->url.host, s->url.port, c->errstr);
        goto out;
    }
    if (s->has_timeout && redisSetTimeout(c, s->tv) != REDIS_OK) {
        set_error(s, "set timeout on %s:%d: %s", s->url.host, s->url.port, c->errstr);
        goto out;
    }
    if (redisEnableKeepAlive(c) != REDIS_OK) {
        set_error(s, "keepalive on %s:%d: %s", s->url.host, s->url.port, c->errstr);
        goto out;
    }
    if (s->url.password != NULL) {
        r = redisCommand(c, "AUTH %s", s->url.password);
        if (r == NULL) {
            set_error(s, "AUTH on %s:%d: %s", s->url.host, s->url.port, c->errstr);
            eg_log_warn("redis %s:%d: AUTH failed: %s", s->url.host, s->url.port, c->errstr);
            goto out;
        }
        if (r->type == REDIS_REPLY_ERROR) {
            set_error(s, "AUTH refused by %s:%d: %.*s", s->url.host, s->url.port, (int)r->len,
                      r->str);
            eg_log_warn("redis %s:%d: AUTH refused", s->url.host, s->url.port);
            st = EG_EAUTH;
            goto out;
        }
        freeReplyObject(r);
        r = NULL;
    }
    if (s->url.db != 0) {
        r = redisCommand(c, "SELECT %d", s->url.db);
        if (r == NULL) {
            set_error(s, "SELECT on %s:%d: %s", s->url.host, s->url.port, c->errstr);
            eg_log_warn("redis %s:%d: SELECT failed: %s", s->url.host, s->url.port, c->errstr);
            goto out;
        }
        if (r->type == REDIS_REPLY_ERROR) {
            set_error(s, "SELECT %d refused by %s:%d: %.*s", s->url.db, s->url.host, s->url.port,
                      (int)r->len, r->str);
            eg_log_warn("redis %s:%d: SELECT %d refused", s->url.host, s->url.port, s->url.db);
            st = EG_EINVAL;
            goto out;
        }
    }
    s->ctx = c;
    c = NULL;
    st = EG_OK;
out:
    if (r != NULL) {
        freeReplyObject(r);
    }
    if (c != NULL) {
        redisFree(c);
    }
    return st;
}

/* Note the context's I/O error and drop the context so the next attempt reconnects. */
static void io_failed(eg_store_t *s)
{
    set_error(s, "redis %s:%d: %s", s->url.host, s->url.port,
              s->ctx->errstr[0] != '\0' ? s->ctx->errstr : "I/O error");
    eg_log_warn("redis %s:%d: command failed (%s); reconnecting", s->url.host, s->url.port,
                s->ctx->errstr);
    drop_ctx(s);
}

/* Send one command and read its reply, reconnecting and resending once on an I/O error.
 * On EG_OK *out is a hiredis reply the caller frees (possibly an error reply). */
static eg_status_t roundtrip(eg_store_t *s, int argc, const char **argv, const size_t *argvlen,
                             redisReply **out)
{
    eg_status_t st = EG_EUNAVAIL;
    redisReply *r = NULL;

    *out = NULL;
    for (int attempt = 0; attempt < 2; attempt++) {
        if (s->ctx == NULL) {
            st = connect_ctx(s);
            if (st != EG_OK) {
                goto out;
            }
        }
        r = redisCommandArgv(s->ctx, argc, argv, argvlen);
        if (r != NULL) {
            *out = r;
            st = EG_OK;
            goto out;
        }
        io_failed(s);
        st = EG_EUNAVAIL;
    }
out:
    return st;
}

/* -LOADING: the server restarted and is still reading its AOF; it refuses every command until
 * it is done, so this is an outage like a refused connection (EG_EUNAVAIL, try again later),
 * not a protocol error. */
static bool is_loading(const redisReply *r)
{
    return r != NULL && r->type == REDIS_REPLY_ERROR && r->len >= 7 &&
           memcmp(r->str, "LOADING", 7) == 0;
}

static void free_replies(redisReply **rs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (rs[i] != NULL) {
            freeReplyObject(rs[i]);
            rs[i] = NULL;
        }
    }
}

/* Pipelined version of roundtrip: append n commands, then read n replies. The whole batch is
 * resent once after a reconnect when any read or write fails. */
static eg_status_t pipeline_roundtrip(eg_store_t *s, size_t n, const int *argcs,
                                      const char *const *const *cmds, const size_t *const *lens,
                                      redisReply **out)
{
    eg_status_t st = EG_EUNAVAIL;
    size_t i;

    for (int attempt = 0; attempt < 2; attempt++) {
        if (s->ctx == NULL) {
            st = connect_ctx(s);
            if (st != EG_OK) {
                goto out;
            }
        }
        for (i = 0; i < n; i++) {
            /* hiredis takes char ** without const but only reads the strings. */
            if (redisAppendCommandArgv(s->ctx, argcs[i], (const char **)cmds[i],
                                       lens != NULL ? lens[i] : NULL) != REDIS_OK) {
                break;
            }
        }
        if (i == n) {
            for (i = 0; i < n; i++) {
                void *r = NULL;
                if (redisGetReply(s->ctx, &r) != REDIS_OK || r == NULL) {
                    break;
                }
                out[i] = r;
            }
        }
        if (i == n) {
            st = EG_OK;
            /* A server still loading refused the whole batch: an outage, not n errors. */
            for (i = 0; i < n; i++) {
                if (is_loading(out[i])) {
                    set_error(s, "redis %s:%d: still loading its data", s->url.host, s->url.port);
                    free_replies(out, n);
                    st = EG_EUNAVAIL;
                    break;
                }
            }
            goto out;
        }
        free_replies(out, n);
        if (s->ctx->err == 0) {
            /* Appending failed without an I/O error: only out of memory does that. */
            set_error(s, "cannot build the pipeline");
            st = EG_EINTERNAL;
            goto out;
        }
        io_failed(s);
        st = EG_EUNAVAIL;
    }
out:
    return st;
}

static char *copy_bytes(const char *p, size_t len)
{
    char *c = eg_xmalloc(len + 1);
    if (len > 0) {
        memcpy(c, p, len);
    }
    c[len] = '\0';
    return c;
}

static eg_reply_t *convert(const redisReply *r)
{
    eg_reply_t *e = eg_xcalloc(1, sizeof(*e));

    switch (r->type) {
    case REDIS_REPLY_STRING:
        e->type = EG_REPLY_STRING;
        e->str = copy_bytes(r->str, r->len);
        e->len = r->len;
        break;
    case REDIS_REPLY_STATUS:
        e->type = EG_REPLY_STATUS;
        e->str = copy_bytes(r->str, r->len);
        e->len = r->len;
        break;
    case REDIS_REPLY_ERROR:
        e->type = EG_REPLY_ERROR;
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
            for (size_t i = 0; i < r->elements; i++) {
                e->element[i] = convert(r->element[i]);
            }
        }
        break;
    default:
        e->type = EG_REPLY_NIL;
        break;
    }
    return e;
}

/* Turn a raw reply into the caller's result: an error reply is EG_EPROTO (its text kept for
 * eg_store_error); the converted reply goes to *reply when wanted. Frees r. */
static eg_status_t finish(eg_store_t *s, redisReply *r, eg_reply_t **reply)
{
    eg_status_t st = EG_OK;

    if (is_loading(r)) {
        set_error(s, "redis %s:%d: still loading its data", s->url.host, s->url.port);
        freeReplyObject(r);
        return EG_EUNAVAIL;
    }
    if (r->type == REDIS_REPLY_ERROR) {
        set_error(s, "%.*s", (int)r->len, r->str);
        st = EG_EPROTO;
    }
    if (reply != NULL) {
        *reply = convert(r);
    }
    freeReplyObject(r);
    return st;
}

static bool is_noscript(const redisReply *r)
{
    return r->type == REDIS_REPLY_ERROR && r->len >= 8 && memcmp(r->str, "NOSCRIPT", 8) == 0;
}

/* SCRIPT LOAD the script's source and remember its SHA1. */
static eg_status_t load_script(eg_store_t *s, script_t *sc)
{
    eg_status_t st;
    redisReply *r = NULL;
    const char *argv[3] = {"SCRIPT", "LOAD", sc->text};

    st = roundtrip(s, 3, argv, NULL, &r);
    if (st != EG_OK) {
        goto out;
    }
    if (r->type == REDIS_REPLY_ERROR) {
        set_error(s, "SCRIPT LOAD: %.*s", (int)r->len, r->str);
        st = is_loading(r) ? EG_EUNAVAIL : EG_EPROTO;
        goto out;
    }
    if (r->type != REDIS_REPLY_STRING || r->len != 40) {
        set_error(s, "SCRIPT LOAD: unexpected reply type %d", r->type);
        st = EG_EPROTO;
        goto out;
    }
    memcpy(sc->sha, r->str, 40);
    sc->sha[40] = '\0';
out:
    if (r != NULL) {
        freeReplyObject(r);
    }
    return st;
}

void eg_reply_free(eg_reply_t *r)
{
    if (r == NULL) {
        return;
    }
    for (size_t i = 0; i < r->elements; i++) {
        eg_reply_free(r->element[i]);
    }
    free(r->element);
    free(r->str);
    free(r);
}

eg_status_t eg_store_open(eg_store_t **out, const char *url, int timeout_ms)
{
    eg_status_t st;
    eg_store_t *s = NULL;

    *out = NULL;
    if (url == NULL) {
        st = EG_EINVAL;
        goto out;
    }
    s = eg_xcalloc(1, sizeof(*s));
    st = eg_redis_url_parse(url, &s->url);
    if (st != EG_OK) {
        /* The URL may hold a password: say only that it did not parse. */
        eg_log_warn("redis: cannot parse the redis URL");
        free(s);
        s = NULL;
        goto out;
    }
    if (timeout_ms > 0) {
        s->has_timeout = true;
        s->tv.tv_sec = timeout_ms / 1000;
        s->tv.tv_usec = (suseconds_t)(timeout_ms % 1000) * 1000;
    }
    st = connect_ctx(s);
    if (st != EG_OK) {
        goto out;
    }
    *out = s;
    s = NULL;
out:
    eg_store_close(s);
    return st;
}

void eg_store_close(eg_store_t *s)
{
    if (s == NULL) {
        return;
    }
    drop_ctx(s);
    for (size_t i = 0; i < s->nscripts; i++) {
        free(s->scripts[i].src);
        free(s->scripts[i].text);
    }
    free(s->scripts);
    eg_redis_url_free(&s->url);
    free(s);
}

eg_status_t eg_store_ping(eg_store_t *s)
{
    eg_status_t st;
    redisReply *r = NULL;
    const char *argv[1] = {"PING"};

    st = roundtrip(s, 1, argv, NULL, &r);
    if (st != EG_OK) {
        goto out;
    }
    if (r->type == REDIS_REPLY_ERROR) {
        set_error(s, "PING: %.*s", (int)r->len, r->str);
        st = is_loading(r) ? EG_EUNAVAIL : EG_EPROTO;
    }
out:
    if (r != NULL) {
        freeReplyObject(r);
    }
    return st;
}

eg_status_t eg_store_script_add(eg_store_t *s, const char *lua, int *script)
{
    eg_status_t st;
    script_t sc = {0};

    *script = -1;
    if (lua == NULL) {
        st = EG_EINVAL;
        goto out;
    }
    for (size_t i = 0; i < s->nscripts; i++) {
        if (strcmp(s->scripts[i].src, lua) == 0) {
            *script = (int)i;
            st = EG_OK;
            goto out;
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
    st = load_script(s, &sc);
    if (st != EG_OK) {
        goto out;
    }
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

eg_status_t eg_store_eval(eg_store_t *s, int script, int nkeys, int argc, const char **argv,
                          const size_t *argvlen, eg_reply_t **reply)
{
    eg_status_t st;
    redisReply *r = NULL;
    const char **av = NULL;
    size_t *al = NULL;
    char nk[16];
    int total;

    if (reply != NULL) {
        *reply = NULL;
    }
    if (script < 0 || (size_t)script >= s->nscripts || nkeys < 0 || argc < nkeys ||
        (argc > 0 && argv == NULL)) {
        st = EG_EINVAL;
        goto out;
    }
    snprintf(nk, sizeof(nk), "%d", nkeys);
    total = argc + 3;
    build_evalsha(s, script, nk, argc, argv, argvlen, &av, &al);
    st = roundtrip(s, total, av, al, &r);
    if (st != EG_OK) {
        goto out;
    }
    if (is_noscript(r)) {
        freeReplyObject(r);
        r = NULL;
        st = load_script(s, &s->scripts[script]);
        if (st != EG_OK) {
            goto out;
        }
        st = roundtrip(s, total, av, al, &r);
        if (st != EG_OK) {
            goto out;
        }
    }
    st = finish(s, r, reply);
    r = NULL;
out:
    if (r != NULL) {
        freeReplyObject(r);
    }
    free(av);
    free(al);
    return st;
}

eg_status_t eg_store_eval_then(eg_store_t *s, int script, int nkeys, int argc, const char **argv,
                               const size_t *argvlen, eg_reply_t **reply, size_t n,
                               const int *argcs, const char *const *const *cmds, eg_reply_t **after)
{
    eg_status_t st;
    redisReply **raw = NULL;
    const char **av = NULL;
    size_t *al = NULL;
    char nk[16];
    int total = argc + 3;

    if (reply != NULL) {
        *reply = NULL;
    }
    for (size_t i = 0; i < n; i++) {
        after[i] = NULL;
    }
    if (script < 0 || (size_t)script >= s->nscripts || nkeys < 0 || argc < nkeys ||
        (argc > 0 && argv == NULL)) {
        return EG_EINVAL;
    }
    for (size_t i = 0; i < n; i++) {
        if (argcs[i] <= 0 || cmds[i] == NULL) {
            return EG_EINVAL;
        }
    }
    snprintf(nk, sizeof(nk), "%d", nkeys);
    build_evalsha(s, script, nk, argc, argv, argvlen, &av, &al);
    /* The script first, then the commands, as one pipeline. */
    const char *const **all = eg_xcalloc(n + 1, sizeof(*all));
    const size_t **lens = eg_xcalloc(n + 1, sizeof(*lens));
    int *counts = eg_xcalloc(n + 1, sizeof(*counts));
    all[0] = av;
    lens[0] = al;
    counts[0] = total;
    for (size_t i = 0; i < n; i++) {
        all[i + 1] = cmds[i];
        counts[i + 1] = argcs[i];
    }
    raw = eg_xcalloc(n + 1, sizeof(*raw));
    st = pipeline_roundtrip(s, n + 1, counts, all, lens, raw);
    if (st == EG_OK && is_noscript(raw[0])) {
        /* The server lost its scripts (a restart without them): load it and send it all again;
         * the commands after the script must be idempotent for this. */
        free_replies(raw, n + 1);
        st = load_script(s, &s->scripts[script]);
        if (st == EG_OK) {
            st = pipeline_roundtrip(s, n + 1, counts, all, lens, raw);
        }
    }
    if (st == EG_OK) {
        for (size_t i = 0; i < n; i++) {
            after[i] = convert(raw[i + 1]);
        }
        st = finish(s, raw[0], reply);
        raw[0] = NULL;
    }
    free_replies(raw, n + 1);
    free(raw);
    free(all);
    free(lens);
    free(counts);
    free(av);
    free(al);
    return st;
}

eg_status_t eg_store_command(eg_store_t *s, int argc, const char **argv, const size_t *argvlen,
                             eg_reply_t **reply)
{
    eg_status_t st;
    redisReply *r = NULL;

    if (reply != NULL) {
        *reply = NULL;
    }
    if (argc <= 0 || argv == NULL) {
        st = EG_EINVAL;
        goto out;
    }
    st = roundtrip(s, argc, argv, argvlen, &r);
    if (st != EG_OK) {
        goto out;
    }
    st = finish(s, r, reply);
out:
    return st;
}

eg_status_t eg_store_pipeline(eg_store_t *s, size_t n, const int *argcs,
                              const char *const *const *cmds, eg_reply_t **replies)
{
    eg_status_t st;
    redisReply **raw = NULL;

    for (size_t i = 0; i < n; i++) {
        replies[i] = NULL;
    }
    if (n == 0) {
        st = EG_OK;
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        if (argcs[i] <= 0 || cmds[i] == NULL) {
            st = EG_EINVAL;
            goto out;
        }
    }
    raw = eg_xcalloc(n, sizeof(*raw));
    st = pipeline_roundtrip(s, n, argcs, cmds, NULL, raw);
    if (st != EG_OK) {
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        replies[i] = convert(raw[i]);
    }
out:
    if (raw != NULL) {
        free_replies(raw, n);
        free(raw);
    }
    return st;
}

const char *eg_store_error(const eg_store_t *s)
{
    if (s == NULL) {
        return "no store";
    }
    return s->err;
}
