/* The HTTP server, over civetweb.
 *
 * civetweb owns the sockets and the worker threads. We register one catch-all handler on "/"
 * and do the routing ourselves, because civetweb's own handler matching is a pattern language
 * whose prefix rules differ from ours (we want "longest registered prefix, whole path segments
 * only"). Routes may be added after the server started, so the table sits behind a rwlock;
 * a lookup copies the handler out before calling it.
 *
 * A request object lives on the worker's stack for the duration of one handler call. It
 * remembers whether a reply went out and with which status (eg_http_status_sent: what metrics
 * count), so a handler that forgets to answer still gets a 500 envelope sent for it, and a
 * second reply is refused (logged) rather than corrupting the stream. Extra reply headers are
 * collected in the request and sent with the status line, together with Content-Length (always:
 * keep-alive depends on it) and X-Correlation-Id.
 *
 * The request body is read lazily with mg_read into a bounded buffer. When the client
 * announces a Content-Length larger than max_body we refuse without reading it; civetweb then
 * reads and discards what is left after the handler returns, so a keep-alive connection stays
 * in sync. */
#include "engage/http.h"

#include <arpa/inet.h>
#include <civetweb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "engage/buf.h"
#include "engage/ids.h"
#include "engage/log.h"
#include "engage/mem.h"

#define DEFAULT_ADDR "127.0.0.1"
#define DEFAULT_THREADS 16
#define DEFAULT_MAX_BODY (256 * 1024)
#define REQUEST_TIMEOUT_MS "30000"
/* civetweb keeps at most MG_MAX_HEADERS reply headers; we add up to three of our own. */
#define MAX_EXTRA_HEADERS (MG_MAX_HEADERS - 4)

struct route {
    char *prefix;
    size_t len;
    eg_http_handler_fn fn;
    void *arg;
};

struct eg_http_server {
    struct mg_context *ctx;
    char addr[64];
    int port;
    size_t max_body;
    pthread_rwlock_t lock; /* guards routes */
    struct route *routes;
    size_t nroutes;
    size_t cap;
};

struct header {
    char *name;
    char *value;
};

struct eg_http_req {
    struct mg_connection *conn;
    const struct mg_request_info *ri;
    eg_http_server_t *srv;
    char corr[EG_UUID_STR_LEN + 1];
    struct header headers[MAX_EXTRA_HEADERS];
    size_t nheaders;
    eg_buf_t body;
    eg_status_t body_st;
    bool body_done;
    bool replied;
    int code;
};

static pthread_once_t lib_once = PTHREAD_ONCE_INIT;

static void lib_init(void)
{
    mg_init_library(0);
}

/* civetweb's own error lines (bad requests, socket errors) go to our log instead of stderr. */
static int log_message(const struct mg_connection *conn, const char *message)
{
    (void)conn;
    eg_log_warn("civetweb: %s", message);
    return 1;
}

/* ---- routing ---- */

static bool prefix_matches(const struct route *r, const char *path)
{
    if (strncmp(path, r->prefix, r->len) != 0)
        return false;
    /* Whole segments only: "/a" matches "/a" and "/a/b" but not "/ab". */
    if (r->len > 0 && r->prefix[r->len - 1] == '/')
        return true;
    return path[r->len] == '\0' || path[r->len] == '/';
}

static bool find_route(eg_http_server_t *srv, const char *path, eg_http_handler_fn *fn, void **arg)
{
    const struct route *best = NULL;

    pthread_rwlock_rdlock(&srv->lock);
    for (size_t i = 0; i < srv->nroutes; i++) {
        const struct route *r = &srv->routes[i];
        if (prefix_matches(r, path) && (best == NULL || r->len > best->len))
            best = r;
    }
    if (best) {
        *fn = best->fn;
        *arg = best->arg;
    }
    pthread_rwlock_unlock(&srv->lock);
    return best != NULL;
}

/* ---- replies ---- */

static void send_reply(eg_http_req_t *req, int code, const char *content_type, const void *body,
                       size_t len)
{
    char clen[32];

    if (req->replied) {
        eg_log_error("http: second reply (%d) to %s %s ignored", code, req->ri->request_method,
                     req->ri->local_uri);
        return;
    }
    req->replied = true;
    req->code = code;

    snprintf(clen, sizeof clen, "%zu", len);
    mg_response_header_start(req->conn, code);
    if (content_type)
        mg_response_header_add(req->conn, "Content-Type", content_type, -1);
    mg_response_header_add(req->conn, "Content-Length", clen, -1);
    mg_response_header_add(req->conn, "X-Correlation-Id", req->corr, -1);
    for (size_t i = 0; i < req->nheaders; i++)
        mg_response_header_add(req->conn, req->headers[i].name, req->headers[i].value, -1);
    mg_response_header_send(req->conn);
    if (len > 0 && strcmp(req->ri->request_method, "HEAD") != 0)
        mg_write(req->conn, body, len);
}

int eg_http_status_sent(const eg_http_req_t *req)
{
    return req->replied ? req->code : 0;
}

static eg_json_t *envelope(const eg_http_req_t *req, int code, const char *message,
                           const char *sub_code, eg_json_t *data)
{
    eg_json_t *env = eg_json_object();
    eg_json_t *st = eg_json_object();

    eg_json_set_int(st, "code", code);
    eg_json_set_str(st, "message", message ? message : "");
    eg_json_set_str(st, "corrId", req->corr);
    if (sub_code)
        eg_json_set_str(st, "subCode", sub_code);
    eg_json_set(env, "status", st);
    if (data)
        eg_json_set(env, "data", data);
    return env;
}

void eg_http_add_header(eg_http_req_t *req, const char *name, const char *value)
{
    if (req->nheaders >= MAX_EXTRA_HEADERS) {
        eg_log_error("http: too many reply headers, %s dropped", name);
        return;
    }
    req->headers[req->nheaders].name = eg_xstrdup(name);
    req->headers[req->nheaders].value = eg_xstrdup(value);
    req->nheaders++;
}

void eg_http_reply(eg_http_req_t *req, int code, const char *content_type, const void *body,
                   size_t len)
{
    send_reply(req, code, content_type, body, len);
}

void eg_http_reply_json(eg_http_req_t *req, int code, const eg_json_t *body)
{
    size_t len = 0;
    char *text = eg_json_dump(body, &len);

    send_reply(req, code, "application/json", text, len);
    free(text);
}

void eg_http_reply_envelope(eg_http_req_t *req, int code, const char *message, eg_json_t *data)
{
    eg_json_t *env = envelope(req, code, message, NULL, data);

    eg_http_reply_json(req, code, env);
    eg_json_free(env);
}

void eg_http_reply_error(eg_http_req_t *req, eg_status_t st, const char *message)
{
    int code = eg_status_http(st);
    eg_json_t *env = envelope(req, code, message, eg_status_str(st), NULL);

    eg_http_reply_json(req, code, env);
    eg_json_free(env);
}

/* ---- the request ---- */

const char *eg_http_method(const eg_http_req_t *req)
{
    return req->ri->request_method;
}

const char *eg_http_path(const eg_http_req_t *req)
{
    return req->ri->local_uri ? req->ri->local_uri : "/";
}

const char *eg_http_query(const eg_http_req_t *req)
{
    return req->ri->query_string;
}

const char *eg_http_header(const eg_http_req_t *req, const char *name)
{
    return mg_get_header(req->conn, name);
}

const char *eg_http_corr_id(const eg_http_req_t *req)
{
    return req->corr;
}

const char *eg_http_remote_addr(const eg_http_req_t *req)
{
    return req->ri->remote_addr;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Decode form-urlencoded s[0..n) ('+' is a space, %XX a byte; a malformed % stays literal)
 * into out. Returns false when it does not fit in outlen - 1 bytes. */
static bool form_decode(const char *s, size_t n, char *out, size_t outlen)
{
    size_t o = 0;

    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '+') {
            c = ' ';
        } else if (c == '%' && i + 2 < n && hexval(s[i + 1]) >= 0 && hexval(s[i + 2]) >= 0) {
            c = (char)(hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
            i += 2;
        }
        if (o + 1 >= outlen)
            return false;
        out[o++] = c;
    }
    out[o] = '\0';
    return true;
}

eg_status_t eg_http_query_param(const eg_http_req_t *req, const char *name, char *out,
                                size_t outlen)
{
    const char *q = req->ri->query_string;
    size_t nlen = strlen(name);
    eg_status_t st = EG_ENOTFOUND;

    if (outlen > 0)
        out[0] = '\0';
    while (q && *q) {
        const char *end = strchr(q, '&');
        size_t plen = end ? (size_t)(end - q) : strlen(q);
        const char *eq = memchr(q, '=', plen);
        size_t klen = eq ? (size_t)(eq - q) : plen;

        if (klen == nlen && memcmp(q, name, nlen) == 0) {
            const char *v = eq ? eq + 1 : q + plen;
            size_t vlen = (size_t)(q + plen - v);
            st = outlen > 0 && form_decode(v, vlen, out, outlen) ? EG_OK : EG_ETOOBIG;
            goto out;
        }
        q = end ? end + 1 : NULL;
    }
out:
    return st;
}

eg_status_t eg_http_body(eg_http_req_t *req, const char **data, size_t *len)
{
    long long clen = req->ri->content_length;
    char chunk[16384];

    if (req->body_done)
        goto out;
    req->body_done = true;
    req->body_st = EG_OK;
    if (clen > 0 && (unsigned long long)clen > req->srv->max_body) {
        req->body_st = EG_ETOOBIG;
        goto out;
    }
    for (;;) {
        int n = mg_read(req->conn, chunk, sizeof chunk);
        if (n == 0)
            break;
        if (n < 0) {
            req->body_st = EG_EIO;
            break;
        }
        if (eg_buf_append(&req->body, chunk, (size_t)n) != EG_OK) {
            req->body_st = EG_ETOOBIG;
            break;
        }
    }
out:
    if (req->body_st == EG_OK) {
        *data = req->body.data ? req->body.data : "";
        *len = req->body.len;
    } else {
        *data = NULL;
        *len = 0;
    }
    return req->body_st;
}

/* ---- dispatch ---- */

static void set_corr(eg_http_req_t *req)
{
    const char *in = mg_get_header(req->conn, "X-Correlation-Id");

    /* A client's own id is echoed exactly as sent, so it can match its logs against ours. */
    if (in && eg_uuid_valid(in)) {
        memcpy(req->corr, in, EG_UUID_STR_LEN);
        req->corr[EG_UUID_STR_LEN] = '\0';
    } else {
        eg_uuid_v7_str(req->corr);
    }
}

static int dispatch(struct mg_connection *conn, void *cbdata)
{
    eg_http_server_t *srv = cbdata;
    eg_http_req_t req;
    eg_http_handler_fn fn = NULL;
    void *arg = NULL;
    char msg[160];

    memset(&req, 0, sizeof req);
    req.conn = conn;
    req.ri = mg_get_request_info(conn);
    req.srv = srv;
    eg_buf_init(&req.body, srv->max_body);
    set_corr(&req);
    eg_log_set_corr(req.corr);

    if (!find_route(srv, eg_http_path(&req), &fn, &arg)) {
        snprintf(msg, sizeof msg, "no route for %.120s", eg_http_path(&req));
        eg_http_reply_error(&req, EG_ENOTFOUND, msg);
        goto out;
    }
    fn(&req, arg);
    if (!req.replied) {
        eg_log_error("http: handler for %s %s sent no reply", req.ri->request_method,
                     eg_http_path(&req));
        eg_http_reply_error(&req, EG_EINTERNAL, "internal error: no reply");
    }
out:
    for (size_t i = 0; i < req.nheaders; i++) {
        free(req.headers[i].name);
        free(req.headers[i].value);
    }
    eg_buf_free(&req.body);
    eg_log_set_corr(NULL);
    return req.code;
}

/* ---- the server ---- */

eg_status_t eg_http_start(eg_http_server_t **out, const eg_http_opts_t *opts)
{
    eg_http_server_t *srv = eg_xcalloc(1, sizeof *srv);
    struct mg_callbacks cbs;
    struct mg_init_data init;
    struct mg_error_data err;
    struct mg_server_port ports[4];
    char errtext[256] = "";
    unsigned errcode = 0;
    char listen[128];
    char threads[16];
    const char *options[16];
    size_t k = 0;
    eg_status_t st = EG_OK;
    int n;

    *out = NULL;
    pthread_once(&lib_once, lib_init);
    pthread_rwlock_init(&srv->lock, NULL);
    srv->max_body = opts->max_body ? opts->max_body : DEFAULT_MAX_BODY;

    snprintf(srv->addr, sizeof srv->addr, "%s",
             opts->addr && *opts->addr ? opts->addr : DEFAULT_ADDR);
    snprintf(listen, sizeof listen, "%s:%d", srv->addr, opts->port);
    snprintf(threads, sizeof threads, "%d", opts->threads > 0 ? opts->threads : DEFAULT_THREADS);
    options[k++] = "listening_ports";
    options[k++] = listen;
    options[k++] = "num_threads";
    options[k++] = threads;
    options[k++] = "enable_keep_alive";
    options[k++] = opts->keep_alive ? "yes" : "no";
    options[k++] = "request_timeout_ms";
    options[k++] = REQUEST_TIMEOUT_MS;
    /* Without TCP_NODELAY a keep-alive answer written in two pieces (headers, body) waits for
     * the client's delayed ACK: ~40 ms per request (docs/benchmarks.md). */
    options[k++] = "tcp_nodelay";
    options[k++] = "1";
    options[k] = NULL;

    memset(&cbs, 0, sizeof cbs);
    cbs.log_message = log_message;
    init.callbacks = &cbs;
    init.user_data = srv;
    init.configuration_options = options;
    err.code = &errcode;
    err.text = errtext;
    err.text_buffer_size = sizeof errtext;

    srv->ctx = mg_start2(&init, &err);
    if (srv->ctx == NULL) {
        eg_log_error("http: cannot listen on %s: %s", listen, errtext);
        st = EG_EUNAVAIL;
        goto out;
    }
    n = mg_get_server_ports(srv->ctx, 4, ports);
    if (n < 1) {
        eg_log_error("http: no listening port on %s", listen);
        st = EG_EUNAVAIL;
        goto out;
    }
    srv->port = ports[0].port;
    mg_set_request_handler(srv->ctx, "/", dispatch, srv);
out:
    if (st != EG_OK) {
        eg_http_stop(srv);
        srv = NULL;
    }
    *out = srv;
    return st;
}

int eg_http_port(const eg_http_server_t *srv)
{
    return srv->port;
}

void eg_http_route(eg_http_server_t *srv, const char *prefix, eg_http_handler_fn fn, void *arg)
{
    size_t len = strlen(prefix);

    /* A trailing slash adds nothing to segment matching ("/a/" is "/a"), except for "/". */
    while (len > 1 && prefix[len - 1] == '/')
        len--;
    pthread_rwlock_wrlock(&srv->lock);
    for (size_t i = 0; i < srv->nroutes; i++) {
        struct route *r = &srv->routes[i];
        if (r->len == len && memcmp(r->prefix, prefix, len) == 0) {
            r->fn = fn;
            r->arg = arg;
            goto out;
        }
    }
    if (srv->nroutes == srv->cap) {
        srv->cap = srv->cap ? srv->cap * 2 : 8;
        srv->routes = eg_xrealloc(srv->routes, srv->cap * sizeof *srv->routes);
    }
    srv->routes[srv->nroutes].prefix = eg_xstrndup(prefix, len);
    srv->routes[srv->nroutes].len = len;
    srv->routes[srv->nroutes].fn = fn;
    srv->routes[srv->nroutes].arg = arg;
    srv->nroutes++;
out:
    pthread_rwlock_unlock(&srv->lock);
}

/* mg_stop waits for civetweb's master thread, which notices the stop flag only when its poll
 * on the listening socket returns: after up to two seconds when nobody connects. A helper
 * thread connects to our own port until mg_stop returns, so the poll wakes at once. */
struct poker {
    struct sockaddr_in sa;
    atomic_bool done;
};

static void *poke(void *arg)
{
    struct poker *p = arg;
    struct timespec ts = {0, 20 * 1000000L};

    while (!atomic_load(&p->done)) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        if (fd >= 0) {
            connect(fd, (const struct sockaddr *)&p->sa, sizeof p->sa);
            close(fd);
        }
        nanosleep(&ts, NULL);
    }
    return NULL;
}

static void stop_civetweb(eg_http_server_t *srv)
{
    struct poker p;
    pthread_t t;
    bool poking;

    memset(&p, 0, sizeof p);
    p.sa.sin_family = AF_INET;
    p.sa.sin_port = htons((uint16_t)srv->port);
    if (inet_pton(AF_INET, srv->addr, &p.sa.sin_addr) != 1 || p.sa.sin_addr.s_addr == 0)
        p.sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    atomic_init(&p.done, false);
    poking = srv->port > 0 && pthread_create(&t, NULL, poke, &p) == 0;
    mg_stop(srv->ctx);
    if (poking) {
        atomic_store(&p.done, true);
        pthread_join(t, NULL);
    }
}

void eg_http_stop(eg_http_server_t *srv)
{
    if (srv == NULL)
        return;
    if (srv->ctx)
        stop_civetweb(srv);
    for (size_t i = 0; i < srv->nroutes; i++)
        free(srv->routes[i].prefix);
    free(srv->routes);
    pthread_rwlock_destroy(&srv->lock);
    free(srv);
}
